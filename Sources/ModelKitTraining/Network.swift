import ModelKitCore

/// A DAG of layers with one input and one output (the last node): sequential chains plus
/// residual Add nodes. Nodes are kept in insertion order, which is a topological order because
/// a node may only read earlier nodes or the network input (index -1).
public final class Network {
    public struct Node {
        public let layer: any Layer
        /// Indices of earlier nodes; -1 is the network input.
        public let inputs: [Int]
    }

    /// Per-sample input shape, e.g. [28, 28, 1].
    public let inputShape: [Int]
    public private(set) var nodes: [Node] = []
    /// Per-sample output shape of every node.
    public private(set) var shapes: [[Int]] = []
    /// Drives Dropout masks; part of the state a checkpoint saves.
    public var rng: RandomGenerator

    public init(inputShape: [Int], rng: RandomGenerator) {
        self.inputShape = inputShape
        self.rng = rng
    }

    /// Appends a layer reading `inputs` (default: the previous node, or the network input).
    /// Returns the new node's index.
    @discardableResult
    public func add(_ layer: any Layer, inputs: [Int]? = nil) throws -> Int {
        let sources = inputs ?? [nodes.count - 1]
        for source in sources where source < -1 || source >= nodes.count {
            throw TrainingError.invalidInputNode(node: nodes.count, input: source)
        }
        guard sources.count == layer.inputCount else {
            throw TrainingError.wrongInputCount(layer: layer.name, expected: layer.inputCount, actual: sources.count)
        }
        let names = Set(nodes.map { $0.layer.name })
        guard !names.contains(layer.name) else {
            throw TrainingError.invalidConfiguration(layer: layer.name, reason: "layer name is already used")
        }
        let shape = try layer.outputShape(for: sources.map { $0 == -1 ? inputShape : shapes[$0] })
        nodes.append(Node(layer: layer, inputs: sources))
        shapes.append(shape)
        return nodes.count - 1
    }

    public var outputShape: [Int] { shapes.last ?? inputShape }

    /// Every parameter, trainable or not, in node order.
    public var parameters: [Parameter] { nodes.flatMap { $0.layer.parameters } }
    public var trainableParameters: [Parameter] { parameters.filter(\.isTrainable) }
    /// Element count of all parameters (trainable and state), as Keras reports "total params".
    public var parameterCount: Int { parameters.reduce(0) { $0 + $1.count } }

    public func parameter(named name: String) -> Parameter? { parameters.first { $0.name == name } }

    /// Runs the network; returns the last node's output (logits for the classifiers here).
    public func forward(_ input: Batch, training: Bool) throws -> Batch {
        guard !nodes.isEmpty else { throw TrainingError.invalidConfiguration(layer: "network", reason: "no layers") }
        guard input.sampleShape == inputShape else {
            throw TrainingError.shapeMismatch(layer: "network", reason: "expected [N]+\(inputShape), got \(input.shape)")
        }
        var outputs = [Batch?](repeating: nil, count: nodes.count)
        var remainingUses = consumerCounts()
        let fusion = reluFusion()
        for (index, node) in nodes.enumerated() {
            let inputs = node.inputs.map { $0 == -1 ? input : outputs[$0]! }
            if fusion.absorbed[index] {
                // The producer already applied this ReLU: pass its output through.
                outputs[index] = inputs[0]
            } else if fusion.producers[index], let conv = node.layer as? Conv2D {
                outputs[index] = try conv.forward(inputs[0], training: training, fusedReLU: true)
            } else if fusion.producers[index], let dense = node.layer as? Dense {
                outputs[index] = try dense.forward(inputs[0], training: training, fusedReLU: true)
            } else {
                outputs[index] = try node.layer.forward(inputs, training: training, rng: &rng)
            }
            // Drop intermediate values as soon as their last reader ran.
            for source in node.inputs where source >= 0 {
                remainingUses[source] -= 1
                if remainingUses[source] == 0 { outputs[source] = nil }
            }
        }
        return outputs[nodes.count - 1]!
    }

