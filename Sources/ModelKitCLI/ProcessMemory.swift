import ModelKitTraining

/// Allocator tuning for the one-shot commands.
enum ProcessMemory {
    /// Loading copies the weights through several buffers of a few hundred kB (file bytes, zstd
    /// output, protobuf fields, tensors, packed panels). glibc serves each from a fresh mmap, so
    /// every page of every copy faults; kept in the heap, freed buffers are reused instead
    /// (cold load + plan of the Fashion CNN: about 1 ms less, `modelkit bench`).
    static func retainFreedBlocks() {
        TrainingMemory.retainFreedMemory()
    }
}
