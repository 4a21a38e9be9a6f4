import ModelKitCore
public enum ReferenceKernels {
    public static func run(_ operation: Operation, inputs: [TensorView?], output: MutableTensorView) {}
}
