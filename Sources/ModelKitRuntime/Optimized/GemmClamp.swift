import ModelKitCore

/// The clamp the GEMM epilogue applies for a fused activation: ReLU is [0, +inf], Clip (ReLU6)
/// its bounds. A leaky ReLU is not a clamp: it is applied after the GEMM, in a separate pass.
struct GemmClamp {
    let on: Int32
    let lo: Float
    let hi: Float
    /// Whether the GEMM's output is final (no activation, or one the clamp computes).
    let fusesActivation: Bool

    init(_ activation: FusedActivation) {
        switch activation {
        case .none: (on, lo, hi, fusesActivation) = (0, 0, 0, true)
        case .relu: (on, lo, hi, fusesActivation) = (1, 0, .infinity, true)
        case .clip(let low, let high): (on, lo, hi, fusesActivation) = (1, low, high, true)
        case .leakyRelu: (on, lo, hi, fusesActivation) = (0, 0, 0, false)
        }
    }
}
