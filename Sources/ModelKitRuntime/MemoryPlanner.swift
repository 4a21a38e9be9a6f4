import ModelKitCore

/// Places intermediate tensors in one arena, reusing memory between values whose lifetimes
/// do not overlap. Greedy by size (largest first, lowest fitting offset), as TFLite's
/// arena planner does: simple, and within a few percent of optimal on feed-forward nets.
struct MemoryPlanner {
    struct Request {
        /// Size in bytes.
        var size: Int
        /// First step that writes the value (-1 for graph inputs).
        var firstStep: Int
        /// Last step that reads it (Int.max for graph outputs).
        var lastStep: Int
    }

    /// Offsets in bytes are multiples of this, so SIMD kernels may use aligned loads.
    static let alignment = 64

    static func aligned(_ size: Int) -> Int {
        (size + alignment - 1) / alignment * alignment
    }

    /// Returns the offset of each request and the arena size.
    static func plan(_ requests: [Request]) -> (offsets: [Int], arenaSize: Int) {
        let order = requests.indices.sorted {
            requests[$0].size != requests[$1].size ? requests[$0].size > requests[$1].size : $0 < $1
        }
        var offsets = [Int](repeating: 0, count: requests.count)
        var placed: [Int] = []  // indices, kept sorted by offset
        var arenaSize = 0
        for index in order {
            let request = requests[index]
            let size = aligned(request.size)
            var candidate = 0
            for other in placed {
                let o = requests[other]
                let overlaps = o.firstStep <= request.lastStep && request.firstStep <= o.lastStep
                guard overlaps else { continue }
                let otherEnd = offsets[other] + aligned(o.size)
                if candidate + size <= offsets[other] { break }  // fits in the gap before `other`
                candidate = max(candidate, otherEnd)
            }
            offsets[index] = candidate
            let position = placed.firstIndex { offsets[$0] > candidate } ?? placed.count
            placed.insert(index, at: position)
            arenaSize = max(arenaSize, candidate + size)
        }
        return (offsets, arenaSize)
    }
}
