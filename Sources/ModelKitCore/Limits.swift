/// Bounds a reader enforces on untrusted files. Each is far above any real edge model and far
/// below what would exhaust an edge box; all sizes are checked with overflow-safe arithmetic.
public struct Limits: Hashable, Sendable {
    /// Largest decompressed payload accepted, in bytes.
    public var maxPayloadBytes: Int
    /// Largest element count of any single tensor (constant or intermediate).
    public var maxTensorElements: Int
    /// Largest tensor rank.
    public var maxRank: Int
    /// Largest node count of a graph.
    public var maxNodes: Int

    public init(maxPayloadBytes: Int = 1 << 31, maxTensorElements: Int = 1 << 29, maxRank: Int = 8,
                maxNodes: Int = 100_000) {
        self.maxPayloadBytes = maxPayloadBytes
        self.maxTensorElements = maxTensorElements
        self.maxRank = maxRank
        self.maxNodes = maxNodes
    }

    public static let `default` = Limits()
}
