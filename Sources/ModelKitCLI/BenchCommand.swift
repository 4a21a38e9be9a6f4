import ArgumentParser
import Foundation
import ModelKitCore
import ModelKitRuntime

struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time a model: load, plan, first run, then latency percentiles and throughput.",
        discussion: """
            Feeds deterministic pseudo-random inputs of shape [BATCH, ...] through the allocation-free \
            buffer API. Latency is per run (one batch); throughput is samples per second over the timed \
            runs. Peak RSS is the process high-water mark (VmHWM) after the runs.
            """)

    @Argument(help: "A .mkm model or .mkc checkpoint.")
    var model: String

    @Option(help: "Worker threads.")
    var threads = 1

    @Option(help: "Samples per run (replaces a dynamic batch dimension).")
    var batch = 1

    @Option(help: "Timed runs.")
    var runs = 100

    @Option(help: "Untimed runs before the timed ones (after the first run).")
    var warmup = 10

    @Option(help: ArgumentHelp("Layers with fewer multiply-adds than this run on one thread (default: the runtime's).",
                               valueName: "multiply-adds"))
    var parallelMinimumWork: Int?

    @Flag(help: "Print JSON instead of text.")
    var json = false

    @Flag(help: "After the timed runs, time every step over as many runs again and list them, slowest first.")
    var profile = false

    func validate() throws {
        guard threads >= 1 else { throw ValidationError("--threads must be at least 1") }
        guard batch >= 1 else { throw ValidationError("--batch must be at least 1") }
        guard runs >= 1 else { throw ValidationError("--runs must be at least 1") }
        guard warmup >= 0 else { throw ValidationError("--warmup must be >= 0") }
        if let parallelMinimumWork, parallelMinimumWork < 0 {
            throw ValidationError("--parallel-minimum-work must be >= 0")
        }
    }

    func run() throws {
        try reportingFailures {
            let result = try measure()
            print(json ? try jsonText(result.jsonObject) : result.text)
        }
    }

    struct Result {
        var model: String
        var threads: Int
        var batch: Int
        var runs: Int
        var loadMilliseconds: Double
        var planMilliseconds: Double
        var firstRunMilliseconds: Double
        /// Sorted per-run latencies.
        var latencies: [Double]
        var arenaBytes: Int
        var weightBytes: Int
        var peakRSSBytes: Int?
        /// Per-step times (with `--profile`), slowest first.
        var profile: [StepProfile] = []

        func percentile(_ p: Double) -> Double {
            // Nearest rank: the smallest latency with at least p of the runs at or below it.
            let rank = Int((p * Double(latencies.count)).rounded(.up))
            return latencies[min(latencies.count - 1, max(0, rank - 1))]
        }
        var median: Double { percentile(0.5) }
        var throughput: Double { Double(batch * runs) / (latencies.reduce(0, +) / 1000) }

        var jsonObject: [String: Any] {
            var object: [String: Any] = [
                "model": model, "threads": threads, "batch": batch, "runs": runs,
                "load_ms": loadMilliseconds, "plan_ms": planMilliseconds, "first_run_ms": firstRunMilliseconds,
                "median_ms": median, "p90_ms": percentile(0.9), "p99_ms": percentile(0.99),
                "min_ms": latencies[0], "throughput_per_s": throughput,
                "arena_bytes": arenaBytes, "weight_bytes": weightBytes,
                // Every run's latency, ascending: lets a harness pool runs from several processes
                // (Tools/bench-peers interleaves engines in rounds) instead of averaging medians.
                "latencies_ms": latencies,
            ]
            if let peakRSSBytes { object["peak_rss_bytes"] = peakRSSBytes }
            if !profile.isEmpty {
                object["profile"] = profile.map {
                    ["node": $0.node, "op": $0.operation, "kernel": $0.kernel, "mean_ms": $0.milliseconds] as [String: Any]
                }
            }
            return object
        }

        /// The steps slowest first, then the time per operation and kernel.
        var profileLines: [String] {
            let total = profile.reduce(0) { $0 + $1.milliseconds }
            func share(_ value: Double) -> String { formatted(total > 0 ? 100 * value / total : 0, decimals: 1) + "%" }
            let width = profile.map(\.node.count).max() ?? 4
            func padded(_ text: String, _ count: Int) -> String { text + String(repeating: " ", count: max(0, count - text.count)) }
            var lines = ["profile:     mean ms per run over \(runs) runs, \(formatted(total, decimals: 3)) ms in steps",
                         "  " + padded("node", width) + "  " + padded("op", 18) + padded("kernel", 18) + "      ms   share"]
            for step in profile {
                let ms = formatted(step.milliseconds, decimals: 3)
                lines.append("  " + padded(step.node, width) + "  " + padded(step.operation, 18) + padded(step.kernel, 18)
                             + String(repeating: " ", count: max(0, 8 - ms.count)) + ms + "  " + share(step.milliseconds))
            }
            var groups: [String: (ms: Double, count: Int)] = [:]
            for step in profile {
                let key = step.operation + " / " + step.kernel
                groups[key, default: (0, 0)].ms += step.milliseconds
                groups[key, default: (0, 0)].count += 1
            }
            lines.append("by op:")
            for (key, group) in groups.sorted(by: { $0.value.ms > $1.value.ms }) {
                let ms = formatted(group.ms, decimals: 3)
                lines.append("  " + padded(key + " (\(group.count))", 40) + String(repeating: " ", count: max(0, 8 - ms.count))
                             + ms + "  " + share(group.ms))
            }
            return lines
        }

        var text: String {
            func ms(_ value: Double) -> String { formatted(value, decimals: 3) + " ms" }
            var lines = [
                "model:       \(model)",
                "threads:     \(threads)   batch: \(batch)   runs: \(runs)",
                "load:        \(ms(loadMilliseconds))   (read, decompress, verify)",
                "plan:        \(ms(planMilliseconds))   (session, shapes, arena, at batch \(batch))",
                "first run:   \(ms(firstRunMilliseconds))",
                "latency:     median \(ms(median)), p90 \(ms(percentile(0.9))), p99 \(ms(percentile(0.99))), min \(ms(latencies[0]))",
                "throughput:  \(formatted(throughput, decimals: 1)) samples/s",
                "arena:       \(arenaBytes) bytes   weights: \(weightBytes) bytes",
            ]
            if let peakRSSBytes { lines.append("peak RSS:    \(peakRSSBytes) bytes") }
            if !profile.isEmpty { lines += profileLines }
            return lines.joined(separator: "\n")
        }
    }

    func measure() throws -> Result {
        ProcessMemory.retainFreedBlocks()
        var clock = DispatchTime.now()
        func lap() -> Double {
            let now = DispatchTime.now()
            defer { clock = now }
            return Double(now.uptimeNanoseconds - clock.uptimeNanoseconds) / 1e6
        }
        let loaded = try LoadedModel(path: model)
        let loadMilliseconds = lap()
        var options = SessionOptions(threads: threads)
        if let parallelMinimumWork { options.parallelMinimumWork = parallelMinimumWork }
        let session = try Session(model: loaded.model, options: options)
        let sessionMilliseconds = lap()
        let graph = loaded.model.graph
        var inputs: [InputBuffer] = []
        var storage: [UnsafeMutableBufferPointer<Float>] = []
        defer { for buffer in storage { buffer.deallocate() } }
        var random: UInt64 = 0x2545_F491_4F6C_DD1D
        for input in graph.inputs {
            guard input.shape.rank >= 1 else { throw CommandFailure.data("model input '\(input.name)' is a scalar") }
            let first = input.shape[0]
            guard first == -1 || first == batch else {
                throw CommandFailure.usage("model input '\(input.name)' has a fixed batch of \(first); --batch \(batch) does not fit")
            }
            let shape = Shape([batch] + input.shape.dims.dropFirst())
            guard shape.isFullyKnown, let count = shape.elementCount else {
                throw CommandFailure.data("model input '\(input.name)' has dynamic dimensions besides the batch: \(input.shape)")
            }
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: max(count, 1))
            for index in buffer.indices {
                random = random &* 6364136223846793005 &+ 1442695040888963407
                buffer[index] = Float(random >> 40) / Float(1 << 24)
            }
            storage.append(buffer)
            inputs.append(InputBuffer(data: UnsafePointer(buffer.baseAddress!), count: count, shape: shape))
        }
        // Plan for this batch now, so the first run below is a pure run.
        _ = lap()
        try session.prepare(inputShapes: inputs.map(\.shape))
        let planMilliseconds = sessionMilliseconds + lap()
        var outputs: [OutputBuffer] = []
        for index in graph.outputs.indices {
            let count = max(1, session.plannedOutputShape(index).elementCount ?? 1)
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            storage.append(buffer)
            outputs.append(OutputBuffer(data: buffer.baseAddress!, capacity: count))
        }
        _ = lap()
        try session.run(inputs: inputs, outputs: outputs)
        let firstRunMilliseconds = lap()
        for _ in 0..<warmup { try session.run(inputs: inputs, outputs: outputs) }
        var latencies: [Double] = []
        latencies.reserveCapacity(runs)
        for _ in 0..<runs {
            _ = lap()
            try session.run(inputs: inputs, outputs: outputs)
            latencies.append(lap())
        }
        latencies.sort()
        var result = Result(model: model, threads: threads, batch: batch, runs: runs, loadMilliseconds: loadMilliseconds,
                            planMilliseconds: planMilliseconds, firstRunMilliseconds: firstRunMilliseconds,
                            latencies: latencies, arenaBytes: session.arenaBytes, weightBytes: session.constantBytes,
                            peakRSSBytes: peakRSS())
        // Separate runs, so the clock reads of profiling stay out of the latencies above.
        if profile {
            session.isProfiling = true
            for _ in 0..<runs { try session.run(inputs: inputs, outputs: outputs) }
            result.profile = session.profile.sorted { $0.nanoseconds > $1.nanoseconds }
        }
        return result
    }
}

/// The process's peak resident set size (VmHWM in /proc/self/status), nil where unavailable.
func peakRSS() -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmHWM:") {
        let fields = line.split(separator: " ", omittingEmptySubsequences: true)
        guard fields.count >= 3, let value = Int(fields[1]), fields[2] == "kB" else { return nil }
        return value * 1024
    }
    return nil
}
