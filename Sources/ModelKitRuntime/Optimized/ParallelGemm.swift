/// How the GEMM-backed steps split across a `WorkerPool`. Every output element is computed by
/// exactly one task with the same kernel call shape along K as the single-thread path, so results
/// match it up to the GEMM's row/column tiling (int8: exactly).
enum ParallelGemm {
    /// Splits 0..<count into `parts` contiguous ranges whose bounds are multiples of `granule`.
    @inline(__always)
    static func chunk(_ task: Int, of parts: Int, count: Int, granule: Int) -> Range<Int> {
        let units = (count + granule - 1) / granule
        let lower = min(count, units * task / parts * granule)
        let upper = min(count, units * (task + 1) / parts * granule)
        return lower..<upper
    }

    /// Walks rows `rows` of a flattened [batch × pixels, outputs] convolution result in runs that
    /// stay inside one image and hold at most `maxRows` rows: `body(image, pixels of that image,
    /// first flattened row)`.
    @inline(__always)
    static func forEachImageRun(_ rows: Range<Int>, pixels: Int, maxRows: Int,
                                _ body: (_ image: Int, _ run: Range<Int>, _ row: Int) -> Void) {
        var row = rows.lowerBound
        while row < rows.upperBound {
            let image = row / pixels
            let first = row - image * pixels
            let last = min(pixels, rows.upperBound - image * pixels, first + maxRows)
            body(image, first..<last, row)
            row += last - first
        }
    }
}
