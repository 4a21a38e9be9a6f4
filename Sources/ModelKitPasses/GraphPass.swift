import ModelKitCore

/// What one pass did to a graph.
public struct PassResult: Sendable {
    public var graph: Graph
    /// Number of rewrites applied; 0 means `graph` is the input unchanged.
    public var rewrites: Int
    public var changed: Bool { rewrites > 0 }

    public init(graph: Graph, rewrites: Int) {
        self.graph = graph
        self.rewrites = rewrites
    }
}

/// A graph optimization: a pure `Graph -> Graph` transform that keeps every graph output's
/// values (within float rounding) for every input the original accepts.
///
/// Passes never rewrite across a value with more than one reader, or across a graph output
/// whose name or values would change.
public protocol GraphPass: Sendable {
    /// The name used by `--passes` and in reports.
    var name: String { get }
    /// One line for `--help` and documentation.
    var summary: String { get }
    func run(_ graph: Graph) throws -> PassResult
}

/// A pass that rewrites one site at a time: `rewriteOne` returns the graph with a single
/// rewrite applied, or nil when no site is left. Re-scanning after each rewrite keeps every
/// decision based on the current graph (consumer counts, shapes) at a cost that is nothing
/// next to a model's size.
public protocol SingleRewritePass: GraphPass {
    func rewriteOne(_ graph: Graph) throws -> Graph?
}

extension SingleRewritePass {
    public func run(_ graph: Graph) throws -> PassResult {
        var current = graph
        var rewrites = 0
        while let next = try rewriteOne(current) {
            current = next
            rewrites += 1
        }
        return PassResult(graph: current, rewrites: rewrites)
    }
}

/// Why a pass pipeline could not be built or run.
public enum PassError: Error, Hashable, Sendable, CustomStringConvertible {
    case unknownPass(name: String, known: [String])
    /// A pass produced a graph that no longer validates: a bug in that pass.
    case invalidResult(pass: String, reason: String)
    /// The input graph itself does not validate.
    case invalidGraph(reason: String)

    public var description: String {
        switch self {
        case .unknownPass(let name, let known):
            return "unknown pass '\(name)' (known: \(known.joined(separator: ", ")))"
        case .invalidResult(let pass, let reason):
            return "pass '\(pass)' produced an invalid graph: \(reason)"
        case .invalidGraph(let reason):
            return "cannot optimize an invalid graph: \(reason)"
        }
    }
}
