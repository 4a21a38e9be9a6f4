// Release-build benchmark: GEMM throughput per kernel path, and one seed-cnn training step.
// swift run -c release --scratch-path .build-training TrainingBenchmark [gemm|step|all]
import CModelKitKernels
import ModelKitTraining
#if canImport(Glibc)
import Glibc
#endif

func now() -> Double { clock(CLOCK_MONOTONIC) }
/// CPU time of the whole process: less sensitive than wall time to other jobs on shared cores.
func cpuNow() -> Double { clock(CLOCK_PROCESS_CPUTIME_ID) }

func clock(_ id: clockid_t) -> Double {
    var spec = timespec()
    clock_gettime(id, &spec)
    return Double(spec.tv_sec) + Double(spec.tv_nsec) * 1e-9
}

func benchGemm(m: Int, n: Int, k: Int, transA: Bool, transB: Bool, path: KernelPath, threads: Int) -> Double {
    var rng = RandomGenerator(seed: 1)
    let a = (0..<(m * k)).map { _ in rng.nextFloat(in: -1, 1) }
    let b = (0..<(k * n)).map { _ in rng.nextFloat(in: -1, 1) }
    var c = [Float](repeating: 0, count: m * n)
    let flops = 2.0 * Double(m) * Double(n) * Double(k)
    let repeats = max(3, Int(3e9 / flops))
    var best = Double.infinity
    a.withUnsafeBufferPointer { pa in
        b.withUnsafeBufferPointer { pb in
            c.withUnsafeMutableBufferPointer { pc in
                for _ in 0..<3 {
                    let start = now()
                    for _ in 0..<max(1, repeats / 3) {
                        Gemm.multiply(transA: transA, transB: transB, m: m, n: n, k: k, a: pa.baseAddress!,
                                      lda: transA ? m : k, b: pb.baseAddress!, ldb: transB ? k : n,
                                      c: pc.baseAddress!, ldc: n, threads: threads, path: path)
                    }
                    best = min(best, (now() - start) / Double(max(1, repeats / 3)))
                }
            }
        }
    }
    return flops / best / 1e9
}

func benchStep() throws {
    let network = try Network.seedCNN(seed: 42)
    let optimizer = Adam(learningRate: 1e-3)
    var rng = RandomGenerator(seed: 3)
    let batch = Batch(shape: [32, 28, 28, 1], values: (0..<(32 * 784)).map { _ in rng.nextFloat() })
    let labels = (0..<32).map { _ in Int32(rng.nextInt(below: 10)) }
    var times: [Double] = []
    var cpuTimes: [Double] = []
    for _ in 0..<60 {
        let start = now()
        let cpuStart = cpuNow()
        let logits = try network.forward(batch, training: true)
        let loss = try SoftmaxCrossEntropy.compute(logits: logits, labels: labels)
        try network.backward(loss.gradient)
        try optimizer.step(network.parameters)
        times.append(now() - start)
        cpuTimes.append(cpuNow() - cpuStart)
    }
    times.removeFirst(10)
    times.sort()
    cpuTimes.removeFirst(10)
    cpuTimes.sort()
    let median = times[times.count / 2]
    print("seed-cnn step (batch 32, fwd+bwd+Adam, \(Parallelism.threadCount) threads): median \(format3(median * 1e3)) ms, best \(format3(times[0] * 1e3)) ms")
    print("  CPU time per step (all threads): median \(format3(cpuTimes[cpuTimes.count / 2] * 1e3)) ms, best \(format3(cpuTimes[0] * 1e3)) ms")
    print("  extrapolated 5 epochs x 1875 steps: \(format3(median * 1875 * 5)) s")
}

func format3(_ x: Double) -> String {
    let scaled = (x * 1000).rounded() / 1000
    return "\(scaled)"
}

let mode = CommandLine.arguments.count > 1 ? CommandLine.arguments[1] : "all"
// What a trainer process does first; MODELKIT_DEFAULT_MALLOC=1 measures without it.
if getenv("MODELKIT_DEFAULT_MALLOC") == nil, !TrainingMemory.retainFreedMemory() {
    print("warning: allocator tuning not applied")
}
if mode == "gemm" || mode == "all" {
    print("GEMM GFLOP/s, best supported path: \(KernelPath.bestSupported)")
    let shapes: [(Int, Int, Int, Bool, Bool, String)] = [
        (1024, 1024, 1024, false, false, "square 1024"),
        (3872, 64, 288, false, true, "conv2 fwd  A*Bt"),
        (64, 288, 3872, true, false, "conv2 dW   At*B"),
        (3872, 288, 64, false, false, "conv2 dX   A*B"),
    ]
    for (m, n, k, ta, tb, label) in shapes {
        var line = "\(label) \(m)x\(n)x\(k):"
        for path in KernelPath.allCases where path.isSupported {
            line += " \(path)=\(format3(benchGemm(m: m, n: n, k: k, transA: ta, transB: tb, path: path, threads: 1)))"
        }
        line += " | 2 threads=\(format3(benchGemm(m: m, n: n, k: k, transA: ta, transB: tb, path: .bestSupported, threads: 2)))"
        print(line)
    }
}
if mode == "step" || mode == "all" {
    try benchStep()
}

/// Per-layer forward/backward times of seed-cnn at batch 32 (sequential chain), best of 30.
func benchLayers() throws {
    let network = try Network.seedCNN(seed: 42)
    var rng = RandomGenerator(seed: 3)
    let batch = Batch(shape: [32, 28, 28, 1], values: (0..<(32 * 784)).map { _ in rng.nextFloat() })
    let labels = (0..<32).map { _ in Int32(rng.nextInt(below: 10)) }
    var forwardBest = [Double](repeating: .infinity, count: network.nodes.count)
    var backwardBest = forwardBest
    for _ in 0..<30 {
        var x = batch
        for (index, node) in network.nodes.enumerated() {
            let start = now()
            x = try node.layer.forward([x], training: true, rng: &network.rng)
            forwardBest[index] = min(forwardBest[index], now() - start)
        }
        var g = try SoftmaxCrossEntropy.compute(logits: x, labels: labels).gradient
        for index in stride(from: network.nodes.count - 1, through: 0, by: -1) {
            let start = now()
            let grads = try network.nodes[index].layer.backward(g, needInputGradients: index > 0)
            backwardBest[index] = min(backwardBest[index], now() - start)
            if index > 0 { g = grads[0] }
        }
    }
    for (index, node) in network.nodes.enumerated() {
        print("  \(node.layer.name): forward \(format3(forwardBest[index] * 1e3)) ms, backward \(format3(backwardBest[index] * 1e3)) ms")
    }
    print("  total: forward \(format3(forwardBest.reduce(0, +) * 1e3)) ms, backward \(format3(backwardBest.reduce(0, +) * 1e3)) ms")
}

if mode == "layers" || mode == "all" {
    print("seed-cnn per layer (best of 30, \(Parallelism.threadCount) threads):")
    try benchLayers()
}

if mode == "fashion" {
    let epochs = CommandLine.arguments.count > 2 ? Int(CommandLine.arguments[2]) ?? 1 : 1
    try trainFashionMNIST(epochs: epochs, directory: "/usr/share/datasets/fashion-mnist")
}
