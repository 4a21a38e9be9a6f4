import CModelKitKernels
import ModelKitCore

/// int8 weights of a Conv2D or Dense with everything requantization needs, computed at plan time.
struct Int8Weights {
    let data: UnsafePointer<Int8>
    let shape: Shape
    let bias: UnsafePointer<Int32>?
    let requantization: Requantization
}

/// One int8 (or float↔int8) kernel call with its addresses and fixed-point constants resolved.
struct Int8Step {
    enum Work {
        case quantize(TensorView, MutableInt8View)
        case dequantize(Int8View, MutableTensorView)
        case conv2D(Int8View, Int8Weights, Conv2DAttributes, MutableInt8View)
        /// The optimized depthwise kernel (groups == C); the reference runs `conv2D`.
        case depthwiseConv2D(Int8DepthwiseConv2D)
        case dense(Int8View, Int8Weights, MutableInt8View)
        case add(Int8View, Int8View, AddRequantization, MutableInt8View)
        case maxPool2D(Int8View, Pool2DAttributes, MutableInt8View)
        case averagePool2D(Int8View, Pool2DAttributes, MutableInt8View)
        case globalAveragePool(Int8View, MutableInt8View)
        case concat([Int8View], axis: Int, MutableInt8View)
    }

    let work: Work
    /// Optimized kernels where they exist (`gemmStep`, max pooling), or the reference ones everywhere.
    let optimized: Bool

    /// The step for `node`, whose input and output values live at `address`; nil when the node
    /// has float inputs and output (a float step).
    static func make(node: Node, values: [String: ValueInfo], address: (String) -> UnsafeMutableRawPointer,
                     optimized: Bool, pool: WorkerPool? = nil) -> Int8Step? {
        let output = values[node.outputs[0]]!
        let first = values[node.inputs[0]]!
        guard output.dtype == .int8 || first.dtype == .int8 else { return nil }
        func int8(_ name: String) -> Int8View {
            let info = values[name]!
            let q = info.quantization!
            return Int8View(UnsafePointer(address(name).assumingMemoryBound(to: Int8.self)), info.shape,
                            scale: q.scales[0], zeroPoint: q.zeroPoints[0])
        }
        func mutableInt8(_ name: String) -> MutableInt8View {
            let view = int8(name)
            return MutableInt8View(UnsafeMutablePointer(mutating: view.data), view.shape, scale: view.scale,
                                   zeroPoint: view.zeroPoint)
        }
        func weights(activation: FusedActivation) -> Int8Weights {
            let x = int8(node.inputs[0])
            let y = int8(node.outputs[0])
            let info = values[node.inputs[1]]!
            let data = UnsafePointer(address(node.inputs[1]).assumingMemoryBound(to: Int8.self))
            let bias = node.inputs.count > 2 && !node.inputs[2].isEmpty
                ? UnsafePointer(address(node.inputs[2]).assumingMemoryBound(to: Int32.self)) : nil
            return Int8Weights(data: data, shape: info.shape, bias: bias,
                               requantization: Requantization(inputScale: x.scale, weightScales: info.quantization!.scales,
                                                              outputScale: y.scale, outputZeroPoint: y.zeroPoint,
                                                              activation: activation))
        }
        let work: Work
        switch node.operation {
        case .quantizeLinear:
            work = .quantize(TensorView(UnsafePointer(address(node.inputs[0]).assumingMemoryBound(to: Float.self)), first.shape),
                             mutableInt8(node.outputs[0]))
        case .dequantizeLinear:
            work = .dequantize(int8(node.inputs[0]),
                               MutableTensorView(address(node.outputs[0]).assumingMemoryBound(to: Float.self), output.shape))
        case .conv2D(let a) where optimized && Depthwise.applies(input: first.shape, weight: values[node.inputs[1]]!.shape,
                                                                 attributes: a):
            let w = weights(activation: a.activation)
            work = .depthwiseConv2D(Int8DepthwiseConv2D(input: int8(node.inputs[0]), weight: w.data, weightShape: w.shape,
                                                        bias: w.bias, attributes: a, requantization: w.requantization,
                                                        output: mutableInt8(node.outputs[0]), pool: pool))
        case .conv2D(let a):
            work = .conv2D(int8(node.inputs[0]), weights(activation: a.activation), a, mutableInt8(node.outputs[0]))
        case .dense(let activation):
            work = .dense(int8(node.inputs[0]), weights(activation: activation), mutableInt8(node.outputs[0]))
        case .add(let activation):
            let (a, b, y) = (int8(node.inputs[0]), int8(node.inputs[1]), mutableInt8(node.outputs[0]))
            work = .add(a, b, AddRequantization((a.scale, a.zeroPoint), (b.scale, b.zeroPoint), output: (y.scale, y.zeroPoint),
                                                activation: activation), y)
        case .maxPool2D(let a):
            work = .maxPool2D(int8(node.inputs[0]), a, mutableInt8(node.outputs[0]))
        case .averagePool2D(let a):
            work = .averagePool2D(int8(node.inputs[0]), a, mutableInt8(node.outputs[0]))
        case .globalAveragePool:
            work = .globalAveragePool(int8(node.inputs[0]), mutableInt8(node.outputs[0]))
        case .concat(let axis):
            work = .concat(node.inputs.map(int8), axis: axis, mutableInt8(node.outputs[0]))
        default:
            // ShapeInference admits int8 only for the ops above and the aliasing ones (Flatten,
            // Reshape, Dropout), which the plan never turns into steps.
            preconditionFailure("\(node.operation.name) has no int8 kernel")
        }
        return Int8Step(work: work, optimized: optimized)
    }

