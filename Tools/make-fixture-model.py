#!/usr/bin/env python3
"""Trains a small MLP on the real Fashion-MNIST with numpy and writes it as a modelkit model,
Fixtures/models/fashion-mlp.mkm, the model the quickstart runs until `modelkit train` lands.

The file is written by this script's own encoder, following Schemas/FORMAT.md and
Schemas/modelkit.proto: an implementation independent of the Swift writer, so the Swift
reader is checked against the spec rather than against itself.

    python3 -m venv .venv && .venv/bin/pip install numpy protobuf zstandard
    apt-get install protobuf-compiler dataset-fashion-mnist
    .venv/bin/python Tools/make-fixture-model.py

Deterministic: a fixed seed gives the same weights (and file) on every run.
"""
import gzip, importlib, os, struct, subprocess, sys, tempfile

import numpy as np
import zstandard

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = "/usr/share/datasets/fashion-mnist"
OUT = os.path.join(ROOT, "Fixtures", "models", "fashion-mlp.mkm")
LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
          "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
MAGIC = bytes([0x89, 0x4D, 0x4B, 0x4D, 0x0D, 0x0A, 0x1A, 0x0A])


def load_idx(path):
    with gzip.open(path) as f:
        data = f.read()
    rank = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(rank)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(dims)


def train(seed=0, epochs=5, batch=64, hidden=128):
    x = load_idx(f"{DATA}/train-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255
    y = load_idx(f"{DATA}/train-labels-idx1-ubyte.gz")
    xt = load_idx(f"{DATA}/t10k-images-idx3-ubyte.gz").reshape(-1, 784).astype(np.float32) / 255
    yt = load_idx(f"{DATA}/t10k-labels-idx1-ubyte.gz")
    rng = np.random.default_rng(seed)

    def glorot(o, i):
        limit = np.sqrt(6 / (i + o))
        return rng.uniform(-limit, limit, (o, i)).astype(np.float32)

    p = {"w1": glorot(hidden, 784), "b1": np.zeros(hidden, np.float32),
         "w2": glorot(10, hidden), "b2": np.zeros(10, np.float32)}
    m = {k: np.zeros_like(v) for k, v in p.items()}
    v = {k: np.zeros_like(w) for k, w in p.items()}
    step = 0
    for epoch in range(epochs):
        order = rng.permutation(len(x))
        for start in range(0, len(x), batch):
            b = order[start:start + batch]
            xb, yb = x[b], y[b]
            h = xb @ p["w1"].T + p["b1"]
            a = np.maximum(h, 0)
            z = a @ p["w2"].T + p["b2"]
            z -= z.max(1, keepdims=True)
            prob = np.exp(z)
            prob /= prob.sum(1, keepdims=True)
            g = prob.copy()
            g[np.arange(len(b)), yb] -= 1
            g /= len(b)
            dh = (g @ p["w2"]) * (h > 0)
            grads = {"w2": g.T @ a, "b2": g.sum(0), "w1": dh.T @ xb, "b1": dh.sum(0)}
            step += 1
            lr = 1e-3 * np.sqrt(1 - 0.999 ** step) / (1 - 0.9 ** step)
            for k in p:
                m[k] = 0.9 * m[k] + 0.1 * grads[k]
                v[k] = 0.999 * v[k] + 0.001 * grads[k] ** 2
                p[k] = (p[k] - lr * m[k] / (np.sqrt(v[k]) + 1e-7)).astype(np.float32)
        logits = np.maximum(xt @ p["w1"].T + p["b1"], 0) @ p["w2"].T + p["b2"]
        print(f"epoch {epoch + 1}: test accuracy {(logits.argmax(1) == yt).mean():.4f}")
    return p, float((logits.argmax(1) == yt).mean())


def schema_module():
    """Compiles Schemas/modelkit.proto for Python into a temporary directory."""
    out = tempfile.mkdtemp(prefix="modelkit-proto-")
    subprocess.run(["protoc", f"--proto_path={ROOT}/Schemas", f"--python_out={out}", "modelkit.proto"], check=True)
    sys.path.insert(0, out)
    return importlib.import_module("modelkit_pb2")


def write_model(p, accuracy):
    pb = schema_module()
    f = pb.ModelFile()
    f.kind = pb.KIND_MODEL
    g = f.graph
    inp = g.inputs.add()
    inp.name, inp.dtype = "image", pb.DATA_TYPE_FLOAT32
    inp.dims.extend([-1, 28, 28, 1])
    g.outputs.append("probabilities")

    def node(name, inputs, output):
        n = g.nodes.add()
        n.name = name
        n.inputs.extend(inputs)
        n.outputs.append(output)
        return n

    node("flatten", ["image"], "flat").flatten.axis = 1
    node("dense1", ["flat", "dense1.weight", "dense1.bias"], "hidden").dense.activation.kind = pb.ACTIVATION_KIND_RELU
    node("dense2", ["hidden", "dense2.weight", "dense2.bias"], "logits").dense.SetInParent()
    node("softmax", ["logits"], "probabilities").softmax.axis = -1
    for name, key in sorted([("dense1.bias", "b1"), ("dense1.weight", "w1"), ("dense2.bias", "b2"), ("dense2.weight", "w2")]):
        t = g.initializers.add()
        t.name, t.dtype = name, pb.DATA_TYPE_FLOAT32
        t.dims.extend(p[key].shape)
        t.data = p[key].astype("<f4").tobytes()

    md = f.metadata
    md.producer_name, md.producer_version = "modelkit-fixture (numpy)", np.__version__
    md.created_at = 1764374400  # fixed, so the file is reproducible
    md.description = f"784-128-10 MLP trained by Tools/make-fixture-model.py; test accuracy {accuracy:.4f}"
    md.labels.extend(LABELS)
    md.normalization.pixel_scale = 1 / 255
    md.normalization.mean.append(0)
    md.normalization.std.append(1)

    payload = f.SerializeToString(deterministic=True)
    frame = zstandard.ZstdCompressor(level=19, write_checksum=True, write_content_size=True).compress(payload)
    header = MAGIC + struct.pack("<HHIQ", 1, 0, 0, len(payload))
    tmp = OUT + ".tmp"
    with open(tmp, "wb") as out:
        out.write(header + frame)
        out.flush()
        os.fsync(out.fileno())
    os.replace(tmp, OUT)
    print(f"wrote {OUT}: {len(header) + len(frame)} bytes (payload {len(payload)})")


if __name__ == "__main__":
    params, acc = train()
    write_model(params, acc)
