import ModelKitCore
#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// tanh(x). Derivative 1 − y².
public final class Tanh: UnaryLayer {
    public let name: String
    private var savedOutput: Batch?

    public init(name: String) { self.name = name }

    public func outputShape(for inputShape: [Int]) throws -> [Int] { inputShape }

    public func forward(_ input: Batch, training: Bool, rng: inout RandomGenerator) throws -> Batch {
        let output = Elementwise.map(input) { tanhf($0) }
        savedOutput = training ? output : nil
        return output
    }

    public func backward(_ outputGradient: Batch, needInputGradient: Bool) throws -> Batch? {
        guard needInputGradient else { return nil }
        return try Elementwise.chain(outputGradient, savedOutput, name) { 1 - $0 * $0 }
    }

    public func export() throws -> LayerExport { LayerExport(operation: .tanh) }
}