    /// The packed int8 GEMM step for an optimized Conv2D (groups == 1) or Dense; nil otherwise.
    /// With `maxPool` (the attributes and output of a max pooling of this convolution's output that
    /// the plan found fusable), the step writes the pooling's output instead.
    func gemmStep(maxPool: (Pool2DAttributes, MutableInt8View)? = nil, buffers: inout [PlanBuffer]) -> Int8GemmStep? {
        guard optimized else { return nil }
        switch work {
        case .conv2D(let x, let w, let a, let y):
            return Int8GemmStep.make(input: x, weight: w.data, weightShape: w.shape, bias: w.bias,
                                     requantization: w.requantization, convolution: a, output: y, maxPool: maxPool,
                                     buffers: &buffers)
        case .dense(let x, let w, let y):
            return Int8GemmStep.make(input: x, weight: w.data, weightShape: w.shape, bias: w.bias,
                                     requantization: w.requantization, convolution: nil, output: y, buffers: &buffers)
        default:
            return nil
        }
    }

    /// The implementation `run` uses, for profiles.
    var kernelName: String {
        switch work {
        case .depthwiseConv2D: return "int8 depthwise"
        case .quantize: return optimized ? "quantize" : "int8 reference"
        case .dequantize: return "int8 reference"
        case .add(let a, let b, _, let y): return optimized && Int8SameShapeAdd.applies(a, b, output: y) ? "int8 add" : "int8 reference"
        case .maxPool2D: return optimized ? "int8 max pool" : "int8 reference"
        case .averagePool2D, .globalAveragePool: return optimized ? "int8 average pool" : "int8 reference"
        case .concat: return optimized ? "int8 concat" : "int8 reference"
        case .conv2D, .dense: return "int8 reference"
        }
    }

    func run(pool: WorkerPool? = nil) {
        switch work {
        case .depthwiseConv2D(let depthwise):
            depthwise.run(pool: pool)
        case .quantize(let x, let y):
            if optimized {
                Int8Step.quantize(x, y)
            } else {
                Int8ReferenceKernels.quantize(input: x, output: y)
            }
        case .dequantize(let x, let y):
            Int8ReferenceKernels.dequantize(input: x, output: y)
        case .conv2D(let x, let w, let a, let y):
            Int8ReferenceKernels.conv2D(input: x, weight: w.data, weightShape: w.shape, bias: w.bias, attributes: a,
                                        requantization: w.requantization, output: y)
        case .dense(let x, let w, let y):
            Int8ReferenceKernels.dense(input: x, weight: w.data, weightShape: w.shape, bias: w.bias,
                                       requantization: w.requantization, output: y)
        case .add(let a, let b, let r, let y):
            if optimized && Int8SameShapeAdd.applies(a, b, output: y) {
                Int8SameShapeAdd.run(a, b, requantization: r, output: y, pool: pool)
            } else {
                Int8ReferenceKernels.add(a, b, requantization: r, output: y)
            }
        case .maxPool2D(let x, let a, let y):
            if optimized {
                MaxPoolStep(input: x.data, inputShape: x.shape, output: y.data, outputShape: y.shape, attributes: a,
                            isInt8: true).run()
            } else {
                Int8ReferenceKernels.maxPool2D(input: x, attributes: a, output: y)
            }
        case .averagePool2D(let x, let a, let y):
            if optimized {
                Int8AveragePool.run(input: x, attributes: a, output: y)
            } else {
                Int8ReferenceKernels.averagePool2D(input: x, attributes: a, output: y)
            }
        case .globalAveragePool(let x, let y):
            if optimized {
                Int8AveragePool.run(input: x, attributes: nil, output: y)
            } else {
                Int8ReferenceKernels.globalAveragePool(input: x, output: y)
            }
        case .concat(let inputs, let axis, let y):
            if optimized {
                Int8Concat.run(inputs: inputs, axis: axis, output: y)
            } else {
                Int8ReferenceKernels.concat(inputs: inputs, axis: axis, output: y)
            }
        }
    }

    /// The C quantization kernel (SIMD on `path`), bit-exact with `Int8ReferenceKernels.quantize`:
    /// a MobileNetV2 input image is 150K values, which the scalar loop took ~0.9 ms over.
    static func quantize(_ x: TensorView, _ y: MutableInt8View, path: Int32 = mk_kernels_active()) {
        mk_quantize_s8(path, ReferenceKernels.count(x.shape), x.data, y.scale, y.zeroPoint, y.data)
    }
}
