import CModelKitKernels

/// Process-wide allocator tuning for training loops.
public enum TrainingMemory {
    /// Each training step allocates and frees several multi-megabyte activation buffers. With
    /// glibc's defaults those come from fresh mmap or a re-grown heap, so every step pays page
    /// faults on them (measured: ~2–3 ms of a ~15 ms seed-cnn step). This keeps freed memory in
    /// the heap for reuse instead. Call once, at the start of a training process; it affects the
    /// whole process and is a no-op off glibc. Returns whether the settings were applied.
    @discardableResult
    public static func retainFreedMemory() -> Bool { mk_retain_freed_memory() == 1 }
}
