import Dispatch
import Testing
@testable import ModelKitTraining

/// The persistent worker pool behind Parallelism.run: every part runs exactly once, also with
/// nested calls and several threads calling at the same time (those run inline).
@Suite struct WorkerPoolTests {
    final class Counts: @unchecked Sendable {
        // Invariant: each part index is written by exactly one call of the body.
        let pointer: UnsafeMutablePointer<Int>
        let count: Int
        init(_ count: Int) {
            self.count = count
            pointer = .allocate(capacity: count)
            pointer.initialize(repeating: 0, count: count)
        }
        deinit { pointer.deallocate() }
        var values: [Int] { Array(UnsafeBufferPointer(start: pointer, count: count)) }
    }

    @Test func everyPartRunsOnce() {
        for parts in [2, 3, 17, 1000] {
            for _ in 0..<50 {
                let counts = Counts(parts)
                Parallelism.run(parts) { part in counts.pointer[part] += 1 }
                #expect(counts.values == [Int](repeating: 1, count: parts))
            }
        }
    }

    @Test func nestedAndConcurrentCallsRunEveryPartOnce() {
        let outer = 8, inner = 64
        let all = (0..<4).map { _ in Counts(outer * inner) }
        DispatchQueue.concurrentPerform(iterations: all.count) { caller in
            for _ in 0..<20 {
                let counts = all[caller]
                Parallelism.run(outer) { o in
                    Parallelism.run(inner) { i in counts.pointer[o * inner + i] += 1 }
                }
            }
        }
        for counts in all { #expect(counts.values == [Int](repeating: 20, count: outer * inner)) }
    }
}
