import Testing
import ModelKitCore
@testable import ModelKitRuntime

/// A Conv → MaxPool → Flatten → Dense → Softmax network with a dynamic batch.
func smallConvNet(seed: UInt64 = 1) -> Model {
    var random = SplitMix64(seed: seed)
    let graph = Graph(
        inputs: [ValueInfo(name: "image", shape: [-1, 6, 6, 2])],
        outputs: ["probabilities"],
        nodes: [
            Node(name: "conv", operation: .conv2D(Conv2DAttributes(padding: .same, activation: .relu)),
                 inputs: ["image", "conv.w", "conv.b"], outputs: ["conv.out"]),
            Node(name: "pool", operation: .maxPool2D(Pool2DAttributes(kernel: (2, 2))), inputs: ["conv.out"], outputs: ["pool.out"]),
            Node(name: "flatten", operation: .flatten(axis: 1), inputs: ["pool.out"], outputs: ["flat"]),
            Node(name: "dense", operation: .dense(activation: .none), inputs: ["flat", "dense.w", "dense.b"], outputs: ["logits"]),
            Node(name: "softmax", operation: .softmax(axis: -1), inputs: ["logits"], outputs: ["probabilities"]),
        ],
        initializers: [
            "conv.w": Tensor(shape: [4, 3, 3, 2], floats: random.floats(72)),
            "conv.b": Tensor(shape: [4], floats: random.floats(4)),
            "dense.w": Tensor(shape: [5, 36], floats: random.floats(180)),
            "dense.b": Tensor(shape: [5], floats: random.floats(5)),
        ])
    return Model(graph: graph)
}

/// The same network evaluated by calling the reference kernels directly, one buffer per value.
func directEvaluation(_ model: Model, image: [Float], batch: Int) -> [Float] {
    let g = model.graph
    func weights(_ name: String) -> [Float] { g.initializers[name]!.floats! }
    func call(_ op: Operation, _ inputs: [([Float], Shape)], _ outShape: Shape) -> [Float] {
        // Copies into owned buffers so every pointer is valid for the whole kernel call.
        let buffers = inputs.map { input -> UnsafeMutableBufferPointer<Float> in
            let buffer = UnsafeMutableBufferPointer<Float>.allocate(capacity: input.0.count)
            _ = buffer.initialize(from: input.0)
            return buffer
        }
        defer { buffers.forEach { $0.deallocate() } }
        let views: [TensorView?] = inputs.indices.map { TensorView(UnsafePointer(buffers[$0].baseAddress!), inputs[$0].1) }
        var out = [Float](repeating: .nan, count: outShape.elementCount!)
        out.withUnsafeMutableBufferPointer { ReferenceKernels.run(op, inputs: views, output: MutableTensorView($0.baseAddress!, outShape)) }
        return out
    }
    let convShape: Shape = [batch, 6, 6, 4]
    let conv = call(g.nodes[0].operation, [(image, [batch, 6, 6, 2]), (weights("conv.w"), [4, 3, 3, 2]), (weights("conv.b"), [4])], convShape)
    let pool = call(g.nodes[1].operation, [(conv, convShape)], [batch, 3, 3, 4])
    let logits = call(g.nodes[3].operation, [(pool, [batch, 36]), (weights("dense.w"), [5, 36]), (weights("dense.b"), [5])], [batch, 5])
    return call(g.nodes[4].operation, [(logits, [batch, 5])], [batch, 5])
}

struct SessionTests {
    @Test(arguments: [1, 3])
    func sessionMatchesDirectKernelCalls(batch: Int) throws {
        let model = smallConvNet()
        let session = try Session(model: model)
        var random = SplitMix64(seed: 99)
        let image = random.floats(batch * 72)
        let output = try session.run(Tensor(shape: [batch, 6, 6, 2], floats: image))
        #expect(output.shape == [batch, 5])
        let expected = directEvaluation(model, image: image, batch: batch)
        for (a, b) in zip(output.floats!, expected) {
            #expect(abs(a - b) <= 1e-6)
        }
        // Each row is a probability distribution.
        for row in 0..<batch {
            let sum = output.floats![(row * 5)..<(row * 5 + 5)].reduce(0, +)
            #expect(abs(sum - 1) < 1e-5)
        }
    }

