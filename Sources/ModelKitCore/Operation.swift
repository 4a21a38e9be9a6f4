/// An activation folded into the op that produces a tensor (Conv2D, Dense, Add).
/// Keeping it on the op lets kernels apply it while the value is still in a register,
/// and lets the int8 path turn it into a clamp.
public enum FusedActivation: Hashable, Sendable, CustomStringConvertible {
    case none
    case relu
    /// clamp(x, min, max); ReLU6 is clip(0, 6).
    case clip(min: Float, max: Float)
    case leakyRelu(alpha: Float)

    public static let relu6 = FusedActivation.clip(min: 0, max: 6)

    @inline(__always)
    public func apply(_ x: Float) -> Float {
        switch self {
        case .none: return x
        case .relu: return x > 0 ? x : 0
        case .clip(let lo, let hi): return min(max(x, lo), hi)
        case .leakyRelu(let alpha): return x >= 0 ? x : alpha * x
        }
    }

    public var description: String {
        switch self {
        case .none: return "none"
        case .relu: return "relu"
        case .clip(let lo, let hi): return lo == 0 && hi == 6 ? "relu6" : "clip(\(lo),\(hi))"
        case .leakyRelu(let alpha): return "leaky_relu(\(alpha))"
        }
    }
}

/// Spatial padding of a convolution or pooling window.
public enum Padding: Hashable, Sendable, CustomStringConvertible {
    /// No padding.
    case valid
    /// Output size ceil(in / stride); any odd padding goes at the bottom/right
    /// (TensorFlow "SAME", ONNX "SAME_UPPER").
    case same
    /// Explicit amounts.
    case explicit(top: Int, left: Int, bottom: Int, right: Int)

    public var description: String {
        switch self {
        case .valid: return "valid"
        case .same: return "same"
        case .explicit(let t, let l, let b, let r): return "explicit(\(t),\(l),\(b),\(r))"
        }
    }

    /// Resolves to explicit amounts (top, left, bottom, right) for an input of `height`×`width`.
    public func resolve(height: Int, width: Int, kernel: (Int, Int), stride: (Int, Int),
                        dilation: (Int, Int) = (1, 1)) -> (top: Int, left: Int, bottom: Int, right: Int) {
        switch self {
        case .valid:
            return (0, 0, 0, 0)
        case .explicit(let t, let l, let b, let r):
            return (t, l, b, r)
        case .same:
            func split(_ size: Int, _ k: Int, _ s: Int, _ d: Int) -> (Int, Int) {
                let effective = (k - 1) * d + 1
                let out = (size + s - 1) / s
                let total = max((out - 1) * s + effective - size, 0)
                return (total / 2, total - total / 2)
            }
            let (t, b) = split(height, kernel.0, stride.0, dilation.0)
            let (l, r) = split(width, kernel.1, stride.1, dilation.1)
            return (t, l, b, r)
        }
    }
}

public struct Conv2DAttributes: Hashable, Sendable {
    public var strideH: Int
    public var strideW: Int
    public var dilationH: Int
    public var dilationW: Int
    public var padding: Padding
    public var groups: Int
    public var activation: FusedActivation

    public init(strides: (Int, Int) = (1, 1), dilations: (Int, Int) = (1, 1), padding: Padding = .valid,
                groups: Int = 1, activation: FusedActivation = .none) {
        self.strideH = strides.0
        self.strideW = strides.1
        self.dilationH = dilations.0
        self.dilationW = dilations.1
        self.padding = padding
        self.groups = groups
        self.activation = activation
    }
}

public struct Pool2DAttributes: Hashable, Sendable {
    public var kernelH: Int
    public var kernelW: Int
    public var strideH: Int
    public var strideW: Int
    public var padding: Padding
    /// Average pooling only: whether padded cells count in the divisor (ONNX count_include_pad).
    public var countIncludePad: Bool

