import ModelKitCore
import ModelKitRuntime

/// How an activation's int8 range is chosen from what calibration saw.
public enum CalibrationMethod: Sendable, Hashable {
    /// The observed minimum and maximum.
    case minMax
    /// The given percentile of the values on each side (e.g. 99.99 cuts 0.01% at each end), from
    /// a histogram; ignores rare outliers at the cost of clipping them.
    case percentile(Double)
    /// The clipping threshold whose int8 version loses the least information (minimum KL
    /// divergence over a histogram of |x|, see `EntropyCalibration`).
    case entropy

    /// How it is written on the command line and in model metadata.
    public var name: String {
        switch self {
        case .minMax: return "minmax"
        case .percentile(let p): return "percentile(\(p))"
        case .entropy: return "entropy"
        }
    }
}

/// Per-value float ranges of a graph, observed by running it over calibration batches.
public struct ActivationRanges: Sendable {
    public var ranges: [String: ClosedRange<Float>]

    public static let histogramBins = 2048

    /// Runs `graph` over `batches` (each shaped like the single graph input) and records the range of
    /// every float value: graph inputs and node outputs. With `.percentile` and `.entropy`, a second
    /// pass fills a histogram per value (of the values over min…max, or of the non-zero |x| over
    /// 0…max |x|) and the range shrinks to what the method picks. `progress(done, total)` follows the batches run.
    public static func collect(graph: Graph, batches: [Tensor], method: CalibrationMethod,
                               progress: ((_ done: Int, _ total: Int) -> Void)? = nil) throws -> ActivationRanges {
        guard !batches.isEmpty else { throw QuantizationError.noCalibrationData }
        guard graph.inputs.count == 1 else { throw QuantizationError.notSingleInput(count: graph.inputs.count) }
        if case .percentile(let percentile) = method, !(percentile > 50 && percentile <= 100) {
            throw QuantizationError.invalidOption(reason: "percentile \(percentile) must be in (50, 100]")
        }
        let input = graph.inputs[0]
        for batch in batches {
            let fits = batch.shape.rank == input.shape.rank
                && zip(batch.shape.dims, input.shape.dims).allSatisfy { $1 == -1 ? $0 >= 1 : $0 == $1 }
            guard fits, batch.dtype == .float32 else {
                throw QuantizationError.calibrationShape(expected: input.shape, actual: batch.shape)
            }
            // Named here, before a NaN spreads to every value downstream.
            guard batch.floats!.allSatisfy({ $0.isFinite }) else {
                throw QuantizationError.nonFiniteCalibration(value: input.name)
            }
        }
        var observed = graph
        observed.outputs = [input.name] + graph.nodes.map { $0.outputs[0] }
        let session: Session
        do {
            session = try Session(model: Model(graph: observed))
        } catch {
            throw QuantizationError.invalidGraph(reason: "\(error)")
        }
        let passes = method == .minMax ? 1 : 2
        var done = 0
        func step() {
            done += 1
            progress?(done, passes * batches.count)
        }
        var minimum: [String: Float] = [:]
        var maximum: [String: Float] = [:]
        for batch in batches {
            for (name, tensor) in try session.run([input.name: batch]) {
                guard let values = tensor.floats else { continue }
                var lo = minimum[name] ?? .infinity
                var hi = maximum[name] ?? -.infinity
                for value in values {
                    guard value.isFinite else { throw QuantizationError.nonFiniteCalibration(value: name) }
                    lo = min(lo, value)
                    hi = max(hi, value)
                }
                minimum[name] = lo
                maximum[name] = hi
            }
            step()
        }
        var ranges: [String: ClosedRange<Float>] = [:]
        for (name, lo) in minimum { ranges[name] = lo...maximum[name]! }
        guard method != .minMax else { return ActivationRanges(ranges: ranges) }

        // Second pass: a histogram per value over the range the first pass found.
        let absolute = method == .entropy
        var histograms: [String: [Int]] = [:]
        for batch in batches {
            for (name, tensor) in try session.run([input.name: batch]) {
                guard let values = tensor.floats, let range = ranges[name] else { continue }
                var counts = histograms[name] ?? [Int](repeating: 0, count: histogramBins)
                let origin = absolute ? 0 : range.lowerBound
                let width = absolute ? max(-range.lowerBound, range.upperBound) : range.upperBound - range.lowerBound
                let binsPerUnit = width > 0 ? Float(histogramBins) / width : 0
                for value in values {
                    // Exact zeros (most of a ReLU output) have their own code on every grid: counted,
                    // they would blur into the first level and make every wide threshold look bad.
                    if absolute && value == 0 { continue }
                    let bin = Int(((absolute ? abs(value) : value) - origin) * binsPerUnit)
                    counts[min(max(bin, 0), histogramBins - 1)] += 1
                }
                histograms[name] = counts
            }
            step()
        }
        for (name, counts) in histograms {
            switch method {
            case .percentile(let percentile):
                ranges[name] = percentileRange(counts, range: ranges[name]!, percentile: percentile)
            case .entropy:
                ranges[name] = EntropyCalibration.range(absoluteCounts: counts, observed: ranges[name]!)
            case .minMax:
                break
            }
        }
        return ActivationRanges(ranges: ranges)
    }

    /// The bin edges below which (and above which) at most (100 − percentile)% of the values lie.
    static func percentileRange(_ counts: [Int], range: ClosedRange<Float>, percentile: Double) -> ClosedRange<Float> {
        let total = counts.reduce(0, +)
        guard total > 0, range.upperBound > range.lowerBound else { return range }
        let tail = Int((Double(total) * (100 - percentile) / 100).rounded(.down))
        let width = (range.upperBound - range.lowerBound) / Float(counts.count)
        var low = 0
        var seen = 0
        while low < counts.count - 1 && seen + counts[low] <= tail {
            seen += counts[low]
            low += 1
        }
        var high = counts.count - 1
        seen = 0
        while high > low && seen + counts[high] <= tail {
            seen += counts[high]
            high -= 1
        }
        return (range.lowerBound + Float(low) * width)...(range.lowerBound + Float(high + 1) * width)
    }

    /// Asymmetric per-tensor int8 parameters covering `range` (widened to include 0, so zero is
    /// exact and ReLU/padding map to a code).
    public static func parameters(for range: ClosedRange<Float>) -> QuantizationParameters {
        let lo = min(range.lowerBound, 0)
        let hi = max(range.upperBound, 0)
        var scale = (hi - lo) / 255
        if !(scale > 0) || !scale.isFinite { scale = 1 }
        let zeroPoint = min(max((-128 - lo / scale).rounded(), -128), 127)
        return QuantizationParameters(scale: scale, zeroPoint: Int32(zeroPoint))
    }
}
