#!/usr/bin/env python3
"""Builds the ONNX import fixtures under Fixtures/onnx/ (committed, so `swift test` needs no Python).

Each model is built directly with onnx.helper from seeded numpy weights; onnxruntime runs it
on a seeded NCHW input of batch 2 and the input and every graph output are stored as JSON
next to the model:

    {"model": "lenet.onnx", "input_name": "x", "input_shape": [2,1,32,32], "input": [...],
     "outputs": {"logits": {"shape": [2,10], "data": [...]}, ...}}

The batch dimension of every model is symbolic ("N"), so the importer's dynamic-batch path
is what the Swift tests exercise. Run with the project venv:

    /work/main/.venv/bin/python Tools/make-onnx-fixtures.py
"""
import json
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Fixtures", "onnx")
BATCH = 2


class Builder:
    """Collects nodes and initializers; names values in order."""

    def __init__(self, seed):
        self.rng = np.random.default_rng(seed)
        self.nodes = []
        self.inits = []
        self.count = 0

    def name(self, prefix):
        self.count += 1
        return f"{prefix}{self.count}"

    def const(self, array, prefix="c"):
        n = self.name(prefix)
        self.inits.append(numpy_helper.from_array(np.asarray(array), n))
        return n

    def weight(self, shape, scale=None, prefix="w"):
        fan_in = int(np.prod(shape[1:])) if len(shape) > 1 else shape[0]
        scale = scale if scale is not None else 1.0 / np.sqrt(fan_in)
        return self.const((self.rng.standard_normal(shape) * scale).astype(np.float32), prefix)

    def node(self, op, inputs, outputs=None, name=None, **attrs):
        outputs = outputs or [self.name(op.lower() + "_out")]
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name or self.name(op.lower()), **attrs))
        return outputs[0] if len(outputs) == 1 else outputs

    def conv(self, x, cin, cout, k, stride=1, pad=None, group=1, bias=True, **attrs):
        w = self.weight([cout, cin // group, k, k])
        inputs = [x, w] + ([self.weight([cout], 0.1, "b")] if bias else [])
        if pad is not None:
            attrs["pads"] = [pad] * 4
        return self.node("Conv", inputs, strides=[stride, stride], group=group, kernel_shape=[k, k], **attrs)

    def bn(self, x, c):
        gamma = (1 + 0.2 * self.rng.standard_normal(c)).astype(np.float32)
        beta = (0.1 * self.rng.standard_normal(c)).astype(np.float32)
        mean = (0.1 * self.rng.standard_normal(c)).astype(np.float32)
        var = (0.5 + self.rng.random(c)).astype(np.float32)
        return self.node("BatchNormalization", [x, self.const(gamma, "gamma"), self.const(beta, "beta"),
                                               self.const(mean, "mean"), self.const(var, "var")], epsilon=1e-5)

    def model(self, name, input_shape, outputs, opset):
        x = helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N"] + input_shape[1:])
        outs = [helper.make_tensor_value_info(o, TensorProto.FLOAT, ["N"] + dims) for o, dims in outputs.items()]
        graph = helper.make_graph(self.nodes, name, [x], outs, self.inits)
        m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="make-onnx-fixtures")
        m.ir_version = 8
        return m


def lenet():
    b = Builder(1)
    h = b.node("Relu", [b.conv("x", 1, 6, 5)])
    h = b.node("MaxPool", [h], kernel_shape=[2, 2], strides=[2, 2])
    h = b.node("Relu", [b.conv(h, 6, 16, 5)])
    h = b.node("MaxPool", [h], kernel_shape=[2, 2], strides=[2, 2])          # [N,16,5,5]
    h = b.node("Flatten", [h], axis=1)                                        # NCHW order matters here
    h = b.node("Gemm", [h, b.weight([120, 400]), b.weight([120], 0.1)], transB=1)
    h = b.node("Relu", [h])
    # transB=0 with alpha/beta, so the importer has to fold all three into the weights.
    b.node("Gemm", [h, b.weight([120, 10]), b.weight([1, 10], 0.1)], ["logits"], alpha=0.5, beta=2.0)
    b.node("Softmax", ["logits"], ["probs"], axis=-1)
    return b.model("lenet", [BATCH, 1, 32, 32], {"logits": [10], "probs": [10]}, opset=13)


def mobilenet():
    b = Builder(2)
    zero, six = b.const(np.float32(0), "clip_min"), b.const(np.float32(6), "clip_max")

    def relu6(t):
        return b.node("Clip", [t, zero, six])

    h = relu6(b.bn(b.conv("x", 3, 16, 3, stride=2, pad=1, bias=False), 16))          # [N,16,16,16]
    # Inverted residual: expand 1x1, depthwise 3x3 (group = channels), project 1x1, add.
    e = relu6(b.bn(b.conv(h, 16, 48, 1, bias=False), 48))
    d = relu6(b.bn(b.conv(e, 48, 48, 3, group=48, bias=False, auto_pad="SAME_UPPER"), 48))
    p = b.bn(b.conv(d, 48, 16, 1, bias=False), 16)
    h = b.node("Add", [h, p])
    # A strided depthwise block with SAME_LOWER padding, then a HardSwish head.
    d = relu6(b.bn(b.conv(h, 16, 16, 3, stride=2, group=16, bias=False, auto_pad="SAME_LOWER"), 16))
    h = b.node("HardSwish", [b.conv(d, 16, 32, 1)])
    h = b.node("GlobalAveragePool", [h])
    h = b.node("Flatten", [h])
    b.node("Gemm", [h, b.weight([10, 32]), b.weight([10], 0.1)], ["logits"], transB=1)
    return b.model("mobilenet_block", [BATCH, 3, 32, 32], {"logits": [10]}, opset=17)


def resnet():
    b = Builder(3)
    h = b.node("Relu", [b.bn(b.conv("x", 3, 8, 3, pad=1), 8)])
    h = b.node("MaxPool", [h], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1])   # [N,8,16,16]
    # Basic block with identity shortcut.
    r = b.node("Relu", [b.bn(b.conv(h, 8, 8, 3, pad=1, bias=False), 8)])
    r = b.bn(b.conv(r, 8, 8, 3, pad=1, bias=False), 8)
    h = b.node("Relu", [b.node("Add", [r, h])])
    # Downsampling block with a 1x1 strided shortcut.
    r = b.node("Relu", [b.bn(b.conv(h, 8, 16, 3, stride=2, pad=1, bias=False), 16)])
    r = b.bn(b.conv(r, 16, 16, 3, pad=1, bias=False), 16)
    s = b.bn(b.conv(h, 8, 16, 1, stride=2, bias=False), 16)
    h = b.node("Relu", [b.node("Add", [r, s])])                                         # [N,16,8,8]
    h = b.node("AveragePool", [h], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1],
               count_include_pad=0)                                                     # [N,16,4,4]
    # Flatten written the exporter way: Shape -> Gather -> Unsqueeze -> Concat -> Reshape.
    shape = b.node("Shape", [h])
    n = b.node("Gather", [shape, b.const(np.int64(0), "idx")], axis=0)
    n = b.node("Unsqueeze", [n, b.const(np.array([0], np.int64), "axes")])
    target = b.node("Concat", [n, b.const(np.array([-1], np.int64), "minus1")], axis=0)
    h = b.node("Reshape", [h, target])                                                  # [N,256]
    h = b.node("MatMul", [h, b.weight([256, 10])])
    b.node("Add", [h, b.weight([10], 0.1)], ["logits"])
    return b.model("resnet_small", [BATCH, 3, 32, 32], {"logits": [10]}, opset=21)