    public init(kernel: (Int, Int), strides: (Int, Int)? = nil, padding: Padding = .valid,
                countIncludePad: Bool = false) {
        self.kernelH = kernel.0
        self.kernelW = kernel.1
        self.strideH = strides?.0 ?? kernel.0
        self.strideW = strides?.1 ?? kernel.1
        self.padding = padding
        self.countIncludePad = countIncludePad
    }
}

/// What a node computes. Inputs are positional; the comment on each case lists them.
public enum Operation: Hashable, Sendable {
    /// x [N,H,W,C], weight [O,kH,kW,C/groups], bias [O]? -> [N,OH,OW,O]
    case conv2D(Conv2DAttributes)
    /// x [N,K], weight [O,K], bias [O]? -> [N,O]
    case dense(activation: FusedActivation)
    /// x [N,H,W,C] -> [N,OH,OW,C]
    case maxPool2D(Pool2DAttributes)
    case averagePool2D(Pool2DAttributes)
    /// x [N,H,W,C] -> [N,1,1,C]
    case globalAveragePool
    case relu
    /// clamp(x, min, max); ReLU6 is clip(0, 6).
    case clip(min: Float, max: Float)
    case leakyRelu(alpha: Float)
    case sigmoid
    case tanh
    /// x * relu6(x + 3) / 6
    case hardSwish
    case softmax(axis: Int)
    /// ONNX semantics: [prod(dims[..<axis]), prod(dims[axis...])].
    case flatten(axis: Int)
    /// ONNX semantics: 0 copies the input dimension, one -1 is inferred.
    case reshape(shape: [Int])
    case transpose(permutation: [Int])
    /// a, b with numpy broadcasting.
    case add(activation: FusedActivation)
    case mul
    case concat(axis: Int)
    /// Constant padding; `pads` is [begin_0, ..., begin_{r-1}, end_0, ..., end_{r-1}].
    case pad(pads: [Int], value: Float)
    /// x [...,C], scale [C], bias [C], mean [C], variance [C] (channel-last).
    case batchNormalization(epsilon: Float)
    /// Identity at inference; the rate is kept for the trainer and for export.
    case dropout(rate: Float)
    /// float x -> int8: q = clamp(round(x / scale) + zeroPoint, -128, 127), with the per-tensor
    /// parameters of the output value (`Graph.valueQuantization`).
    case quantizeLinear
    /// int8 x -> float: scale * (q - zeroPoint), with the per-tensor parameters of the input value.
    case dequantizeLinear

    /// The stable name used in files, `inspect`, and error messages.
    public var name: String {
        switch self {
        case .conv2D: return "Conv2D"
        case .dense: return "Dense"
        case .maxPool2D: return "MaxPool2D"
        case .averagePool2D: return "AveragePool2D"
        case .globalAveragePool: return "GlobalAveragePool"
        case .relu: return "ReLU"
        case .clip: return "Clip"
        case .leakyRelu: return "LeakyReLU"
        case .sigmoid: return "Sigmoid"
        case .tanh: return "Tanh"
        case .hardSwish: return "HardSwish"
        case .softmax: return "Softmax"
        case .flatten: return "Flatten"
        case .reshape: return "Reshape"
        case .transpose: return "Transpose"
        case .add: return "Add"
        case .mul: return "Mul"
        case .concat: return "Concat"
        case .pad: return "Pad"
        case .batchNormalization: return "BatchNormalization"
        case .dropout: return "Dropout"
        case .quantizeLinear: return "QuantizeLinear"
        case .dequantizeLinear: return "DequantizeLinear"
        }
    }

    /// Allowed input counts (inclusive range).
    public var inputArity: ClosedRange<Int> {
        switch self {
        case .conv2D, .dense: return 2...3
        case .add, .mul: return 2...2
        case .concat: return 1...Int.max
        case .batchNormalization: return 5...5
        default: return 1...1
        }
    }

    /// The activation fused into this op, if it can carry one.
    public var fusedActivation: FusedActivation? {
        switch self {
        case .conv2D(let attributes): return attributes.activation
        case .dense(let activation), .add(let activation): return activation
        default: return nil
        }
    }
}
