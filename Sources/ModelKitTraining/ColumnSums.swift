import CModelKitKernels

/// Column sums of a row-major [rows, columns] matrix (bias gradients). Rows are added in Float
/// blocks of 64 (a vectorised inner loop), and the blocks are added in Double, so long batches
/// keep their precision. The loop lives in C (`mk_column_sums`) to get AVX2 on CPUs that have it.
enum ColumnSums {
    static func of(_ values: [Float], columns: Int) -> [Float] {
        guard columns > 0 else { return [] }
        let rows = values.count / columns
        return [Float](unsafeUninitializedCapacity: columns) { sums, initialized in
            values.withUnsafeBufferPointer { v in
                mk_column_sums(rows, columns, v.baseAddress, sums.baseAddress!)
            }
            initialized = columns
        }
    }

    /// ReLU backward and bias gradient in one pass: `masked` receives dy where the ReLU output is
    /// positive (else 0); the result is the column sums of `masked` when `sums`, else nil.
    static func reluMasked(_ dy: [Float], output: [Float], into masked: inout [Float], columns: Int,
                           sums: Bool) -> [Float]? {
        precondition(dy.count == output.count && columns > 0)
        if masked.count != dy.count { masked = [Float](repeating: 0, count: dy.count) }
        let rows = dy.count / columns
        var result: [Float]? = sums ? [Float](repeating: 0, count: columns) : nil
        if dy.count >= 65_536 && Parallelism.threadCount > 1 && rows > 0 {
            // Large activations: blocks of 64 rows spread over the threads; the block sums are then
            // added in block order, so the result equals the serial one for any thread count.
            let blocks = mk_sum_block_count(rows)
            var blockSums = [Float](repeating: 0, count: blocks * columns)
            let parts = min(Parallelism.threadCount, blocks)
            dy.withUnsafeBufferPointer { g in
                output.withUnsafeBufferPointer { o in
                    masked.withUnsafeMutableBufferPointer { d in
                        blockSums.withUnsafeMutableBufferPointer { bs in
                            let gp = SendableConstPointer(pointer: g.baseAddress!)
                            let op = SendableConstPointer(pointer: o.baseAddress!)
                            let dp = SendablePointer(pointer: d.baseAddress!)
                            let bp = SendablePointer(pointer: bs.baseAddress!)
                            Parallelism.run(parts) { part in
                                let range = Conv2D.range(blocks, parts, part)
                                mk_relu_mask_block_sums(rows, columns, range.lowerBound, range.upperBound, gp.pointer,
                                                        op.pointer, dp.pointer, bp.pointer)
                            }
                        }
                    }
                }
            }
            if result != nil {
                blockSums.withUnsafeBufferPointer { bs in
                    result!.withUnsafeMutableBufferPointer { r in
                        mk_sum_blocks(blocks, columns, bs.baseAddress!, r.baseAddress!)
                    }
                }
            }
            return result
        }
        dy.withUnsafeBufferPointer { g in
            output.withUnsafeBufferPointer { o in
                masked.withUnsafeMutableBufferPointer { d in
                    if result != nil {
                        result!.withUnsafeMutableBufferPointer { s in
                            mk_relu_backward_column_sums(rows, columns, g.baseAddress, o.baseAddress, d.baseAddress,
                                                         s.baseAddress)
                        }
                    } else {
                        mk_relu_backward_column_sums(rows, columns, g.baseAddress, o.baseAddress, d.baseAddress, nil)
                    }
                }
            }
        }
        return result
    }
}
