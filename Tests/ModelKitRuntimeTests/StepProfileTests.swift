import CModelKitKernels
import ModelKitCore
@testable import ModelKitRuntime
import Testing

/// `Session.profile`: one entry per step in run order, times only from runs made with profiling on,
/// and a reset or a new plan starts from zero.
@Suite("step profile")
struct StepProfileTests {
    @Test func timesOnlyProfiledRuns() throws {
        let session = try Session(model: smallConvNet())
        var random = SplitMix64(seed: 7)
        let image = Tensor(shape: [2, 6, 6, 2], floats: random.floats(144))
        _ = try session.run(image)
        let names = session.profile.map(\.node)
        // Flatten aliases its input: it is no step.
        #expect(names == ["conv", "pool", "dense", "softmax"])
        #expect(session.profile.allSatisfy { $0.nanoseconds == 0 && $0.runs == 0 })

        session.isProfiling = true
        for _ in 0..<3 { _ = try session.run(image) }
        let profile = session.profile
        #expect(profile.allSatisfy { $0.runs == 3 && $0.nanoseconds > 0 && $0.milliseconds > 0 })
        #expect(profile.map(\.operation) == ["Conv2D", "MaxPool2D", "Dense", "Softmax"])
        // The 3x3 convolution's window (18 values) is read in place on the AVX2 path.
        let convKernel = mk_kernels_active() == Int32(MK_KERNELS_AVX2.rawValue) ? "window gemm" : "im2col gemm"
        #expect(profile[0].kernel == convKernel && profile[3].kernel == "reference")

        session.resetProfile()
        #expect(session.profile.allSatisfy { $0.nanoseconds == 0 && $0.runs == 0 })
        _ = try session.run(image)
        #expect(session.profile.allSatisfy { $0.runs == 1 })
        // Another batch makes a new plan, whose profile starts empty.
        session.isProfiling = false
        _ = try session.run(Tensor(shape: [1, 6, 6, 2], floats: random.floats(72)))
        #expect(session.profile.allSatisfy { $0.runs == 0 })
    }
}
