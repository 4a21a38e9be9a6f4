import ModelKitCore
import Testing
@testable import ModelKitTraining

@Suite struct LayerGradientTests {
    static let tolerance = 1e-2

    func expectGradients(_ layer: any Layer, _ inputs: [Batch], seed: UInt64 = 99,
                         sourceLocation: SourceLocation = #_sourceLocation) throws {
        let errors = try GradientCheck.check(layer, inputs: inputs, seed: seed)
        #expect(!errors.isEmpty, sourceLocation: sourceLocation)
        for (name, error) in errors.sorted(by: { $0.key < $1.key }) {
            #expect(error < Self.tolerance, "\(layer.name) \(name): relative error \(error)",
                    sourceLocation: sourceLocation)
        }
    }

    /// Gives biases and BN parameters non-trivial values, so their gradients are exercised away from init.
    func perturb(_ layer: any Layer, seed: UInt64) {
        var rng = RandomGenerator(seed: seed)
        for parameter in layer.parameters where parameter.isTrainable {
            for i in 0..<parameter.count { parameter.value[i] += rng.nextFloat(in: -0.3, 0.3) }
        }
    }

    struct ConvCase: Sendable, CustomTestStringConvertible {
        var input: [Int], out: Int, kernel: (Int, Int), strides: (Int, Int), dilations: (Int, Int)
        var padding: Padding, groups: Int
        var testDescription: String { "in \(input) out \(out) k \(kernel) s \(strides) d \(dilations) \(padding) g \(groups)" }
    }

    @Test(arguments: [
        ConvCase(input: [2, 5, 5, 3], out: 4, kernel: (3, 3), strides: (1, 1), dilations: (1, 1), padding: .valid, groups: 1),
        ConvCase(input: [1, 6, 5, 2], out: 3, kernel: (3, 2), strides: (2, 2), dilations: (1, 1), padding: .same, groups: 1),
        ConvCase(input: [1, 5, 5, 2], out: 2, kernel: (2, 2), strides: (1, 1), dilations: (2, 2), padding: .same, groups: 1),
        ConvCase(input: [2, 3, 3, 4], out: 5, kernel: (1, 1), strides: (1, 1), dilations: (1, 1), padding: .valid, groups: 1),
        ConvCase(input: [1, 4, 4, 4], out: 6, kernel: (3, 3), strides: (1, 1), dilations: (1, 1), padding: .same, groups: 2),
        ConvCase(input: [1, 5, 4, 3], out: 3, kernel: (3, 3), strides: (2, 1), dilations: (1, 1),
                 padding: .explicit(top: 1, left: 0, bottom: 0, right: 2), groups: 3),
    ])
    func conv2D(_ item: ConvCase) throws {
        var rng = RandomGenerator(seed: 5)
        let layer = try Conv2D(name: "conv", inChannels: item.input[3], outChannels: item.out, kernel: item.kernel,
                               strides: item.strides, dilations: item.dilations, padding: item.padding,
                               groups: item.groups, rng: &rng)
        perturb(layer, seed: 6)
        try expectGradients(layer, [GradientCheck.input(item.input, seed: 7)])
    }

    @Test func dense() throws {
        var rng = RandomGenerator(seed: 5)
        let layer = try Dense(name: "dense", inFeatures: 7, outFeatures: 5, rng: &rng)
        perturb(layer, seed: 6)
        try expectGradients(layer, [GradientCheck.input([3, 7], seed: 8)])
    }

    @Test func maxPool() throws {
        try expectGradients(MaxPool2D(name: "pool"), [GradientCheck.distinctInput([2, 4, 5, 3], seed: 9)])
        try expectGradients(MaxPool2D(name: "pool_same", kernel: (3, 3), strides: (2, 2), padding: .same),
                            [GradientCheck.distinctInput([1, 5, 5, 4], seed: 10)])
    }

    @Test func averagePool() throws {
        try expectGradients(AveragePool2D(name: "avg"), [GradientCheck.input([2, 4, 4, 3], seed: 11)])
        try expectGradients(AveragePool2D(name: "avg_same", kernel: (3, 3), strides: (2, 2), padding: .same),
                            [GradientCheck.input([1, 5, 4, 2], seed: 12)])
        try expectGradients(AveragePool2D(name: "avg_pad", kernel: (3, 3), strides: (1, 1), padding: .same,
                                          countIncludePad: true), [GradientCheck.input([1, 3, 3, 2], seed: 13)])
    }

    @Test func globalAveragePool() throws {
        try expectGradients(GlobalAveragePool(name: "gap"), [GradientCheck.input([2, 3, 4, 5], seed: 14)])
    }

    @Test func batchNormalization() throws {
        let layer = try BatchNormalization(name: "bn", channels: 3)
        perturb(layer, seed: 15)
        try expectGradients(layer, [GradientCheck.input([4, 2, 2, 3], seed: 16, scale: 2)])
    }

    @Test func dropout() throws {
        try expectGradients(Dropout(name: "drop", rate: 0.4), [GradientCheck.input([3, 8], seed: 17)])
    }

    @Test func activations() throws {
        let x = [2, 3, 4]
        try expectGradients(ReLU(name: "relu"), [GradientCheck.input(x, seed: 18, avoiding: [0])])
        try expectGradients(ReLU6(name: "relu6"), [GradientCheck.input(x, seed: 19, avoiding: [0, 6], scale: 8)])
        try expectGradients(LeakyReLU(name: "leaky", alpha: 0.2), [GradientCheck.input(x, seed: 20, avoiding: [0])])
        try expectGradients(Sigmoid(name: "sigmoid"), [GradientCheck.input(x, seed: 21, scale: 4)])
        try expectGradients(Tanh(name: "tanh"), [GradientCheck.input(x, seed: 22, scale: 2)])
        try expectGradients(Flatten(name: "flatten"), [GradientCheck.input([2, 2, 3, 2], seed: 23)])
    }

    @Test func add() throws {
        try expectGradients(Add(name: "add"), [GradientCheck.input([2, 3, 3], seed: 24), GradientCheck.input([2, 3, 3], seed: 25)])
    }

    @Test func gradientCheckDetectsAWrongBackward() throws {
        // The checker itself must be able to fail: a layer whose backward is off by a factor of 2.
        final class Broken: UnaryLayer {
            let name = "broken"
            func outputShape(for inputShape: [Int]) throws -> [Int] { inputShape }
            func forward(_ input: Batch, training: Bool, rng: inout RandomGenerator) throws -> Batch {
                Batch(shape: input.shape, values: input.values.map { $0 * $0 })
            }
            var saved: Batch?
            func backward(_ outputGradient: Batch, needInputGradient: Bool) throws -> Batch? { outputGradient }
            func export() throws -> LayerExport { LayerExport(operation: .relu) }
        }
        let errors = try GradientCheck.check(Broken(), inputs: [GradientCheck.input([2, 3], seed: 26)])
        #expect(errors["input0"]! > 0.1)
    }

    @Test func softmaxCrossEntropyGradient() throws {
        let logits = GradientCheck.input([3, 4], seed: 27, scale: 3)
        let labels: [Int32] = [2, 0, 3]
        let analytic = try SoftmaxCrossEntropy.compute(logits: logits, labels: labels).gradient
        var numeric = [Double](repeating: 0, count: logits.count)
        for i in 0..<logits.count {
            var probe = logits
            probe.values[i] += GradientCheck.eps
            let plus = Double(try SoftmaxCrossEntropy.compute(logits: probe, labels: labels).loss)
            probe.values[i] -= 2 * GradientCheck.eps
            let minus = Double(try SoftmaxCrossEntropy.compute(logits: probe, labels: labels).loss)
            numeric[i] = (plus - minus) / (2 * Double(GradientCheck.eps))
        }
        #expect(GradientCheck.relativeError(analytic.values, numeric) < 1e-2)
    }

    @Test func residualNetworkGradients() throws {
        // conv -> relu -> conv(same) -> add(skip from relu) -> gap -> dense, through Network.backward.
        var rng = RandomGenerator(seed: 30)
        let network = Network(inputShape: [4, 4, 2], rng: rng)
        try network.add(Conv2D(name: "c1", inChannels: 2, outChannels: 3, kernel: (3, 3), padding: .same, rng: &rng))
        let relu = try network.add(Tanh(name: "t1"))
        try network.add(Conv2D(name: "c2", inChannels: 3, outChannels: 3, kernel: (3, 3), padding: .same, rng: &rng))
        try network.add(Add(name: "skip"), inputs: [relu, relu + 1])
        try network.add(GlobalAveragePool(name: "gap"))
        try network.add(Flatten(name: "flat"))
        try network.add(Dense(name: "fc", inFeatures: 3, outFeatures: 2, rng: &rng))
        let x = GradientCheck.input([2, 4, 4, 2], seed: 31)
        let labels: [Int32] = [1, 0]
        func loss() throws -> Double {
            Double(try SoftmaxCrossEntropy.compute(logits: network.forward(x, training: true), labels: labels).loss)
        }
        let result = try SoftmaxCrossEntropy.compute(logits: network.forward(x, training: true), labels: labels)
        try network.backward(result.gradient)
        for parameter in network.trainableParameters {
            let analytic = parameter.gradient
            let numeric = try GradientCheck.numericGradient(of: parameter, step: 1e-2, loss: loss)
            let error = GradientCheck.relativeError(analytic, numeric)
            #expect(error < 2e-2, "\(parameter.name): relative error \(error)")
        }
    }
}
