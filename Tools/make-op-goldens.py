#!/usr/bin/env python3
"""Golden outputs for the fp32 reference kernels, from an independent implementation.

Every case is run through onnxruntime as a one-node ONNX model. modelkit's layouts are
converted in this script: activations NHWC -> NCHW and back, convolution weights
[O, kH, kW, C/groups] -> [O, C/groups, kH, kW], BatchNormalization's channel axis from last
to 1, Dense as Gemm(transB=1). Where our ops carry more than the ONNX op does, numpy finishes
the job: fused activations (relu, clip, leaky relu) are applied to ORT's output in float32.
Padding.same is ONNX auto_pad SAME_UPPER.

Output: Fixtures/goldens/ops/<OpName>.json, one file per op:
    {"op": "Conv2D", "generator": ..., "cases": [
        {"name": ..., "op": "Conv2D", "attributes": {...},
         "inputs": [{"shape": [...], "data": [...]}, null, ...],   # null = omitted optional input
         "expected": {"shape": [...], "data": [...]}}]}
Attribute encodings (read by Tests/ModelKitRuntimeTests/ReferenceKernelGoldenTests.swift):
    padding     "valid" | "same" | [top, left, bottom, right]
    activation  {"type": "none" | "relu"} | {"type": "clip", "min": a, "max": b}
                | {"type": "leakyRelu", "alpha": a}
    others      strides/dilations/kernel [h, w], groups, countIncludePad, axis, shape,
                permutation, pads, value, epsilon, rate, min, max, alpha.
Floats are written with the shortest text that round-trips the float32 value.

Regenerate (deterministic: fixed seed; needs numpy, onnx, onnxruntime):
    /work/main/.venv/bin/python Tools/make-op-goldens.py
which rewrites Fixtures/goldens/ops/*.json; then run `swift test` and commit the files.
"""

import json
import os
import sys

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
SEED = 20241129
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = os.path.join(ROOT, "Fixtures", "goldens", "ops")

rng = np.random.default_rng(SEED)


def randn(*shape, scale=1.0):
    return np.asarray(rng.standard_normal(shape) * scale, dtype=np.float32)


# --------------------------------------------------------------------------- onnxruntime

def run_onnx(op_type, inputs, attrs=None, constants=None, num_outputs=1):
    """Runs one ONNX node. `inputs` is a list of (name, array or None); a None array becomes an
    omitted input (empty name). Inputs named in `constants` become initializers (ONNX requires
    some, such as Reshape's shape, to be known for shape inference); the rest are fed at run time."""
    constants = set(constants or ())
    graph_inputs, feeds, node_inputs, initializers = [], {}, [], []
    for name, array in inputs:
        if array is None:
            node_inputs.append("")
            continue
        node_inputs.append(name)
        if name in constants:
            initializers.append(numpy_helper.from_array(array, name))
        else:
            graph_inputs.append(helper.make_tensor_value_info(
                name, helper.np_dtype_to_tensor_dtype(array.dtype), list(array.shape)))
            feeds[name] = array
    outputs = [f"y{i}" for i in range(num_outputs)]
    node = helper.make_node(op_type, node_inputs, outputs, **(attrs or {}))
    graph = helper.make_graph(
        [node], f"golden_{op_type}", graph_inputs,
        [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        initializer=initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    model.ir_version = 8
    # Checks the node against its op schema (attributes, input types and shapes); the output
    # shape is left for ORT to decide, so it is not declared and check_model would reject it.
    onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])
    return session.run(outputs[:1], feeds)[0].astype(np.float32)


def nhwc_to_nchw(x):
    return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


def nchw_to_nhwc(x):
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1))


def onnx_padding(padding):
    if padding == "same":
        return {"auto_pad": "SAME_UPPER"}
    if padding == "valid":
        return {"pads": [0, 0, 0, 0]}
    top, left, bottom, right = padding
    return {"pads": [top, left, bottom, right]}


