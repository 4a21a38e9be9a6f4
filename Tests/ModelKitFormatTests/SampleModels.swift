import ModelKitCore

/// Models used by the tests and by the fixture generator. All weights come from SplitMix64, so
/// every build produces the same models.
enum SampleModels {
    static func tensor(_ dims: [Int], _ rng: inout SplitMix64, scale: Float = 0.5) -> Tensor {
        Tensor(shape: Shape(dims), floats: rng.floats(Shape(dims).elementCount ?? 0, scale: scale))
    }

    /// Conv→ReLU→MaxPool→Flatten→Dense→Softmax on [-1,8,8,1] inputs: Fixtures/models/tiny-cnn.mkm.
    static func tinyCNN() -> Model {
        var rng = SplitMix64(seed: 2026)
        let graph = Graph(
            inputs: [ValueInfo(name: "image", shape: [-1, 8, 8, 1])],
            outputs: ["probabilities"],
            nodes: [
                Node(name: "conv", operation: .conv2D(Conv2DAttributes(padding: .same)),
                     inputs: ["image", "conv.weight", "conv.bias"], outputs: ["conv.out"]),
                Node(name: "relu", operation: .relu, inputs: ["conv.out"], outputs: ["relu.out"]),
                Node(name: "pool", operation: .maxPool2D(Pool2DAttributes(kernel: (2, 2))),
                     inputs: ["relu.out"], outputs: ["pool.out"]),
                Node(name: "flatten", operation: .flatten(axis: 1), inputs: ["pool.out"], outputs: ["flatten.out"]),
                Node(name: "dense", operation: .dense(activation: .none),
                     inputs: ["flatten.out", "dense.weight", "dense.bias"], outputs: ["logits"]),
                Node(name: "softmax", operation: .softmax(axis: -1), inputs: ["logits"], outputs: ["probabilities"]),
            ],
            initializers: [
                "conv.weight": tensor([4, 3, 3, 1], &rng),
                "conv.bias": tensor([4], &rng, scale: 0.1),
                "dense.weight": tensor([10, 64], &rng, scale: 0.25),
                "dense.bias": tensor([10], &rng, scale: 0.1),
            ])
        let metadata = ModelMetadata(
            producerName: "modelkit-tests", producerVersion: "0.1.0", createdAt: 1_767_225_600,
            description: "tiny CNN fixture with deterministic pseudo-random weights",
            labels: (0..<10).map { "digit \($0)" },
            normalization: InputNormalization(pixelScale: 1.0 / 255.0, mean: [0.1307], std: [0.3081]),
            properties: ["fixture": "tiny-cnn", "seed": "2026"])
        return Model(kind: .model, graph: graph, metadata: metadata)
    }