    /// Back-propagates the gradient of the loss with respect to the output, writing every
    /// parameter's gradient. Must follow `forward(training: true)`.
    public func backward(_ outputGradient: Batch) throws {
        guard !nodes.isEmpty else { return }
        var gradients = [Batch?](repeating: nil, count: nodes.count)
        gradients[nodes.count - 1] = outputGradient
        // The same plan as the forward pass (the graph is fixed once built).
        let fusion = reluFusion()
        for index in stride(from: nodes.count - 1, through: 0, by: -1) {
            let node = nodes[index]
            guard let gradient = gradients[index] else {
                // Nothing downstream uses this node; its parameters get zero gradients.
                node.layer.parameters.forEach { $0.zeroGradient() }
                continue
            }
            gradients[index] = nil
            if fusion.absorbed[index] {
                // The producer masks the gradient itself (it kept the ReLU output). It is this
                // ReLU's only input and the ReLU is the producer's only reader, so no summing.
                gradients[node.inputs[0]] = gradient
                continue
            }
            let needInputs = node.inputs.contains { $0 >= 0 }
            let inputGradients = try node.layer.backward(gradient, needInputGradients: needInputs)
            guard needInputs else { continue }
            for (position, source) in node.inputs.enumerated() where source >= 0 {
                let g = inputGradients[position]
                if var existing = gradients[source] {
                    existing.values.withUnsafeMutableBufferPointer { e in
                        g.values.withUnsafeBufferPointer { add in
                            for i in 0..<e.count { e[i] += add[i] }
                        }
                    }
                    gradients[source] = existing
                } else {
                    gradients[source] = g
                }
            }
        }
    }

    /// Which ReLU nodes fold into the Conv2D/Dense feeding them during training and inference:
    /// the ReLU must be the producer's only reader (nobody else may see the pre-activation values).
    /// The producer then clamps its GEMM output tiles while they are in cache and masks its own
    /// output gradient, which saves two full passes over the activation each way.
    struct ReLUFusion {
        /// Nodes whose layer runs with the ReLU fused in.
        var producers: [Bool]
        /// ReLU nodes that pass their input through.
        var absorbed: [Bool]
    }

    func reluFusion() -> ReLUFusion {
        var plan = ReLUFusion(producers: [Bool](repeating: false, count: nodes.count),
                              absorbed: [Bool](repeating: false, count: nodes.count))
        let consumers = consumerCounts()
        for (index, node) in nodes.enumerated() {
            guard node.layer is ReLU, node.inputs.count == 1 else { continue }
            let source = node.inputs[0]
            guard source >= 0, consumers[source] == 1, !plan.producers[source] else { continue }
            let producer = nodes[source].layer
            let fusable = (producer as? Conv2D)?.canFuseReLU ?? (producer is Dense)
            guard fusable else { continue }
            plan.producers[source] = true
            plan.absorbed[index] = true
        }
        return plan
    }

    private func consumerCounts() -> [Int] {
        var counts = [Int](repeating: 0, count: nodes.count)
        for node in nodes { for source in node.inputs where source >= 0 { counts[source] += 1 } }
        return counts
    }

