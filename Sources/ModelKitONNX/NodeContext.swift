import ModelKitCore

/// One ONNX node being converted: typed access to its attributes and inputs, and errors that
/// name it.
struct NodeContext {
    let proto: ONNXNodeProto
    /// The node's name, or a stand-in built from its op and first output.
    let name: String
    unowned let converter: GraphConverter

    var op: String { proto.opType }

    func invalid(_ reason: String) -> ONNXError { ONNXError.invalidNode(node: name, op: op, reason: reason) }
    func unsupported(_ reason: String) -> ONNXError { ONNXError.unsupportedNode(node: name, op: op, reason: reason) }

    // MARK: Attributes

    private static let typeNames: [Int32: String] = [1: "FLOAT", 2: "INT", 3: "STRING", 4: "TENSOR", 6: "FLOATS", 7: "INTS"]

    func attribute(_ key: String, type: Int32) throws -> ONNXAttribute? {
        guard let attribute = proto.attributes.first(where: { $0.name == key }) else { return nil }
        if attribute.isReference { throw invalid("attribute '\(key)' refers to a function attribute outside a function") }
        // IR version 1 files leave the type unset; later ones must set it.
        guard attribute.type == 0 || attribute.type == type else {
            throw invalid("attribute '\(key)' has type \(attribute.type), expected \(NodeContext.typeNames[type] ?? "\(type)")")
        }
        return attribute
    }

    func int(_ key: String, default value: Int64) throws -> Int64 {
        guard let attribute = try attribute(key, type: 2) else { return value }
        guard let i = attribute.i else { throw invalid("attribute '\(key)' has no integer value") }
        return i
    }

    func float(_ key: String) throws -> Float? {
        guard let attribute = try attribute(key, type: 1) else { return nil }
        guard let f = attribute.f else { throw invalid("attribute '\(key)' has no float value") }
        return f
    }

    func float(_ key: String, default value: Float) throws -> Float { try float(key) ?? value }

    func ints(_ key: String) throws -> [Int64]? {
        try attribute(key, type: 7)?.ints
    }

    func string(_ key: String, default value: String) throws -> String {
        guard let attribute = try attribute(key, type: 3) else { return value }
        guard let bytes = attribute.s else { throw invalid("attribute '\(key)' has no string value") }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// `count` integers from attribute `key`, each within `range`.
    func spatial(_ key: String, default value: [Int], count: Int, range: ClosedRange<Int64>) throws -> [Int] {
        guard let list = try ints(key) else { return value }
        guard list.count == count else { throw unsupported("'\(key)' has \(list.count) values, expected \(count) (2-D only)") }
        guard list.allSatisfy({ range.contains($0) }) else {
            throw invalid("'\(key)' \(list) must be between \(range.lowerBound) and \(range.upperBound)")
        }
        return list.map { Int($0) }
    }

    // MARK: Inputs and outputs

    func inputName(_ index: Int) -> String { index < proto.inputs.count ? proto.inputs[index] : "" }

    /// Input `index`, or nil when it is omitted.
    func input(_ index: Int) throws -> ImportedValue? {
        let key = inputName(index)
        guard !key.isEmpty else { return nil }
        guard let value = converter.values[key] else {
            throw invalid("input '\(key)' is not defined before this node (graph inputs, initializers and earlier nodes)")
        }
        return value
    }

    func requiredInput(_ index: Int) throws -> ImportedValue {
        guard let value = try input(index) else { throw invalid("input \(index) is missing") }
        return value
    }

    func constantInput(_ index: Int) throws -> Constant {
        guard let value = try optionalConstant(index) else { throw invalid("input \(index) is missing") }
        return value
    }

    func optionalConstant(_ index: Int) throws -> Constant? {
        guard let value = try input(index) else { return nil }
        guard case .constant(let constant) = value else {
            throw unsupported("input \(index) ('\(inputName(index))') must be a constant (an initializer or folded value)")
        }
        return constant
    }

    /// A run-time tensor; a constant input becomes an initializer in ONNX layout.
    func tensorInput(_ index: Int) throws -> TensorValue {
        switch try requiredInput(index) {
        case .tensor(let tensor): return tensor
        case .constant(let constant):
            return try converter.initializer(constant, onnxName: inputName(index), layout: .onnx, node: name, op: op)
        }
    }

    /// Integer values of a constant input (shape, axes, pads...).
    func integerInput(_ index: Int) throws -> [Int64]? {
        guard let constant = try optionalConstant(index) else { return nil }
        guard let values = constant.integers() else { throw invalid("input \(index) must hold integers") }
        return values
    }

    /// A scalar float constant input (Clip bounds, Pad value).
    func scalarInput(_ index: Int) throws -> Float? {
        guard let constant = try optionalConstant(index) else { return nil }
        guard constant.count == 1, let value = constant.floats()?.first else {
            throw invalid("input \(index) must be a scalar, got shape \(constant.shape)")
        }
        return value
    }

    var outputName: String { proto.outputs.first ?? "" }

    func define(_ value: ImportedValue, output index: Int = 0) throws {
        guard index < proto.outputs.count, !proto.outputs[index].isEmpty else { throw invalid("output \(index) has no name") }
        let key = proto.outputs[index]
        guard converter.values[key] == nil else { throw invalid("output '\(key)' is already defined") }
        converter.values[key] = value
    }

    /// Fails when an optional output (mask, indices, running statistics) is read by anything.
    func requireUnused(outputsFrom first: Int) throws {
        for index in first..<max(first, proto.outputs.count) {
            let key = proto.outputs[index]
            if !key.isEmpty && converter.useCounts[key, default: 0] > 0 {
                throw unsupported("output \(index) ('\(key)') is used; only the first output is supported")
            }
        }
    }

    /// Emits a modelkit node for this ONNX node's first output.
    @discardableResult
    func emit(_ operation: Operation, inputs: [String], layout: Layout, dynamicBatch: Bool) throws -> TensorValue {
        guard !outputName.isEmpty else { throw invalid("output 0 has no name") }
        let result = try converter.emit(operation, inputs: inputs,
                                        outputName: converter.outputName(for: outputName, layout: layout),
                                        nodeName: name, layout: layout, dynamicBatch: dynamicBatch, node: name, op: op)
        try define(.tensor(result))
        return result
    }

    func materialize(_ tensor: TensorValue, _ layout: Layout) throws -> TensorValue {
        try converter.materialize(tensor, layout, node: name, op: op)
    }

    func fold(_ body: () throws -> Constant) throws -> Constant {
        try converter.fold(node: name, op: op, body)
    }

    func defineFolded(_ body: () throws -> Constant) throws {
        try define(.constant(try fold(body)))
    }
}