    @Test func replansWhenTheBatchChangesAndBack() throws {
        let session = try Session(model: smallConvNet())
        var random = SplitMix64(seed: 5)
        let one = random.floats(72)
        let first = try session.run(Tensor(shape: [1, 6, 6, 2], floats: one))
        let arenaForOne = session.arenaBytes
        _ = try session.run(Tensor(shape: [4, 6, 6, 2], floats: random.floats(4 * 72)))
        #expect(session.arenaBytes > arenaForOne)
        let again = try session.run(Tensor(shape: [1, 6, 6, 2], floats: one))
        #expect(first == again)
    }

    /// The session's constants are the model's own arrays, not copies: a caller changing its copy
    /// of the model (copy on write) must not reach them, also when a new batch size re-packs them.
    @Test func constantsAreUnchangedWhenTheCallersModelChanges() throws {
        var model = smallConvNet()
        let session = try Session(model: model)
        let reference = try Session(model: smallConvNet())
        var random = SplitMix64(seed: 11)
        let batch = Tensor(shape: [3, 6, 6, 2], floats: random.floats(3 * 72))
        var weight = model.graph.initializers["dense.w"]!
        if case .float32(var values) = weight.storage {
            for index in values.indices { values[index] = 1000 }
            weight.storage = .float32(values)
        }
        model.graph.initializers["dense.w"] = weight
        model.graph.initializers["conv.b"] = Tensor(shape: [4], floats: [5, 5, 5, 5])
        #expect(try session.run(batch) == (try reference.run(batch)))
        #expect(session.constantBytes == (72 + 4 + 180 + 5) * MemoryLayout<Float>.stride)
    }

    @Test func flattenCostsNoKernelCall() throws {
        let session = try Session(model: smallConvNet())
        #expect(session.stepCount == 4)
    }

    @Test func arenaReusesMemoryAlongAChain() throws {
        // Eight ReLUs on a 1000-float tensor need two live buffers at a time, not nine.
        var nodes: [Node] = []
        var previous = "x"
        for index in 0..<8 {
            nodes.append(Node(name: "relu\(index)", operation: .relu, inputs: [previous], outputs: ["v\(index)"]))
            previous = "v\(index)"
        }
        let model = Model(graph: Graph(inputs: [ValueInfo(name: "x", shape: [1, 1000])], outputs: [previous], nodes: nodes))
        let session = try Session(model: model)
        #expect(session.arenaBytes <= 2 * MemoryPlanner.aligned(4000))
        let input = (0..<1000).map { Float($0 % 7) - 3 }
        let output = try session.run(Tensor(shape: [1, 1000], floats: input))
        #expect(output.floats! == input.map { max($0, 0) })
    }

    @Test func rejectsAWrongInputShape() throws {
        let session = try Session(model: smallConvNet())
        #expect(throws: RuntimeError.inputShapeMismatch(name: "image", expected: [-1, 6, 6, 2], actual: [1, 5, 6, 2])) {
            try session.run(Tensor(shape: [1, 5, 6, 2], floats: [Float](repeating: 0, count: 60)))
        }
    }

    @Test func rejectsDataThatDoesNotFillTheShape() throws {
        let session = try Session(model: smallConvNet())
        #expect(throws: RuntimeError.inputDataLength(name: "image", expected: 72, actual: 71)) {
            try session.run(Tensor(shape: [1, 6, 6, 2], floats: [Float](repeating: 0, count: 71)))
        }
    }

    @Test func rejectsUnknownAndMissingInputs() throws {
        let session = try Session(model: smallConvNet())
        let image = Tensor(shape: [1, 6, 6, 2], floats: [Float](repeating: 0, count: 72))
        #expect(throws: RuntimeError.unknownInput(name: "img", known: ["image"])) {
            try session.run(["image": image, "img": image])
        }
        #expect(throws: RuntimeError.missingInput(name: "image")) { try session.run([:]) }
    }

    @Test func rejectsAnInvalidGraphAtCreation() {
        var model = smallConvNet()
        model.graph.initializers["dense.w"] = Tensor(shape: [5, 35], floats: [Float](repeating: 0, count: 175))
        #expect(throws: RuntimeError.self) { try Session(model: model) }
    }

    @Test func graphOutputMayBeAnAliasOfAnInput() throws {
        let model = Model(graph: Graph(
            inputs: [ValueInfo(name: "x", shape: [2, 3])], outputs: ["y"],
            nodes: [Node(name: "r", operation: .reshape(shape: [3, 2]), inputs: ["x"], outputs: ["y"])]))
        let session = try Session(model: model)
        let output = try session.run(Tensor(shape: [2, 3], floats: [1, 2, 3, 4, 5, 6]))
        #expect(output == Tensor(shape: [3, 2], floats: [1, 2, 3, 4, 5, 6]))
    }
}
