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

    /// Runs on caller-owned buffers: `inputs[i]` feeds graph input i, graph output i is written
    /// to `outputs[i]`. Re-plans only when the input shapes change; otherwise the run copies the
    /// inputs into the arena, executes the planned steps and copies the outputs out, allocating
    /// nothing. Throws `RuntimeError` (on a too-small output buffer, `plannedOutputShape` tells
    /// the size needed).
    public func run(inputs: [InputBuffer], outputs: [OutputBuffer]) throws {
        let graph = model.graph
        guard inputs.count == graph.inputs.count else {
            throw RuntimeError.bufferCount(what: "input", expected: graph.inputs.count, actual: inputs.count)
        }
        guard outputs.count == graph.outputs.count else {
            throw RuntimeError.bufferCount(what: "output", expected: graph.outputs.count, actual: outputs.count)
        }
        var samePlan = true
        for (index, input) in graph.inputs.enumerated() {
            let buffer = inputs[index]
            guard let needed = buffer.shape.elementCount, needed == buffer.count else {
                throw RuntimeError.inputDataLength(name: input.name, expected: buffer.shape.elementCount ?? -1,
                                                   actual: buffer.count)
            }
            if plan.inputShapes[input.name] != buffer.shape { samePlan = false }
        }
        if !samePlan {
            var shapes: [String: Shape] = [:]
            for (index, input) in graph.inputs.enumerated() { shapes[input.name] = inputs[index].shape }
            try preparePlan(for: shapes)
        }
        for (index, name) in graph.outputs.enumerated() {
            let needed = plan.values[name]!.shape.elementCount!
            guard needed <= outputs[index].capacity else {
                throw RuntimeError.outputBufferTooSmall(name: name, needed: needed, capacity: outputs[index].capacity)
            }
        }
        for (index, input) in graph.inputs.enumerated() {
            plan.pointer(to: input.name)!.update(from: inputs[index].data, count: inputs[index].count)
        }
        execute()
        for (index, name) in graph.outputs.enumerated() {
            let count = plan.values[name]!.shape.elementCount!
            outputs[index].data.update(from: plan.pointer(to: name)!, count: count)
        }
    }
}