    /// One node of every op kind, every Padding and FusedActivation case, grouped and dilated
    /// convolution, countIncludePad, plus unused quantized int8/uint8/int32 tensors.
    static func everyOp() -> Model {
        var rng = SplitMix64(seed: 7)
        func node(_ name: String, _ op: Operation, _ inputs: [String]) -> Node {
            Node(name: name, operation: op, inputs: inputs, outputs: [name + ".out"])
        }
        let nodes: [Node] = [
            node("conv", .conv2D(Conv2DAttributes(strides: (1, 1), padding: .same, activation: .relu)),
                 ["x", "conv.w", "conv.b"]),
            node("dwconv", .conv2D(Conv2DAttributes(strides: (1, 1), dilations: (2, 2),
                                                    padding: .explicit(top: 2, left: 2, bottom: 2, right: 2),
                                                    groups: 8, activation: .relu6)),
                 ["conv.out", "dw.w"]),
            node("bn", .batchNormalization(epsilon: 1e-3), ["dwconv.out", "bn.scale", "bn.bias", "bn.mean", "bn.var"]),
            node("lrelu", .leakyRelu(alpha: 0.1), ["bn.out"]),
            node("maxpool", .maxPool2D(Pool2DAttributes(kernel: (2, 2), strides: (2, 2), padding: .valid)), ["lrelu.out"]),
            node("avgpool", .averagePool2D(Pool2DAttributes(kernel: (3, 3), strides: (1, 1), padding: .same,
                                                            countIncludePad: true)), ["maxpool.out"]),
            node("add", .add(activation: .leakyRelu(alpha: 0.2)), ["maxpool.out", "avgpool.out"]),
            node("mul", .mul, ["add.out", "channel.scale"]),
            node("clip", .clip(min: -1, max: 1), ["mul.out"]),
            node("sigmoid", .sigmoid, ["clip.out"]),
            node("tanh", .tanh, ["sigmoid.out"]),
            node("relu", .relu, ["tanh.out"]),
            node("hswish", .hardSwish, ["relu.out"]),
            node("pad", .pad(pads: [0, 1, 1, 0, 0, 1, 1, 0], value: 0.5), ["hswish.out"]),
            node("gap", .globalAveragePool, ["pad.out"]),
            node("transpose", .transpose(permutation: [0, 3, 1, 2]), ["gap.out"]),
            node("reshape", .reshape(shape: [0, -1]), ["transpose.out"]),
            node("concat", .concat(axis: 1), ["reshape.out", "reshape.out"]),
            node("flatten", .flatten(axis: 1), ["concat.out"]),
            node("dense", .dense(activation: .clip(min: -3, max: 3)), ["flatten.out", "dense.w", "dense.b"]),
            node("dropout", .dropout(rate: 0.25), ["dense.out"]),
            node("softmax", .softmax(axis: -1), ["dropout.out"]),
        ]
        var initializers: [String: Tensor] = [
            "conv.w": tensor([8, 3, 3, 4], &rng),
            "conv.b": tensor([8], &rng),
            "dw.w": tensor([8, 3, 3, 1], &rng),
            "bn.scale": tensor([8], &rng),
            "bn.bias": tensor([8], &rng),
            "bn.mean": tensor([8], &rng),
            "bn.var": Tensor(shape: [8], floats: rng.floats(8).map { abs($0) + 0.5 }),
            "channel.scale": tensor([8], &rng),
            "dense.w": tensor([10, 16], &rng),
            "dense.b": tensor([10], &rng),
        ]
        // Edge-case floats, stored bit-exact: signed zero, subnormals, extremes, infinities.
        initializers["special.floats"] = Tensor(shape: [8], floats: [
            -0.0, .leastNonzeroMagnitude, -.leastNormalMagnitude, .greatestFiniteMagnitude,
            -.greatestFiniteMagnitude, .infinity, -.infinity, 1.0 / 3.0,
        ])
        initializers["q.int8"] = Tensor(shape: [3, 2], storage: .int8([-128, -1, 0, 1, 64, 127]),
                                        quantization: QuantizationParameters(scales: [0.5, 0.25, 0.125],
                                                                             zeroPoints: [0, 0, 0], axis: 0))
        initializers["q.uint8"] = Tensor(shape: [4], storage: .uint8([0, 1, 128, 255]),
                                         quantization: QuantizationParameters(scale: 0.0039, zeroPoint: 128))
        initializers["q.int32"] = Tensor(shape: [2, 2], storage: .int32([Int32.min, -1, 0, Int32.max]),
                                         quantization: QuantizationParameters(scales: [1e-4, 2e-4], zeroPoints: [0, 0], axis: 1))
        initializers["scalar"] = Tensor(shape: [], floats: [42])
        initializers["empty"] = Tensor(shape: [0, 3], floats: [])
        let graph = Graph(
            inputs: [
                ValueInfo(name: "x", shape: [-1, 8, 8, 4]),
                ValueInfo(name: "x.quantized", dtype: .int8, shape: [-1, 4],
                          quantization: QuantizationParameters(scale: 0.02, zeroPoint: -3)),
            ],
            outputs: ["softmax.out", "gap.out"], nodes: nodes, initializers: initializers)
        let metadata = ModelMetadata(
            producerName: "modelkit-tests", producerVersion: "9.8.7", createdAt: -12_345,
            description: "every op kind — ünïcödé text too", labels: ["a", "", "c", "d", "e", "f", "g", "h", "i", "j"],
            normalization: InputNormalization(pixelScale: 1, mean: [0.485, 0.456, 0.406], std: [0.229, 0.224, 0.225]),
            properties: ["z": "last", "a": "first", "empty": ""])
        return Model(kind: .model, graph: graph, metadata: metadata)
    }

    /// tinyCNN as a checkpoint with Adam-style optimizer state and metrics history.
    static func checkpoint() -> Model {
        var model = tinyCNN()
        model.kind = .checkpoint
        var rng = SplitMix64(seed: 99)
        var slots: [String: Tensor] = [:]
        for (name, weight) in model.graph.initializers.sorted(by: { $0.key < $1.key }) {
            for slot in ["m", "v"] {
                slots["\(slot)/\(name)"] = tensor(weight.shape.dims, &rng, scale: 0.01)
            }
        }
        model.training = TrainingState(
            epoch: 3, step: 1_407, stepInEpoch: 0,
            optimizer: OptimizerState(name: "adam",
                                      hyperparameters: ["learning_rate": 1e-3, "beta1": 0.9, "beta2": 0.999, "epsilon": 1e-8],
                                      step: 1_407, slots: slots),
            rngState: [0, 1, UInt64.max, 0x0123_4567_89AB_CDEF],
            metricsHistory: [
                EpochMetrics(epoch: 1, trainLoss: 0.9, trainAccuracy: 0.71, validationLoss: 0.8,
                             validationAccuracy: 0.75, seconds: 12.5),
                EpochMetrics(epoch: 2, trainLoss: 0.5, trainAccuracy: 0.85, validationLoss: nil,
                             validationAccuracy: 0.0, seconds: 11.25),
                EpochMetrics(epoch: 3, trainLoss: 0.25, trainAccuracy: 0.93, seconds: 0),
            ],
            configuration: ["batch_size": "32", "model": "tiny-cnn", "data": "/data/mnist"])
        return model
    }

    /// Input [-1,4] → Dense(3) → Softmax: the small base of most corrupt fixtures.
    static func small(weight: Tensor? = nil, nodes: [Node]? = nil) -> Model {
        var rng = SplitMix64(seed: 1)
        let graph = Graph(
            inputs: [ValueInfo(name: "x", shape: [-1, 4])],
            outputs: ["y"],
            nodes: nodes ?? [
                Node(name: "dense", operation: .dense(activation: .relu), inputs: ["x", "dense.weight", "dense.bias"],
                     outputs: ["logits"]),
                Node(name: "softmax", operation: .softmax(axis: 1), inputs: ["logits"], outputs: ["y"]),
            ],
            initializers: ["dense.weight": weight ?? tensor([3, 4], &rng), "dense.bias": tensor([3], &rng)])
        return Model(graph: graph, metadata: ModelMetadata(producerName: "modelkit-tests", producerVersion: "0.1.0"))
    }
}
