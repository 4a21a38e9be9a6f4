#!/usr/bin/env python3
"""Writes Fixtures/onnx/keras_cnn.onnx — the reference CNN built in Keras (random weights from a
fixed seed) and converted by tf2onnx — with onnxruntime's outputs on two random inputs in
keras_cnn.json. tf2onnx keeps Keras's channels-last input, so this fixture checks that the
importer takes such an input as NHWC.

    .venv/bin/pip install tensorflow-cpu tf2onnx onnxruntime
    .venv/bin/python Tools/make-keras-onnx-fixture.py
"""
import json, os
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
import numpy as np
import onnxruntime as ort
import tensorflow as tf
import tf2onnx

ROOT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "Fixtures", "onnx")
tf.keras.utils.set_random_seed(7)
L = tf.keras.layers
model = tf.keras.Sequential([
    tf.keras.Input((28, 28, 1), name="image"),
    L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(2),
    L.Conv2D(64, 3, activation="relu"), L.MaxPooling2D(2),
    L.Conv2D(64, 3, activation="relu"), L.Flatten(),
    L.Dense(64, activation="relu"), L.Dense(10, activation="softmax")])
spec = (tf.TensorSpec((None, 28, 28, 1), tf.float32, name="image"),)


@tf.function(input_signature=spec)
def serve(image):
    return {"probabilities": model(image)}


path = os.path.join(ROOT, "keras_cnn.onnx")
# Keras 3 models go through a tf.function: tf2onnx's from_keras does not follow Keras 3 yet.
tf2onnx.convert.from_function(serve, input_signature=spec, opset=17, output_path=path)
x = np.random.default_rng(11).uniform(0, 1, (2, 28, 28, 1)).astype(np.float32)
session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
names = [o.name for o in session.get_outputs()]
results = session.run(names, {"image": x})
record = {
    "model": "keras_cnn.onnx", "input_name": "image", "input_shape": list(x.shape),
    "input": [float(v) for v in x.ravel()],
    "outputs": {n: {"shape": list(r.shape), "data": [float(v) for v in r.ravel()]} for n, r in zip(names, results)},
}
with open(os.path.join(ROOT, "keras_cnn.json"), "w") as f:
    json.dump(record, f)
print(f"keras_cnn: {os.path.getsize(path)} bytes, outputs {names}")
