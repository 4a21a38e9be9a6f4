import ModelKitCore

/// Checks a whole model before it is written and after it is read, so a file the writer accepts
/// is one the reader accepts. Graph structure and shapes are checked by `Graph.analyze`.
package enum ModelValidator {
    package static func validate(_ model: Model, limits: Limits) throws {
        switch (model.kind, model.training) {
        case (.model, .some):
            throw FormatError.invalidKind(reason: "a model (.mkm) must not carry training state; use kind checkpoint")
        case (.checkpoint, .none):
            throw FormatError.invalidKind(reason: "a checkpoint (.mkc) must carry training state")
        default:
            break
        }
        let graph = model.graph
        guard graph.nodes.count <= limits.maxNodes else {
            throw FormatError.invalidGraph(.tooManyNodes(count: graph.nodes.count, limit: limits.maxNodes))
        }
        for input in graph.inputs {
            try validateValue(input, limits: limits)
        }
        for (name, tensor) in graph.initializers.sorted(by: { $0.key < $1.key }) {
            try validateTensor(tensor, label: "initializer '\(name)'", limits: limits)
        }
        for node in graph.nodes {
            try validateNode(node)
        }
        let nodeOutputs = Set(graph.nodes.flatMap(\.outputs))
        for (name, parameters) in graph.valueQuantization.sorted(by: { $0.key < $1.key }) {
            let label = "value '\(name)'"
            guard nodeOutputs.contains(name) else {
                throw FormatError.invalidQuantization(tensor: label, reason: "no node produces this value")
            }
            try validateQuantization(parameters, dtype: .int8, dims: [], label: label)
        }
        try validateMetadata(model.metadata)
        if let training = model.training {
            try validateTraining(training, graph: graph, limits: limits)
        }
        do {
            _ = try graph.analyze(limits: limits)
        } catch let error as GraphError {
            throw FormatError.invalidGraph(error)
        }
    }

    static func checkedCount(_ dims: [Int], label: String, limits: Limits) throws -> Int {
        guard dims.count <= limits.maxRank else {
            throw FormatError.invalidTensor(tensor: label, reason: "rank \(dims.count) exceeds the limit of \(limits.maxRank)")
        }
        for (axis, dim) in dims.enumerated() where dim < 0 {
            throw FormatError.invalidTensor(tensor: label, reason: "dimension \(axis) is \(dim)")
        }
        guard let count = Shape.checkedProduct(dims), count <= limits.maxTensorElements else {
            throw FormatError.tensorTooLarge(tensor: label, dims: dims.map { Int64($0) }, limit: limits.maxTensorElements)
        }
        return count
    }

    static func validateTensor(_ tensor: Tensor, label: String, limits: Limits) throws {
        let count = try checkedCount(tensor.shape.dims, label: label, limits: limits)
        guard tensor.storage.count == count else {
            throw FormatError.dataLengthMismatch(tensor: label, expected: count * tensor.dtype.byteSize,
                                                 actual: tensor.byteCount)
        }
        if let q = tensor.quantization {
            try validateQuantization(q, dtype: tensor.dtype, dims: tensor.shape.dims, label: label)
        }
    }

    static func validateValue(_ value: ValueInfo, limits: Limits) throws {
        let label = "graph input '\(value.name)'"
        guard !value.name.isEmpty else { throw FormatError.invalidTensor(tensor: label, reason: "empty name") }
        guard value.shape.rank <= limits.maxRank else {
            throw FormatError.invalidTensor(tensor: label, reason: "rank \(value.shape.rank) exceeds the limit of \(limits.maxRank)")
        }
        for (axis, dim) in value.shape.dims.enumerated() where dim < 0 && !(dim == -1 && axis == 0) {
            throw FormatError.invalidTensor(tensor: label, reason: "dimension \(axis) is \(dim); only the first may be dynamic (-1)")
        }
        if let q = value.quantization {
            try validateQuantization(q, dtype: value.dtype, dims: value.shape.dims, label: label)
        }
    }

    static func validateQuantization(_ q: QuantizationParameters, dtype: DType, dims: [Int], label: String) throws {
        func fail(_ reason: String) -> FormatError { .invalidQuantization(tensor: label, reason: reason) }
        guard q.scales.count == q.zeroPoints.count else {
            throw fail("\(q.scales.count) scales but \(q.zeroPoints.count) zero points")
        }
        if let axis = q.axis {
            guard axis >= 0, axis < dims.count else { throw fail("axis \(axis) is out of range for rank \(dims.count)") }
            if dims[axis] >= 0 {
                guard q.scales.count == dims[axis] else {
                    throw fail("\(q.scales.count) scales for axis \(axis) of size \(dims[axis])")
                }
            }
        } else {
            guard q.scales.count == 1 else { throw fail("per-tensor quantization needs 1 scale, found \(q.scales.count)") }
        }
        for (index, scale) in q.scales.enumerated() where !(scale.isFinite && scale > 0) {
            throw fail("scale \(index) is \(scale); scales must be finite and positive")
        }
        let range: ClosedRange<Int32>
        switch dtype {
        case .int8: range = -128...127
        case .uint8: range = 0...255
        case .float32, .int32: range = Int32.min...Int32.max
        }
        for (index, zeroPoint) in q.zeroPoints.enumerated() where !range.contains(zeroPoint) {
            throw fail("zero point \(index) is \(zeroPoint), outside the \(dtype) range")
        }
    }

    /// Attribute checks `ShapeInference` does not make (it checks strides, dilations, groups,
    /// kernels, padding amounts, axes, permutations and fused clips).
    static func validateNode(_ node: Node) throws {
        func fail(_ reason: String) -> FormatError { .invalidNode(node: node.name, reason: reason) }
        guard !node.name.isEmpty else { throw FormatError.invalidNode(node: "", reason: "node has an empty name") }
        switch node.operation {
        case .dropout(let rate):
            guard rate >= 0, rate < 1 else { throw fail("dropout rate \(rate) must be in [0, 1)") }
        case .conv2D(let a):
            if case .leakyRelu(let alpha) = a.activation, !alpha.isFinite { throw fail("fused leaky ReLU alpha must be finite") }
        case .dense(let activation), .add(let activation):
            if case .leakyRelu(let alpha) = activation, !alpha.isFinite { throw fail("fused leaky ReLU alpha must be finite") }
        default:
            break
        }
    }

    static func validateMetadata(_ metadata: ModelMetadata) throws {
        guard let n = metadata.normalization else { return }
        guard n.pixelScale.isFinite, n.pixelScale != 0 else {
            throw FormatError.invalidMetadata(reason: "input normalisation pixel scale \(n.pixelScale) must be finite and non-zero")
        }
        for (index, mean) in n.mean.enumerated() where !mean.isFinite {
            throw FormatError.invalidMetadata(reason: "input normalisation mean[\(index)] is \(mean)")
        }
        for (index, std) in n.std.enumerated() where !(std.isFinite && std != 0) {
            throw FormatError.invalidMetadata(reason: "input normalisation std[\(index)] is \(std); it must be finite and non-zero")
        }
    }

    static func validateTraining(_ training: TrainingState, graph: Graph, limits: Limits) throws {
        func fail(_ reason: String) -> FormatError { .invalidTrainingState(reason: reason) }
        guard training.epoch >= 0 else { throw fail("epoch is \(training.epoch)") }
        guard training.step >= 0 else { throw fail("step is \(training.step)") }
        guard training.stepInEpoch >= 0, training.stepInEpoch <= training.step else {
            throw fail("step in epoch \(training.stepInEpoch) must be between 0 and the total step \(training.step)")
        }
        guard training.optimizer.step >= 0 else { throw fail("optimizer step is \(training.optimizer.step)") }
        for (name, slot) in training.optimizer.slots.sorted(by: { $0.key < $1.key }) {
            let label = "optimizer slot '\(name)'"
            try validateTensor(slot, label: label, limits: limits)
            guard let slash = name.firstIndex(of: "/"), slash != name.startIndex else {
                throw FormatError.invalidTensor(tensor: label, reason: "name must be '<slot>/<parameter>'")
            }
            let parameter = String(name[name.index(after: slash)...])
            guard let weight = graph.initializers[parameter] else {
                throw FormatError.invalidTensor(tensor: label, reason: "parameter '\(parameter)' is not an initializer")
            }
            guard weight.shape == slot.shape else {
                throw FormatError.invalidTensor(tensor: label, reason: "shape \(slot.shape) differs from parameter '\(parameter)' \(weight.shape)")
            }
        }
        for (index, metrics) in training.metricsHistory.enumerated() where metrics.epoch < 0 {
            throw fail("metrics entry \(index) has epoch \(metrics.epoch)")
        }
    }
}