def mixed_ops():
    b = Builder(4)
    a = b.node("LeakyRelu", [b.conv("x", 3, 4, 3, pad=1)], alpha=0.1)
    s = b.node("Sigmoid", [b.conv("x", 3, 4, 1)])
    d = b.node("Tanh", [b.conv("x", 3, 4, 3, pad=2, dilations=[2, 2])])                  # dilated branch
    h = b.node("Concat", [a, s, d], axis=1)                                              # [N,12,16,16]
    h = b.node("Mul", [h, b.const((1 + 0.3 * b.rng.standard_normal((12, 1, 1))).astype(np.float32), "scale")])
    h = b.node("Sub", [h, b.const(np.array([0.25], np.float32), "shift")])
    h = b.node("Div", [h, b.const(np.float32(2.0), "two")])
    h = b.node("Pad", [h, b.const(np.array([0, 0, 1, 2, 0, 0, 2, 1], np.int64), "pads"),
                       b.const(np.float32(0.5), "padv")], mode="constant")              # [N,12,19,19]
    h = b.node("Tanh", [h])
    h = b.node("Dropout", [h])
    h = b.node("Identity", [h])
    h = b.node("AveragePool", [h], kernel_shape=[2, 2], strides=[2, 2], pads=[0, 0, 1, 1],
               count_include_pad=1)                                                     # [N,12,10,10]
    b.node("Softmax", [h], ["probs4d"], axis=1)                                          # over channels
    t = b.node("Transpose", ["probs4d"], perm=[0, 2, 3, 1])                              # [N,10,10,12]
    r = b.node("Reshape", [t, b.const(np.array([0, -1], np.int64), "shape")])           # [N,1200]
    r = b.node("Unsqueeze", [r, b.const(np.array([1], np.int64), "uaxes")])
    r = b.node("Squeeze", [r, b.const(np.array([1], np.int64), "saxes")])
    b.node("Gemm", [r, b.weight([1200, 5]), b.weight([5], 0.1)], ["logits"])
    return b.model("mixed_ops", [BATCH, 3, 16, 16], {"logits": [5], "probs4d": [12, 10, 10]}, opset=18)


