/// Column sums of a row-major [rows, columns] matrix (bias gradients). Rows are added in Float
/// blocks of 64 (a vectorisable inner loop), and the blocks are added in Double, so long batches
/// keep their precision.
enum ColumnSums {
    static func of(_ values: [Float], columns: Int) -> [Float] {
        guard columns > 0 else { return [] }
        let rows = values.count / columns
        var total = [Double](repeating: 0, count: columns)
        var block = [Float](repeating: 0, count: columns)
        values.withUnsafeBufferPointer { v in
            block.withUnsafeMutableBufferPointer { b in
                var start = 0
                while start < rows {
                    let end = min(start + 64, rows)
                    for j in 0..<columns { b[j] = 0 }
                    for r in start..<end {
                        let row = v.baseAddress! + r * columns
                        for j in 0..<columns { b[j] += row[j] }
                    }
                    for j in 0..<columns { total[j] += Double(b[j]) }
                    start = end
                }
            }
        }
        return total.map { Float($0) }
    }
}
