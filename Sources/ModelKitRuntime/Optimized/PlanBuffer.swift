/// A 64-byte-aligned block a plan prepares once (packed weights) and frees with the plan. Steps
/// hold its raw pointer, so running them touches no reference counts.
final class PlanBuffer {
    let base: UnsafeMutableRawPointer

    init(bytes: Int) {
        base = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
    }

    deinit { base.deallocate() }
}
