#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// KL-divergence ("entropy") calibration in the manner of TensorRT's: over a histogram of |x|, each
/// candidate threshold T clips the distribution at T (the clipped mass folded into the last bin) and
/// is scored by how much information quantizing [0, T] to the available int8 levels loses, measured
/// as KL(reference ‖ quantized). The threshold with the smallest divergence wins: it trades clipping
/// error (T too small) against rounding error (T too large), so a few far outliers get clipped while
/// a dense tail is kept.
enum EntropyCalibration {
    /// Candidate thresholds start at this many bins (of 2048): a smaller cut would be extreme.
    static let firstCandidate = 128

    /// The range to quantize for a value observed over `observed`, given the histogram of its
    /// absolute values over [0, max(|min|, |max|)]. The threshold applies to the larger side; the
    /// other side is clipped to the threshold too when it reaches further. A one-sided tensor (e.g.
    /// after ReLU) gets [0, T] and its search counts all 255 levels over [0, T]; a symmetric one
    /// gets about 127 levels per side; in between, the levels over [0, T] are 255·T / (T + other side).
    static func range(absoluteCounts counts: [Int], observed: ClosedRange<Float>) -> ClosedRange<Float> {
        let (lo, hi) = (observed.lowerBound, observed.upperBound)
        let larger = max(-lo, hi)
        let smaller = max(0, min(-lo, hi))
        guard larger > 0, counts.count > firstCandidate, counts.contains(where: { $0 > 0 }) else { return observed }
        let width = larger / Float(counts.count)
        let bins = thresholdBins(counts) { candidate in
            let threshold = Float(candidate) * width
            return Int(255 * threshold / (threshold + min(smaller, threshold)))
        }
        let threshold = Float(bins) * width
        return max(lo, -threshold)...min(hi, threshold)
    }

    /// The number of histogram bins (from the first) to keep: the candidate with the least KL
    /// divergence. `levels(i)` is how many int8 codes would cover the first i bins.
    static func thresholdBins(_ counts: [Int], levels: (Int) -> Int) -> Int {
        let binCount = counts.count
        var tail = [Int](repeating: 0, count: binCount + 1)  // tail[i] = Σ counts[i...]
        for index in stride(from: binCount - 1, through: 0, by: -1) { tail[index] = tail[index + 1] + counts[index] }
        var best = (bins: binCount, divergence: Double.infinity)
        var reference = [Double](repeating: 0, count: binCount)
        var quantized = [Double](repeating: 0, count: binCount)
        for bins in firstCandidate...binCount {
            // Reference: the first `bins` bins, everything beyond folded into the last one (clipping).
            for index in 0..<bins { reference[index] = Double(counts[index]) }
            reference[bins - 1] += Double(tail[bins])
            // Quantized: the unclipped bins merged into `levels` groups, each group's mass spread
            // evenly over the group's bins that the reference holds something in.
            let levelCount = max(1, min(levels(bins), bins))
            for level in 0..<levelCount {
                let start = level * bins / levelCount
                let end = (level + 1) * bins / levelCount
                var mass = 0.0
                var occupied = 0
                for index in start..<end {
                    mass += Double(counts[index])
                    if reference[index] > 0 { occupied += 1 }
                }
                let share = occupied > 0 ? mass / Double(occupied) : 0
                for index in start..<end { quantized[index] = reference[index] > 0 ? share : 0 }
            }
            let divergence = klDivergence(reference[0..<bins], quantized[0..<bins])
            if divergence < best.divergence { best = (bins, divergence) }
        }
        return best.bins
    }

    /// KL(p ‖ q) of two unnormalised histograms, normalised here. A bin p holds and q does not
    /// (possible in the last bin, which gets the clipped mass) counts as a tiny q, not infinity.
    static func klDivergence(_ p: ArraySlice<Double>, _ q: ArraySlice<Double>) -> Double {
        let pTotal = p.reduce(0, +)
        let qTotal = q.reduce(0, +)
        guard pTotal > 0 else { return 0 }
        guard qTotal > 0 else { return .infinity }
        let floor = 1e-4 / Double(p.count)
        var sum = 0.0
        for index in p.indices where p[index] > 0 {
            let pi = p[index] / pTotal
            let qi = max(q[index] / qTotal, floor)
            sum += pi * log(pi / qi)
        }
        return sum
    }
}
