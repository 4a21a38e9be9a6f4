#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Wall time one step of the plan took, summed over the runs made while profiling was on.
public struct StepProfile: Sendable, Equatable {
    /// The graph node the step runs.
    public let node: String
    /// The node's operation (e.g. "Conv2D").
    public let operation: String
    /// Which implementation ran it (e.g. "depthwise", "int8 gemm", "reference").
    public let kernel: String
    public let nanoseconds: UInt64
    /// Runs the time is summed over.
    public let runs: Int

    /// Mean milliseconds per run.
    public var milliseconds: Double { runs == 0 ? 0 : Double(nanoseconds) / Double(runs) / 1e6 }
}

/// Per-step nanosecond totals of one plan. Written only by `ExecutionPlan.execute(profiling:)`,
/// on the session's thread.
final class StepTimes {
    let nanoseconds: UnsafeMutableBufferPointer<UInt64>
    var runs = 0

    init(steps: Int) {
        nanoseconds = .allocate(capacity: max(steps, 1))
        nanoseconds.initialize(repeating: 0)
    }

    deinit { nanoseconds.deallocate() }

    func reset() {
        for index in nanoseconds.indices { nanoseconds[index] = 0 }
        runs = 0
    }

    /// A monotonic clock reading.
    @inline(__always)
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }
}

extension StepKernel {
    /// A short name of the implementation, for profiles.
    var name: String {
        switch self {
        case .reference: return "reference"
        case .gemmConv2D(let conv):
            // A fused residual Add shows in the name, so profiles account for the Add's time.
            let add = conv.residual == nil ? "" : "+add"
            switch conv.method {
            case .directSingleChannel: return "direct conv" + add
            case .pointwise: return "pointwise gemm" + add
            case .direct: return "direct row gemm" + add
            case .im2col: return "im2col gemm" + add
            case .winograd: return "winograd gemm" + add
            }
        case .gemmDense(let dense): return dense.rowGemm ? "row gemm" : "gemm"
        case .maxPool2D: return "max pool"
        case .int8Gemm(let gemm):
            if gemm.geometry == nil { return "int8 gemm" }
            return gemm.maxPool != nil ? "int8 direct conv+max pool" : gemm.direct ? "int8 direct conv" : "int8 im2col gemm"
        case .depthwiseConv2D: return "depthwise"
        case .sameShapeAdd: return "add"
        case .globalAveragePool: return "average pool"
        case .int8(let step): return step.kernelName
        }
    }
}
