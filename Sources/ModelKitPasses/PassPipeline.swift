import ModelKitCore

/// An ordered list of passes run to a fixed point (until a full round changes nothing, or
/// `maxRounds` rounds have run). The graph is validated after every pass that changed it.
public struct PassPipeline: Sendable {
    public var passes: [any GraphPass]
    public var maxRounds: Int

    /// Every pass, in the default order: cleanup first, so folds see the real producer;
    /// folds into weights before activation fusion, which blocks them; dead code last.
    public static let allPasses: [any GraphPass] = [
        RemoveIdentities(),
        ConstantFolding(),
        FoldBatchNormalization(),
        FoldConstantAffine(),
        FoldPad(),
        FuseActivation(),
        RemoveDeadCode(),
    ]

    public static var passNames: [String] { allPasses.map(\.name) }

    public static let standard = PassPipeline(passes: allPasses)

    public init(passes: [any GraphPass], maxRounds: Int = 8) {
        self.passes = passes
        self.maxRounds = max(1, maxRounds)
    }

    /// The named passes, in the order given.
    public init(names: [String], maxRounds: Int = 8) throws {
        var selected: [any GraphPass] = []
        for name in names {
            guard let pass = PassPipeline.allPasses.first(where: { $0.name == name }) else {
                throw PassError.unknownPass(name: name, known: PassPipeline.passNames)
            }
            selected.append(pass)
        }
        self.init(passes: selected, maxRounds: maxRounds)
    }

    /// The optimized graph and the number of rewrites each pass made (by pass name).
    public func run(_ graph: Graph) throws -> (graph: Graph, rewrites: [String: Int]) {
        do {
            _ = try graph.analyze()
        } catch let error as GraphError {
            throw PassError.invalidGraph(reason: error.description)
        }
        var current = graph
        var rewrites: [String: Int] = [:]
        for _ in 0..<maxRounds {
            var changed = false
            for pass in passes {
                let result = try pass.run(current)
                guard result.changed else { continue }
                do {
                    _ = try result.graph.analyze()
                } catch let error as GraphError {
                    throw PassError.invalidResult(pass: pass.name, reason: error.description)
                }
                current = result.graph
                rewrites[pass.name, default: 0] += result.rewrites
                changed = true
            }
            if !changed { break }
        }
        return (current, rewrites)
    }
}
