import ModelKitCore

/// The fp32 reference kernels: plain loops, written to be obviously correct rather than fast.
/// They are the oracle that optimized kernels are tested against, and are themselves checked
/// against goldens from onnxruntime and numpy (`Tools/make-op-goldens.py`).
///
/// Every kernel trusts the shapes it is given: `ShapeInference` has already checked each
/// precondition (ranks, matching dimensions, output shape). Inputs and output never alias.
public enum ReferenceKernels {
    /// Runs `operation` on `inputs` (positional, nil for an omitted optional input) writing every element of `output`.
    /// Shapes have been validated by ShapeInference: kernels may rely on them.
    public static func run(_ operation: Operation, inputs: [TensorView?], output: MutableTensorView) {
        func input(_ position: Int) -> TensorView {
            guard position < inputs.count, let view = inputs[position] else {
                preconditionFailure("\(operation.name): required input \(position) is missing")
            }
            return view
        }
        func optionalInput(_ position: Int) -> TensorView? {
            position < inputs.count ? inputs[position] : nil
        }

        switch operation {
        case .conv2D(let attributes):
            conv2D(input: input(0), weight: input(1), bias: optionalInput(2), attributes: attributes, output: output)
        case .dense(let activation):
            dense(input: input(0), weight: input(1), bias: optionalInput(2), activation: activation, output: output)
        case .maxPool2D(let attributes):
            maxPool2D(input: input(0), attributes: attributes, output: output)
        case .averagePool2D(let attributes):
            averagePool2D(input: input(0), attributes: attributes, output: output)
        case .globalAveragePool:
            globalAveragePool(input: input(0), output: output)
        case .relu:
            relu(input: input(0), output: output)
        case .clip(let lo, let hi):
            clip(input: input(0), min: lo, max: hi, output: output)
        case .leakyRelu(let alpha):
            leakyRelu(input: input(0), alpha: alpha, output: output)
        case .sigmoid:
            sigmoid(input: input(0), output: output)
        case .tanh:
            tanh(input: input(0), output: output)
        case .hardSwish:
            hardSwish(input: input(0), output: output)
        case .softmax(let axis):
            softmax(input: input(0), axis: axis, output: output)
        case .flatten, .reshape, .dropout:
            // Same elements in the same row-major order; only the shape changes.
            copy(input: input(0), output: output)
        case .transpose(let permutation):
            transpose(input: input(0), permutation: permutation, output: output)
        case .add(let activation):
            add(input(0), input(1), activation: activation, output: output)
        case .mul:
            mul(input(0), input(1), output: output)
        case .concat(let axis):
            concat(inputs: inputs.indices.map { input($0) }, axis: axis, output: output)
        case .pad(let pads, let value):
            pad(input: input(0), pads: pads, value: value, output: output)
        case .batchNormalization(let epsilon):
            batchNormalization(input: input(0), scale: input(1), bias: input(2), mean: input(3),
                               variance: input(4), epsilon: epsilon, output: output)
        case .quantizeLinear, .dequantizeLinear:
            // They touch int8 values; ExecutionPlan runs them as Int8Step, never as float steps.
            preconditionFailure("\(operation.name) runs through Int8ReferenceKernels")
        }
    }

    /// Number of elements of a validated (fully known, non-overflowing) shape.
    @inline(__always)
    static func count(_ shape: Shape) -> Int {
        var total = 1
        for dim in shape.dims { total *= dim }
        return total
    }

    /// Steps a row-major multi-index one element forward (the last axis moves fastest).
    /// Returns false after the last element.
    @inline(__always)
    static func advance(_ index: inout [Int], dims: [Int]) -> Bool {
        var axis = dims.count - 1
        while axis >= 0 {
            index[axis] += 1
            if index[axis] < dims[axis] { return true }
            index[axis] = 0
            axis -= 1
        }
        return false
    }
}