def unsupported():
    """Two op types the importer lacks (Resize twice, LSTM once) among supported ones."""
    b = Builder(5)
    scales = b.const(np.array([1, 1, 2, 2], np.float32), "scales")
    h = b.node("Resize", ["x", "", scales], name="upsample_a", mode="nearest")
    h = b.node("Relu", [h])
    h = b.node("Resize", [h, "", scales], name="upsample_b", mode="nearest")
    seq = b.node("Reshape", [h, b.const(np.array([4, 2, 16], np.int64), "seq_shape")])
    b.node("LSTM", [seq, b.weight([1, 32, 16]), b.weight([1, 32, 8])], ["lstm_y"], name="encoder_lstm", hidden_size=8)
    return b.model("unsupported", [1, 1, 2, 2], {"lstm_y": [1, 4, 8]}, opset=17)


def old_opset():
    b = Builder(6)
    b.node("Relu", ["x"], ["y"])
    return b.model("old_opset", [1, 3, 4, 4], {"y": [3, 4, 4]}, opset=11)


def external_data():
    b = Builder(7)
    b.node("Conv", ["x", b.weight([2, 3, 1, 1])], ["y"])
    m = b.model("external", [1, 3, 4, 4], {"y": [2, 4, 4]}, opset=17)
    w = m.graph.initializer[0]
    w.ClearField("raw_data")
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    entry = w.external_data.add()
    entry.key, entry.value = "location", "weights.bin"
    return m


def save_with_reference(model, seed):
    name = model.graph.name
    onnx.checker.check_model(model)
    path = os.path.join(ROOT, f"{name}.onnx")
    onnx.save(model, path)
    shape = [BATCH] + [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim[1:]]
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
    names = [o.name for o in model.graph.output]
    results = session.run(names, {"x": x})
    record = {
        "model": f"{name}.onnx",
        "input_name": "x",
        "input_shape": list(x.shape),
        "input": [float(v) for v in x.ravel()],
        "outputs": {n: {"shape": list(r.shape), "data": [float(v) for v in r.ravel()]} for n, r in zip(names, results)},
    }
    with open(os.path.join(ROOT, f"{name}.json"), "w") as f:
        json.dump(record, f)
    print(f"{name}: {os.path.getsize(path)} bytes, outputs {[list(r.shape) for r in results]}")


def main():
    os.makedirs(ROOT, exist_ok=True)
    for seed, build in enumerate([lenet, mobilenet, resnet, mixed_ops], start=100):
        save_with_reference(build(), seed)
    for build in [unsupported, old_opset, external_data]:
        model = build()
        onnx.save(model, os.path.join(ROOT, f"{model.graph.name}.onnx"))
        print(f"{model.graph.name}: error fixture")


if __name__ == "__main__":
    main()
