#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import CProtobufC

/// The memory protobuf-c unpacks one payload's message tree into: one block, handed out in order
/// and freed whole, instead of a malloc and a free per message, array, string and `bytes` field
/// (the weights). A file load first reads the zstd frame into the block (`frameSpace`); once
/// the frame is decompressed the tree overwrites it, so the frame's pages serve twice.
///
/// The block's pages are faulted in a chunk at a time as it fills (`FreshPages`). A tree larger
/// than the block takes the rest from malloc; `free` tells the two apart by address, so
/// `free_unpacked` with this allocator releases exactly what malloc gave.
final class UnpackArena {
    struct State {
        var base: UnsafeMutableRawPointer
        var capacity: Int
        var used: Int
        /// Bytes from `base` whose pages are populated.
        var populated: Int
        /// Allocations that did not fit and came from malloc.
        var spills: Int
    }

    /// Passed to protobuf-c; `allocator_data` points at the state.
    let allocator: UnsafeMutablePointer<ProtobufCAllocator>
    private let state: UnsafeMutablePointer<State>

    /// Bytes populated ahead of the bump pointer at a time.
    static let populateChunk = 16 << 10

    /// A block for the tree of a payload of `payloadSize` bytes (the tree holds copies of its
    /// strings and `bytes` fields, plus the message structs), and at least `frameSize` bytes.
    init(payloadSize: Int, frameSize: Int = 0) throws {
        let (estimate, overflow) = payloadSize.addingReportingOverflow(payloadSize / 8 + (16 << 10))
        let capacity = max(overflow ? Int.max : estimate, frameSize)
        guard let base = malloc(capacity) else { throw FormatError.outOfMemory(bytes: capacity) }
        state = .allocate(capacity: 1)
        state.initialize(to: State(base: base, capacity: capacity, used: 0, populated: 0, spills: 0))
        allocator = .allocate(capacity: 1)
        allocator.initialize(to: ProtobufCAllocator(alloc: UnpackArena.alloc, free: UnpackArena.release,
                                                     allocator_data: UnsafeMutableRawPointer(state)))
    }

    deinit {
        free(state.pointee.base)
        state.deallocate()
        allocator.deallocate()
    }

    var capacity: Int { state.pointee.capacity }
    /// Bytes of the block handed out so far.
    var used: Int { state.pointee.used }
    var spills: Int { state.pointee.spills }

    /// The block's first `count` bytes (at most `capacity`), populated, as room for a zstd frame.
    /// Only before the first allocation: the tree is unpacked over them.
    func frameSpace(count: Int) -> UnsafeMutableRawBufferPointer {
        precondition(state.pointee.used == 0 && count <= state.pointee.capacity, "the frame space is the empty block's start")
        if count > state.pointee.populated {
            FreshPages.populate(state.pointee.base + state.pointee.populated, count: count - state.pointee.populated)
            state.pointee.populated = count
        }
        return UnsafeMutableRawBufferPointer(start: state.pointee.base, count: count)
    }

    /// Whether `pointer` lies in the block.
    func contains(_ pointer: UnsafeRawPointer) -> Bool {
        let base = UnsafeRawPointer(state.pointee.base)
        return pointer >= base && pointer < base + state.pointee.capacity
    }

    private static let alloc: @convention(c) (UnsafeMutableRawPointer?, Int) -> UnsafeMutableRawPointer? = { data, size in
        let state = data!.assumingMemoryBound(to: State.self)
        let start = (state.pointee.used + 15) & ~15
        guard start <= state.pointee.capacity, size <= state.pointee.capacity - start else {
            state.pointee.spills += 1
            return malloc(max(size, 1))
        }
        let end = start + size
        state.pointee.used = end
        if end > state.pointee.populated {
            let target = min(state.pointee.capacity, max(end, state.pointee.populated + UnpackArena.populateChunk))
            FreshPages.populate(state.pointee.base + state.pointee.populated, count: target - state.pointee.populated)
            state.pointee.populated = target
        }
        return state.pointee.base + start
    }

    private static let release: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void = { data, pointer in
        guard let pointer else { return }
        let state = data!.assumingMemoryBound(to: State.self)
        let base = state.pointee.base
        if pointer >= base && pointer < base + state.pointee.capacity { return }  // freed with the block
        free(pointer)
    }
}