    /// The inference graph in modelkit's IR: a ReLU/ReLU6/LeakyReLU that is the only reader of
    /// a Conv2D or Dense folds into it, a Softmax closes the graph, parameters are initializers.
    public func graph(inputName: String = "input", outputName: String = "probabilities") throws -> Graph {
        guard !nodes.isEmpty else { throw TrainingError.invalidConfiguration(layer: "network", reason: "no layers") }
        let consumers = consumerCounts()
        var fusedInto: [Int: Int] = [:]   // producer -> activation node folded into it
        var folded = Set<Int>()
        for (index, node) in nodes.enumerated() {
            guard node.layer is any FusableActivationLayer, node.inputs.count == 1, node.inputs[0] >= 0 else { continue }
            let source = node.inputs[0]
            let producer = nodes[source].layer
            guard consumers[source] == 1, producer is Conv2D || producer is Dense else { continue }
            fusedInto[source] = index
            folded.insert(index)
        }
        var valueNames = [String](repeating: "", count: nodes.count)
        var graphNodes: [ModelKitCore.Node] = []
        var initializers: [String: Tensor] = [:]
        for (index, node) in nodes.enumerated() {
            if folded.contains(index) {
                valueNames[index] = valueNames[node.inputs[0]]
                continue
            }
            var exported = try node.layer.export()
            var outputValue = node.layer.name
            if let activationNode = fusedInto[index],
               let activation = (nodes[activationNode].layer as? any FusableActivationLayer)?.fusedActivation {
                switch exported.operation {
                case .conv2D(var attributes):
                    attributes.activation = activation
                    exported.operation = .conv2D(attributes)
                case .dense:
                    exported.operation = .dense(activation: activation)
                default:
                    break
                }
                outputValue = nodes[activationNode].layer.name
            }
            for (name, tensor) in exported.initializers { initializers[name] = tensor }
            let inputs = node.inputs.map { $0 == -1 ? inputName : valueNames[$0] } + exported.initializers.map(\.name)
            graphNodes.append(ModelKitCore.Node(name: node.layer.name, operation: exported.operation, inputs: inputs,
                                                outputs: [outputValue]))
            valueNames[index] = outputValue
        }
        graphNodes.append(ModelKitCore.Node(name: "softmax", operation: .softmax(axis: -1),
                                            inputs: [valueNames[nodes.count - 1]], outputs: [outputName]))
        return Graph(inputs: [ValueInfo(name: inputName, shape: Shape([-1] + inputShape))], outputs: [outputName],
                     nodes: graphNodes, initializers: initializers)
    }
}

extension Network {
    /// The default CNN for 28×28×1 images and 10 classes (93,322 parameters):
    /// Conv(32,3×3,relu) → MaxPool2 → Conv(64,3×3,relu) → MaxPool2 → Conv(64,3×3,relu) → Flatten →
    /// Dense(64,relu) → Dense(10). Glorot-uniform weights, zero biases, all drawn from `seed`.
    public static func seedCNN(seed: UInt64, inputShape: [Int] = [28, 28, 1], classes: Int = 10) throws -> Network {
        var rng = RandomGenerator(seed: seed)
        guard inputShape.count == 3 else {
            throw TrainingError.invalidConfiguration(layer: "seed-cnn", reason: "input must be [H,W,C], got \(inputShape)")
        }
        let conv1 = try Conv2D(name: "conv1", inChannels: inputShape[2], outChannels: 32, kernel: (3, 3), rng: &rng)
        let conv2 = try Conv2D(name: "conv2", inChannels: 32, outChannels: 64, kernel: (3, 3), rng: &rng)
        let conv3 = try Conv2D(name: "conv3", inChannels: 64, outChannels: 64, kernel: (3, 3), rng: &rng)
        let network = Network(inputShape: inputShape, rng: rng)
        try network.add(conv1)
        try network.add(ReLU(name: "conv1_relu"))
        try network.add(MaxPool2D(name: "pool1"))
        try network.add(conv2)
        try network.add(ReLU(name: "conv2_relu"))
        try network.add(MaxPool2D(name: "pool2"))
        try network.add(conv3)
        try network.add(ReLU(name: "conv3_relu"))
        try network.add(Flatten(name: "flatten"))
        let flat = network.outputShape[0]
        try network.add(Dense(name: "dense1", inFeatures: flat, outFeatures: 64, rng: &network.rng))
        try network.add(ReLU(name: "dense1_relu"))
        try network.add(Dense(name: "dense2", inFeatures: 64, outFeatures: classes, rng: &network.rng))
        return network
    }

    /// Flatten → Dense(128, relu) → Dense(classes): 101,770 parameters for 28×28×1 and 10 classes.
    public static func mlp(seed: UInt64, inputShape: [Int] = [28, 28, 1], hidden: Int = 128, classes: Int = 10) throws
        -> Network {
        let network = Network(inputShape: inputShape, rng: RandomGenerator(seed: seed))
        try network.add(Flatten(name: "flatten"))
        try network.add(Dense(name: "dense1", inFeatures: inputShape.reduce(1, *), outFeatures: hidden, rng: &network.rng))
        try network.add(ReLU(name: "dense1_relu"))
        try network.add(Dense(name: "dense2", inFeatures: hidden, outFeatures: classes, rng: &network.rng))
        return network
    }
}
