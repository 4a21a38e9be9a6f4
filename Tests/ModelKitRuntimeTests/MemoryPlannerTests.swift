import Testing
@_exported import ModelKitTestSupport
@testable import ModelKitRuntime

struct MemoryPlannerTests {
    @Test func valuesWithDisjointLifetimesShareMemory() {
        let requests: [MemoryPlanner.Request] = [
            .init(size: 1000, firstStep: 0, lastStep: 1),
            .init(size: 1000, firstStep: 1, lastStep: 2),
            .init(size: 1000, firstStep: 2, lastStep: 3),
        ]
        let (offsets, arenaSize) = MemoryPlanner.plan(requests)
        #expect(offsets[0] == offsets[2])
        #expect(offsets[0] != offsets[1])
        #expect(arenaSize == 2 * MemoryPlanner.aligned(1000))
    }

    @Test func offsetsAreAligned() {
        let requests: [MemoryPlanner.Request] = (0..<6).map { .init(size: 4 * (7 + $0), firstStep: 0, lastStep: 5) }
        let (offsets, _) = MemoryPlanner.plan(requests)
        #expect(offsets.allSatisfy { $0 % MemoryPlanner.alignment == 0 })
    }

    /// Any two values alive at the same step must not overlap in memory, for random workloads.
    @Test(arguments: 0..<20)
    func liveValuesNeverOverlap(seed: Int) {
        var generator = SplitMix64(seed: UInt64(seed))
        let count = Int(generator.next() % 30) + 1
        let requests: [MemoryPlanner.Request] = (0..<count).map { _ in
            let first = Int(generator.next() % 20) - 1
            let length = Int(generator.next() % 6)
            return .init(size: Int(generator.next() % 5000) + 1, firstStep: first, lastStep: first + length)
        }
        let (offsets, arenaSize) = MemoryPlanner.plan(requests)
        for i in 0..<count {
            #expect(offsets[i] + requests[i].size <= arenaSize)
            for j in (i + 1)..<count {
                let a = requests[i], b = requests[j]
                guard a.firstStep <= b.lastStep && b.firstStep <= a.lastStep else { continue }
                let disjoint = offsets[i] + a.size <= offsets[j] || offsets[j] + b.size <= offsets[i]
                #expect(disjoint, "requests \(i) and \(j) overlap")
            }
        }
        // Never worse than giving every value its own block.
        #expect(arenaSize <= requests.reduce(0) { $0 + MemoryPlanner.aligned($1.size) })
    }
}

