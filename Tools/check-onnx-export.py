#!/usr/bin/env python3
"""Checks `modelkit export --format onnx` against onnx and onnxruntime.

For each model: export it to ONNX with the modelkit binary, run onnx.checker.check_model
(full check, with shape inference), then run the exported file in onnxruntime and compare
its outputs with an independent reference on the same input:
  * .mkm fixtures: `modelkit run` on the original model (NHWC input, saved with --output);
  * ONNX fixtures (imported, optimized, exported again): onnxruntime on the original file.

Usage: Tools/check-onnx-export.py [path/to/modelkit]
Needs numpy, onnx and onnxruntime (e.g. /work/main/.venv/bin/python Tools/check-onnx-export.py).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime as ort

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TOLERANCE = 1e-4  # absolute, on outputs of magnitude ~1


def modelkit(binary, *args):
    result = subprocess.run([binary, *args], capture_output=True, text=True)
    if result.returncode != 0:
        raise SystemExit(f"modelkit {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


def input_array(model, rng, batch=2):
    (graph_input,) = model.graph.input
    dims = [d.dim_value if d.HasField("dim_value") else batch for d in graph_input.type.tensor_type.shape.dim]
    return graph_input.name, rng.uniform(-1, 1, size=dims).astype(np.float32)


def check(binary, source, work):
    name = os.path.basename(source)
    exported = os.path.join(work, name.rsplit(".", 1)[0] + ".exported.onnx")
    modelkit(binary, "export", source, "-o", exported)
    model = onnx.load(exported)
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version == 8 and model.opset_import[0].version == 17, "expected IR 8, opset 17"
    rng = np.random.default_rng(1234)
    input_name, x = input_array(model, rng)
    session = ort.InferenceSession(exported, providers=["CPUExecutionProvider"])
    got = dict(zip([o.name for o in session.get_outputs()], session.run(None, {input_name: x})))

    if source.endswith(".onnx"):
        original = ort.InferenceSession(source, providers=["CPUExecutionProvider"])
        (original_input,) = original.get_inputs()
        expected = dict(zip([o.name for o in original.get_outputs()], original.run(None, {original_input.name: x})))
    else:
        # modelkit takes the NHWC form of a 4-D input.
        nhwc = x.transpose(0, 2, 3, 1) if x.ndim == 4 else x
        npy_in, npy_out = os.path.join(work, "x.npy"), os.path.join(work, "y.npy")
        np.save(npy_in, np.ascontiguousarray(nhwc))
        modelkit(binary, "run", source, "--input", npy_in, "--output", npy_out)
        (only,) = got.keys()
        expected = {only: np.load(npy_out)}

    worst = 0.0
    for key, value in expected.items():
        assert key in got, f"{name}: output {key} missing from the export"
        assert got[key].shape == value.shape, f"{name}: {key} shape {got[key].shape} != {value.shape}"
        worst = max(worst, float(np.max(np.abs(got[key] - value))))
    status = "ok" if worst <= TOLERANCE else "FAILED"
    print(f"{status:6} {name:24} nodes {len(model.graph.node):3}  outputs {', '.join(got)}  max |diff| {worst:.3g}")
    return worst <= TOLERANCE


def main():
    binary = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, ".build/release/modelkit")
    sources = [os.path.join(ROOT, "Fixtures/models", n) for n in ("fashion-mlp.mkm", "tiny-cnn.mkm")]
    sources += [os.path.join(ROOT, "Fixtures/onnx", n)
                for n in ("lenet.onnx", "mixed_ops.onnx", "mobilenet_block.onnx", "resnet_small.onnx")]
    with tempfile.TemporaryDirectory() as work:
        results = [check(binary, source, work) for source in sources]
    if not all(results):
        raise SystemExit("some exports differ from their reference")
    print("all exports pass onnx.checker and match onnxruntime")


if __name__ == "__main__":
    main()
