import Foundation
import ModelKitCore
import ModelKitFormat
import ModelKitRuntime
import Testing

@Suite struct BenchCommandTests {
    @Test(arguments: [(1, 1), (8, 2)])
    func jsonReportIsConsistent(batch: Int, threads: Int) throws {
        let model = fixture("models/fashion-mlp.mkm")
        let result = try modelkit("bench", model, "--batch", "\(batch)", "--threads", "\(threads)", "--runs", "30",
                                  "--warmup", "2", "--json")
        #expect(result.status == 0, "\(result.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        #expect(json["batch"] as? Int == batch && json["threads"] as? Int == threads && json["runs"] as? Int == 30)
        let median = json["median_ms"] as! Double, p90 = json["p90_ms"] as! Double, p99 = json["p99_ms"] as! Double
        let minimum = json["min_ms"] as! Double
        #expect(0 < minimum && minimum <= median && median <= p90 && p90 <= p99)
        // The per-run latencies behind those figures, ascending.
        let latencies = json["latencies_ms"] as! [Double]
        #expect(latencies.count == 30 && latencies == latencies.sorted())
        #expect(latencies.first == minimum && latencies[14] == median && latencies.last == json["p99_ms"] as? Double ?? -1)
        // Throughput is samples over the summed latencies, which lie between min and p99 each.
        let throughput = json["throughput_per_s"] as! Double
        #expect(throughput <= Double(batch) / minimum * 1000 * 1.0001)
        #expect(throughput >= Double(batch) / p99 * 1000 * 0.9999)
        for key in ["load_ms", "plan_ms", "first_run_ms"] { #expect((json[key] as! Double) > 0, "\(key)") }

        // The arena is the one a session plans for this batch and thread count.
        let session = try Session(model: try ModelFile.read(path: model), options: SessionOptions(threads: threads))
        try session.prepare(inputShapes: [Shape([batch, 28, 28, 1])])
        #expect(json["arena_bytes"] as? Int == session.arenaBytes)
        #expect(json["weight_bytes"] as? Int == session.constantBytes)
        #expect((json["peak_rss_bytes"] as! Int) > 1_000_000)
    }

    @Test func textReport() throws {
        let result = try modelkit("bench", fixture("models/tiny-cnn.mkm"), "--runs", "5")
        #expect(result.status == 0)
        let keys = result.stdout.split(separator: "\n").map { $0.split(separator: ":").first.map(String.init) ?? "" }
        #expect(keys == ["model", "threads", "load", "plan", "first run", "latency", "throughput", "arena", "peak RSS"])
    }

    @Test func errors() throws {
        let missing = try modelkit("bench", "/no/such.mkm")
        #expect(missing.status == 66)
        #expect(missing.stderr == "modelkit: error: /no/such.mkm: no such file\n")
        let runs = try modelkit("bench", fixture("models/tiny-cnn.mkm"), "--runs", "0")
        #expect(runs.status == 64)
        #expect(runs.stderr.contains("--runs must be at least 1"))
        let corrupt = try modelkit("bench", fixture("corrupt/truncated-mid-frame.mkm"))
        #expect(corrupt.status == 65)
        let work = try modelkit("bench", fixture("models/tiny-cnn.mkm"), "--parallel-minimum-work=-1")
        #expect(work.status == 64)
        #expect(work.stderr.contains("--parallel-minimum-work must be >= 0"))
    }

    /// A split of every layer (threshold 0) across two threads runs and reports like the default.
    @Test func parallelMinimumWorkOverride() throws {
        let result = try modelkit("bench", fixture("models/tiny-cnn.mkm"), "--threads", "2", "--runs", "5",
                                  "--parallel-minimum-work", "0", "--json")
        #expect(result.status == 0, "\(result.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        #expect((json["latencies_ms"] as? [Double])?.count == 5)
    }
}

@Suite struct BenchProfileTests {
    @Test func profileListsEveryStep() throws {
        let model = fixture("models/tiny-cnn.mkm")
        let result = try modelkit("bench", model, "--runs", "4", "--warmup", "0", "--profile", "--json")
        #expect(result.status == 0, "\(result.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as! [String: Any]
        let profile = json["profile"] as! [[String: Any]]
        let session = try Session(model: try ModelFile.read(path: model))
        #expect(profile.count == session.stepCount)
        let times = profile.map { $0["mean_ms"] as! Double }
        #expect(times.allSatisfy { $0 > 0 } && times == times.sorted(by: >))
        #expect(Set(profile.map { $0["node"] as! String }).count == profile.count)

        let text = try modelkit("bench", model, "--runs", "2", "--profile")
        #expect(text.status == 0)
        #expect(text.stdout.contains("profile:") && text.stdout.contains("by op:"))
        let plain = try modelkit("bench", model, "--runs", "2", "--json")
        #expect(!plain.stdout.contains("profile"))
    }
}
