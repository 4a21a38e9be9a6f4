import ModelKitCore

/// One input of `Session.run(inputs:outputs:)`: caller-owned floats, row-major in `shape`.
public struct InputBuffer {
    public var data: UnsafePointer<Float>
    /// Floats readable at `data`; must equal the shape's element count.
    public var count: Int
    public var shape: Shape

    public init(data: UnsafePointer<Float>, count: Int, shape: Shape) {
        self.data = data
        self.count = count
        self.shape = shape
    }
}

/// One output of `Session.run(inputs:outputs:)`: caller-owned room for `capacity` floats.
public struct OutputBuffer {
    public var data: UnsafeMutablePointer<Float>
    public var capacity: Int

    public init(data: UnsafeMutablePointer<Float>, capacity: Int) {
        self.data = data
        self.capacity = capacity
    }
}

extension Session {
    /// The shape of graph input `index` in the current plan (the last run's, or batch one).
    public func plannedInputShape(_ index: Int) -> Shape {
        plan.inputShapes[model.graph.inputs[index].name]!
    }

    /// The shape of graph output `index` in the current plan.
    public func plannedOutputShape(_ index: Int) -> Shape {
        plan.values[model.graph.outputs[index]]!.shape
    }

    /// Plans for these input shapes (graph input order) ahead of the first run at them.
    public func prepare(inputShapes: [Shape]) throws {
        guard inputShapes.count == model.graph.inputs.count else {
            throw RuntimeError.bufferCount(what: "input", expected: model.graph.inputs.count, actual: inputShapes.count)
        }
        var shapes: [String: Shape] = [:]
        for (index, input) in model.graph.inputs.enumerated() { shapes[input.name] = inputShapes[index] }
        try preparePlan(for: shapes)
    }

    /// Runs on caller-owned buffers: `inputs[i]` feeds graph input i, graph output i is written
    /// to `outputs[i]`. Re-plans only when the input shapes change; otherwise the run copies the
    /// inputs into the arena, executes the planned steps and copies the outputs out, allocating
    /// nothing. Throws `RuntimeError` (on a too-small output buffer, `plannedOutputShape` tells
    /// the size needed).
    public func run(inputs: [InputBuffer], outputs: [OutputBuffer]) throws {
        if let name = plan.nonFloatIO {
            throw RuntimeError.unsupportedDType(name: name, dtype: plan.values[name]!.dtype)
        }
        guard inputs.count == plan.inputBindings.count else {
            throw RuntimeError.bufferCount(what: "input", expected: plan.inputBindings.count, actual: inputs.count)
        }
        guard outputs.count == plan.outputBindings.count else {
            throw RuntimeError.bufferCount(what: "output", expected: plan.outputBindings.count, actual: outputs.count)
        }
        // The loops run over buffer pointers: array iteration in unoptimised builds allocates.
        let check = Session.checkInputs(inputs, plan.inputBindings)
        if let index = check.badInput {
            throw RuntimeError.inputDataLength(name: model.graph.inputs[index].name,
                                               expected: inputs[index].shape.elementCount ?? -1, actual: inputs[index].count)
        }
        if !check.samePlan {
            var shapes: [String: Shape] = [:]
            for (index, input) in model.graph.inputs.enumerated() { shapes[input.name] = inputs[index].shape }
            try preparePlan(for: shapes)
        }
        let plan = self.plan
        if let index = Session.firstSmallOutput(outputs, plan.outputBindings) {
            throw RuntimeError.outputBufferTooSmall(name: model.graph.outputs[index], needed: plan.outputBindings[index].count,
                                                    capacity: outputs[index].capacity)
        }
        Session.copyIn(inputs, plan.inputBindings)
        execute()
        Session.copyOut(outputs, plan.outputBindings)
    }

    private static func checkInputs(_ inputs: [InputBuffer], _ bindings: [InputBinding]) -> (badInput: Int?, samePlan: Bool) {
        inputs.withUnsafeBufferPointer { inputs in bindings.withUnsafeBufferPointer { bindings in
            var samePlan = true
            for index in 0..<inputs.count {
                if bindings[index].shape == inputs[index].shape {
                    if bindings[index].count != inputs[index].count { return (index, false) }
                } else {
                    samePlan = false
                    guard let needed = inputs[index].shape.elementCount, needed == inputs[index].count else { return (index, false) }
                }
            }
            return (nil, samePlan)
        } }
    }

    private static func firstSmallOutput(_ outputs: [OutputBuffer], _ bindings: [OutputBinding]) -> Int? {
        outputs.withUnsafeBufferPointer { outputs in bindings.withUnsafeBufferPointer { bindings in
            for index in 0..<bindings.count where bindings[index].count > outputs[index].capacity { return index }
            return nil
        } }
    }

    private static func copyIn(_ inputs: [InputBuffer], _ bindings: [InputBinding]) {
        inputs.withUnsafeBufferPointer { inputs in bindings.withUnsafeBufferPointer { bindings in
            for index in 0..<bindings.count {
                bindings[index].address.update(from: inputs[index].data, count: inputs[index].count)
            }
        } }
    }

    private static func copyOut(_ outputs: [OutputBuffer], _ bindings: [OutputBinding]) {
        outputs.withUnsafeBufferPointer { outputs in bindings.withUnsafeBufferPointer { bindings in
            for index in 0..<bindings.count {
                outputs[index].data.update(from: bindings[index].address, count: bindings[index].count)
            }
        } }
    }
}

/// Where a graph input lives in a plan's arena, and the shape it was planned for.
struct InputBinding {
    var address: UnsafeMutablePointer<Float>
    var shape: Shape
    /// The shape's element count.
    var count: Int
}

/// Where a graph output lives in a plan, and its element count.
struct OutputBinding {
    var address: UnsafePointer<Float>
    var count: Int
}