def tf_same_pads(size, kernel, stride, dilation):
    """TensorFlow SAME: output ceil(size / stride), the odd padding cell at the end."""
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def apply_activation(y, activation):
    kind = activation["type"]
    if kind == "none":
        return y
    if kind == "relu":
        return np.maximum(y, np.float32(0))
    if kind == "clip":
        return np.clip(y, np.float32(activation["min"]), np.float32(activation["max"])).astype(np.float32)
    if kind == "leakyRelu":
        return np.where(y >= 0, y, np.float32(activation["alpha"]) * y).astype(np.float32)
    raise ValueError(kind)


NONE = {"type": "none"}
RELU = {"type": "relu"}
RELU6 = {"type": "clip", "min": 0.0, "max": 6.0}


def clip_act(lo, hi):
    return {"type": "clip", "min": lo, "max": hi}


def leaky_act(alpha):
    return {"type": "leakyRelu", "alpha": alpha}


# --------------------------------------------------------------------------- op cases

def conv2d_case(name, n, h, w, c, o, kernel, strides=(1, 1), dilations=(1, 1), padding="valid",
                groups=1, bias=True, activation=NONE):
    x = randn(n, h, w, c)
    weight = randn(o, kernel[0], kernel[1], c // groups, scale=0.5)
    b = randn(o) if bias else None
    attrs = {"kernel_shape": list(kernel), "strides": list(strides), "dilations": list(dilations),
             "group": groups, **onnx_padding(padding)}
    if padding == "same" and dilations != (1, 1):
        # ORT rejects auto_pad with dilation: pass TF SAME's explicit amounts instead.
        top, bottom = tf_same_pads(h, kernel[0], strides[0], dilations[0])
        left, right = tf_same_pads(w, kernel[1], strides[1], dilations[1])
        del attrs["auto_pad"]
        attrs["pads"] = [top, left, bottom, right]
    y = run_onnx("Conv", [("x", nhwc_to_nchw(x)), ("w", np.ascontiguousarray(weight.transpose(0, 3, 1, 2))),
                          ("b", b)], attrs)
    y = apply_activation(nchw_to_nhwc(y), activation)
    return case(name, "Conv2D",
                {"strides": list(strides), "dilations": list(dilations), "padding": padding,
                 "groups": groups, "activation": activation},
                [x, weight, b], y)


def conv2d_cases():
    return [
        conv2d_case("3x3 valid with bias", 1, 5, 6, 3, 4, (3, 3)),
        conv2d_case("stride 2 same odd size relu", 1, 7, 7, 2, 3, (3, 3), strides=(2, 2), padding="same",
                    activation=RELU),
        conv2d_case("dilation 2 explicit asymmetric relu6", 1, 8, 7, 3, 2, (3, 3), dilations=(2, 2),
                    padding=[1, 2, 0, 1], activation=RELU6),
        conv2d_case("groups 2 stride 2x1 same leaky", 2, 6, 5, 4, 6, (3, 3), strides=(2, 1), padding="same",
                    groups=2, activation=leaky_act(0.1)),
        conv2d_case("depthwise multiplier 2 no bias clip", 1, 6, 6, 3, 6, (3, 3), padding="same", groups=3,
                    bias=False, activation=clip_act(-0.5, 0.5)),
        conv2d_case("depthwise stride 2 valid", 1, 9, 8, 4, 4, (3, 3), strides=(2, 2), groups=4),
        conv2d_case("1x1 no bias batch 2", 2, 3, 4, 5, 3, (1, 1), bias=False),
        conv2d_case("nonsquare kernel same stride 2 dilation 1x2 even size", 1, 8, 10, 2, 3, (2, 3),
                    strides=(2, 2), dilations=(1, 2), padding="same"),
        conv2d_case("explicit pad 2 around 3x3 stride 3", 1, 5, 5, 2, 2, (3, 3), strides=(3, 3),
                    padding=[2, 2, 2, 2]),
        conv2d_case("5x5 kernel on 5x5 input valid", 2, 5, 5, 3, 2, (5, 5), activation=RELU),
    ]


def dense_case(name, n, k, o, bias=True, activation=NONE):
    x = randn(n, k)
    weight = randn(o, k, scale=0.5)
    b = randn(o) if bias else None
    y = run_onnx("Gemm", [("x", x), ("w", weight), ("b", b)], {"transB": 1})
    return case(name, "Dense", {"activation": activation}, [x, weight, b], apply_activation(y, activation))


def dense_cases():
    return [
        dense_case("bias", 1, 7, 5),
        dense_case("no bias batch 3", 3, 9, 4, bias=False),
        dense_case("relu", 2, 13, 6, activation=RELU),
        dense_case("leaky relu", 4, 5, 3, activation=leaky_act(0.2)),
        dense_case("relu6 no bias", 2, 16, 8, bias=False, activation=RELU6),
        dense_case("single output", 3, 4, 1),
    ]


def pool_case(kind, name, n, h, w, c, kernel, strides=None, padding="valid", count_include_pad=False,
              offset=0.0):
    x = randn(n, h, w, c) + np.float32(offset)
    strides = strides or kernel
    attrs = {"kernel_shape": list(kernel), "strides": list(strides), **onnx_padding(padding)}
    if kind == "AveragePool2D":
        attrs["count_include_pad"] = int(count_include_pad)
    y = run_onnx("MaxPool" if kind == "MaxPool2D" else "AveragePool", [("x", nhwc_to_nchw(x))], attrs)
    attributes = {"kernel": list(kernel), "strides": list(strides), "padding": padding}
    if kind == "AveragePool2D":
        attributes["countIncludePad"] = count_include_pad
    return case(name, kind, attributes, [x], nchw_to_nhwc(y))


def maxpool_cases():
    k = "MaxPool2D"
    return [
        pool_case(k, "2x2 stride 2 valid", 1, 6, 8, 3, (2, 2)),
        pool_case(k, "3x3 stride 2 same odd size", 2, 7, 7, 2, (3, 3), (2, 2), "same"),
        pool_case(k, "3x3 stride 1 explicit asymmetric negative input", 1, 5, 6, 2, (3, 3), (1, 1),
                  [1, 0, 2, 1], offset=-10.0),
        pool_case(k, "nonsquare 2x3 stride 1x2 valid", 1, 5, 9, 3, (2, 3), (1, 2)),
        pool_case(k, "2x2 stride 2 same odd size negative input", 1, 5, 5, 4, (2, 2), (2, 2), "same",
                  offset=-10.0),
    ]


def avgpool_cases():
    k = "AveragePool2D"
    cases = []
    for include in (False, True):
        tag = "include pad" if include else "exclude pad"
        cases += [
            pool_case(k, f"3x3 stride 2 same odd size {tag}", 1, 7, 7, 3, (3, 3), (2, 2), "same", include),
            pool_case(k, f"3x3 stride 1 explicit asymmetric {tag}", 2, 5, 6, 2, (3, 3), (1, 1), [1, 0, 2, 1],
                      include),
            pool_case(k, f"2x2 stride 2 same odd size {tag}", 1, 5, 5, 2, (2, 2), (2, 2), "same", include),
        ]
    cases.append(pool_case(k, "2x2 stride 2 valid", 1, 4, 6, 3, (2, 2)))
    cases.append(pool_case(k, "nonsquare 3x2 stride 2x1 valid", 2, 7, 5, 2, (3, 2), (2, 1)))
    return cases


def global_avgpool_cases():
    cases = []
    for name, shape in (("1x5x7x3", (1, 5, 7, 3)), ("2x1x1x4", (2, 1, 1, 4)), ("2x3x3x5", (2, 3, 3, 5))):
        x = randn(*shape)
        y = run_onnx("GlobalAveragePool", [("x", nhwc_to_nchw(x))])
        cases.append(case(name, "GlobalAveragePool", {}, [x], nchw_to_nhwc(y)))
    return cases


def unary_cases(op_name, onnx_type, attrs_list):
    """attrs_list: (name, our attributes, onnx attributes, onnx constant inputs, shape, scale)."""
    cases = []
    for name, attributes, onnx_attrs, constant_inputs, shape, scale in attrs_list:
        x = randn(*shape, scale=scale)
        inputs = [("x", x)] + constant_inputs
        y = run_onnx(onnx_type, inputs, onnx_attrs, constants=[n for n, _ in constant_inputs])
        cases.append(case(name, op_name, attributes, [x], y))
    return cases


def f32(value):
    return np.array(value, dtype=np.float32)


def activation_cases():
    return {
        "ReLU": unary_cases("ReLU", "Relu", [
            ("rank 2", {}, {}, [], (3, 7), 2.0),
            ("rank 4", {}, {}, [], (2, 3, 4, 5), 2.0),
        ]),
        "Clip": unary_cases("Clip", "Clip", [
            ("relu6 rank 4", {"min": 0.0, "max": 6.0}, {}, [("lo", f32(0.0)), ("hi", f32(6.0))], (1, 4, 4, 3), 5.0),
            ("-1..0.5 rank 3", {"min": -1.0, "max": 0.5}, {}, [("lo", f32(-1.0)), ("hi", f32(0.5))], (2, 3, 5), 2.0),
            ("equal bounds rank 1", {"min": 0.25, "max": 0.25}, {}, [("lo", f32(0.25)), ("hi", f32(0.25))], (9,), 1.0),
        ]),
        "LeakyReLU": unary_cases("LeakyReLU", "LeakyRelu", [
            ("alpha 0.1 rank 4", {"alpha": 0.1}, {"alpha": 0.1}, [], (1, 3, 4, 5), 2.0),
            ("alpha 0.3 rank 2", {"alpha": 0.3}, {"alpha": 0.3}, [], (4, 6), 2.0),
            ("alpha -0.5 rank 3", {"alpha": -0.5}, {"alpha": -0.5}, [], (2, 3, 4), 2.0),
        ]),
        "Sigmoid": unary_cases("Sigmoid", "Sigmoid", [
            ("rank 4", {}, {}, [], (1, 3, 4, 5), 3.0),
            ("large magnitudes rank 2", {}, {}, [], (4, 8), 60.0),
        ]),
        "Tanh": unary_cases("Tanh", "Tanh", [
            ("rank 4", {}, {}, [], (2, 2, 3, 4), 2.0),
            ("large magnitudes rank 1", {}, {}, [], (16,), 30.0),
        ]),
        "HardSwish": unary_cases("HardSwish", "HardSwish", [
            ("rank 4 covers all three pieces", {}, {}, [], (1, 4, 5, 6), 4.0),
            ("rank 2", {}, {}, [], (3, 11), 2.0),
        ]),
        "Dropout": unary_cases("Dropout", "Dropout", [
            ("rate 0.5 is identity", {"rate": 0.5}, {}, [], (2, 3, 4), 1.0),
        ]),
    }


def softmax_cases():
    cases = []
    for name, shape, axis, scale in (
        ("rank 2 axis -1", (3, 10), -1, 2.0),
        ("rank 4 axis 1", (2, 4, 3, 5), 1, 2.0),
        ("rank 4 axis -1", (2, 3, 2, 7), -1, 2.0),
        ("rank 3 axis 0", (3, 2, 4), 0, 2.0),
        ("rank 3 axis -2", (2, 5, 3), -2, 2.0),
        ("large logits rank 2 axis 1", (2, 6), 1, 1000.0),
    ):
        x = randn(*shape, scale=scale)
        y = run_onnx("Softmax", [("x", x)], {"axis": axis})
        cases.append(case(name, "Softmax", {"axis": axis}, [x], y))
    return cases


def flatten_cases():
    cases = []
    for axis in (0, 1, 2, -1, 4):
        x = randn(2, 3, 4, 5)
        y = run_onnx("Flatten", [("x", x)], {"axis": axis})
        cases.append(case(f"rank 4 axis {axis}", "Flatten", {"axis": axis}, [x], y))
    return cases


def reshape_cases():
    cases = []
    for name, in_shape, target in (
        ("0 and -1", (2, 3, 4, 5), [0, -1]),
        ("-1 only", (2, 3, 4), [-1]),
        ("0 0 -1", (2, 3, 4, 5), [0, 0, -1]),
        ("-1 in the middle", (2, 3, 4, 5), [4, -1, 5]),
        ("explicit to rank 5", (6, 4), [2, 3, 1, 2, 2]),
    ):
        x = randn(*in_shape)
        y = run_onnx("Reshape", [("x", x), ("shape", np.array(target, dtype=np.int64))],
                     constants=["shape"])
        cases.append(case(name, "Reshape", {"shape": target}, [x], y))
    return cases


def transpose_cases():
    cases = []
    for shape, perm in (((3, 4), [1, 0]), ((2, 3, 4), [2, 0, 1]), ((2, 3, 4), [0, 2, 1]),
                        ((2, 3, 4, 5), [0, 3, 1, 2]), ((2, 3, 4, 5), [3, 1, 0, 2]),
                        ((2, 1, 3, 2, 2), [4, 2, 0, 3, 1])):
        x = randn(*shape)
        y = run_onnx("Transpose", [("x", x)], {"perm": perm})
        cases.append(case(f"rank {len(shape)} perm {perm}", "Transpose", {"permutation": perm}, [x], y))
    return cases


def binary_cases(op_name, onnx_type):
    shapes = [
        ("same shape", (2, 3, 4), (2, 3, 4)),
        ("rank 4 plus vector", (2, 3, 4, 5), (5,)),
        ("both broadcast, different ranks", (2, 1, 4, 1), (3, 1, 5)),
        ("scalar-like [1] with rank 2", (1,), (2, 3)),
        ("rank 0 with rank 2", (), (3, 2)),
        ("rank 6 both ways", (2, 1, 3, 1, 2, 1), (1, 2, 1, 3, 1, 2)),
        ("rank 8", (1, 2, 1, 2, 1, 2, 1, 3), (2, 1, 2, 1, 2, 1, 2, 1)),
    ]
    activations = [NONE] * len(shapes)
    if op_name == "Add":
        activations = [RELU, NONE, leaky_act(0.1), RELU6, NONE, clip_act(-0.5, 1.0), NONE]
    cases = []
    for (name, sa, sb), activation in zip(shapes, activations):
        a, b = randn(*sa, scale=2.0), randn(*sb, scale=2.0)
        y = run_onnx(onnx_type, [("a", a), ("b", b)])
        attributes = {}
        if op_name == "Add":
            attributes["activation"] = activation
            y = apply_activation(y, activation)
            if activation["type"] != "none":
                name += f" {activation['type']}"
        cases.append(case(name, op_name, attributes, [a, b], y))
    return cases


def concat_cases():
    cases = []
    for name, shapes, axis in (
        ("axis 0 two inputs", [(2, 3, 4), (1, 3, 4)], 0),
        ("last axis three inputs", [(2, 3, 1), (2, 3, 4), (2, 3, 2)], -1),
        ("rank 4 axis 3 NHWC channels", [(1, 2, 3, 2), (1, 2, 3, 5)], 3),
        ("rank 4 axis 1", [(2, 1, 3, 2), (2, 3, 3, 2)], 1),
        ("axis -2", [(3, 2, 2), (3, 1, 2), (3, 3, 2)], -2),
        ("single input", [(2, 5)], 1),
    ):
        xs = [randn(*s) for s in shapes]
        y = run_onnx("Concat", [(f"x{i}", x) for i, x in enumerate(xs)], {"axis": axis})
        cases.append(case(name, "Concat", {"axis": axis}, xs, y))
    return cases


def pad_cases():
    cases = []
    for name, shape, pads, value in (
        ("rank 2 asymmetric", (3, 4), [1, 2, 0, 3], 0.0),
        ("rank 4 NHWC spatial value -1.5", (1, 3, 4, 2), [0, 1, 2, 0, 0, 2, 0, 0], -1.5),
        ("rank 4 every axis", (1, 2, 2, 3), [1, 0, 1, 2, 0, 1, 1, 1], 0.25),
        ("rank 3 no padding", (2, 3, 4), [0, 0, 0, 0, 0, 0], 7.0),
        ("rank 1", (5,), [3, 1], 2.0),
    ):
        x = randn(*shape)
        y = run_onnx("Pad", [("x", x), ("pads", np.array(pads, dtype=np.int64)), ("value", f32(value))],
                     {"mode": "constant"}, constants=["pads", "value"])
        cases.append(case(name, "Pad", {"pads": pads, "value": value}, [x], y))
    return cases


def batchnorm_cases():
    cases = []
    for name, shape, epsilon in (("rank 4 NHWC", (2, 3, 4, 5), 1e-5), ("rank 2", (3, 6), 1e-3),
                                 ("rank 3 tiny variance", (2, 4, 3), 1e-5)):
        x = randn(*shape, scale=2.0)
        channels = shape[-1]
        scale, bias, mean = randn(channels), randn(channels), randn(channels)
        variance = (np.abs(randn(channels)) + np.float32(0.1)).astype(np.float32)
        if "tiny" in name:
            variance = np.full(channels, 1e-4, dtype=np.float32)
        # ONNX's channel axis is 1: move ours (the last) there and back.
        rank = len(shape)
        to_onnx = [0, rank - 1] + list(range(1, rank - 1))
        back = list(np.argsort(to_onnx))
        y = run_onnx("BatchNormalization",
                     [("x", np.ascontiguousarray(x.transpose(to_onnx))), ("scale", scale), ("bias", bias),
                      ("mean", mean), ("var", variance)], {"epsilon": epsilon})
        y = np.ascontiguousarray(y.transpose(back))
        cases.append(case(name, "BatchNormalization", {"epsilon": epsilon},
                          [x, scale, bias, mean, variance], y))
    return cases


# --------------------------------------------------------------------------- output

def short(value):
    """The shortest decimal that round-trips this float32 value, as a Python float."""
    return float(str(np.float32(value)))


def tensor_json(array):
    if array is None:
        return None
    array = np.asarray(array, dtype=np.float32)
    assert np.all(np.isfinite(array)), "goldens must be finite"
    return {"shape": list(array.shape), "data": [short(v) for v in array.reshape(-1)]}


def case(name, op, attributes, inputs, expected):
    return {"name": name, "op": op, "attributes": attributes,
            "inputs": [tensor_json(x) for x in inputs], "expected": tensor_json(expected)}


def main():
    ops = {
        "Conv2D": conv2d_cases(),
        "Dense": dense_cases(),
        "MaxPool2D": maxpool_cases(),
        "AveragePool2D": avgpool_cases(),
        "GlobalAveragePool": global_avgpool_cases(),
        **activation_cases(),
        "Softmax": softmax_cases(),
        "Flatten": flatten_cases(),
        "Reshape": reshape_cases(),
        "Transpose": transpose_cases(),
        "Add": binary_cases("Add", "Add"),
        "Mul": binary_cases("Mul", "Mul"),
        "Concat": concat_cases(),
        "Pad": pad_cases(),
        "BatchNormalization": batchnorm_cases(),
    }
    os.makedirs(OUT_DIR, exist_ok=True)
    for stale in os.listdir(OUT_DIR):
        if stale.endswith(".json"):
            os.remove(os.path.join(OUT_DIR, stale))
    total = 0
    for op, cases in ops.items():
        path = os.path.join(OUT_DIR, f"{op}.json")
        text = json.dumps({"op": op, "generator": "Tools/make-op-goldens.py", "seed": SEED, "cases": cases},
                          separators=(",", ":"))
        with open(path, "w") as f:
            f.write(text + "\n")
        total += len(text) + 1
        print(f"{op:20s} {len(cases):3d} cases {len(text):8d} bytes")
    print(f"total {total} bytes in {OUT_DIR}", file=sys.stderr)


if __name__ == "__main__":
    main()
