import ModelKitCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// 1 / (1 + e^-x), computed without overflow for large |x|. Derivative y·(1 − y).
public final class Sigmoid: UnaryLayer {
    public let name: String
    private var savedOutput: Batch?

    public init(name: String) { self.name = name }

    public func outputShape(for inputShape: [Int]) throws -> [Int] { inputShape }

    public func forward(_ input: Batch, training: Bool, rng: inout RandomGenerator) throws -> Batch {
        let output = Elementwise.map(input) { x in
            if x >= 0 { return 1 / (1 + expf(-x)) }
            let e = expf(x)
            return e / (1 + e)
        }
        savedOutput = training ? output : nil
        return output
    }

    public func backward(_ outputGradient: Batch, needInputGradient: Bool) throws -> Batch? {
        guard needInputGradient else { return nil }
        return try Elementwise.chain(outputGradient, savedOutput, name) { $0 * (1 - $0) }
    }

    public func export() throws -> LayerExport { LayerExport(operation: .sigmoid) }
}
