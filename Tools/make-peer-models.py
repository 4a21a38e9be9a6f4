#!/usr/bin/env python3
"""Builds the big benchmark models of Tools/bench-peers from Keras applications with random weights.

For each model NAME (mobilenetv2, resnet50) it writes into OUT_DIR:
  NAME.onnx             fp32, converted with tf2onnx (NHWC input, as Keras has it)
  NAME-int8.onnx        onnxruntime quantize_static, QDQ, per-channel weights
  NAME.tflite           fp32, tf.lite.TFLiteConverter of the same Keras model
  NAME-int8.tflite      full-integer quantization (float input and output, int8 inside)
  NAME-calibration.npy  the random calibration batch used for both int8 peers (and modelkit's)

The weights are random (weights=None) but batch-normalization statistics are randomized too,
so that folding them is exercised. Nothing is downloaded.

    make-peer-models.py OUT_DIR [--models mobilenetv2,resnet50] [--samples 16]
"""
import argparse
import contextlib
import io
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np
import tensorflow as tf

BUILDERS = {
    "mobilenetv2": lambda: tf.keras.applications.MobileNetV2(input_shape=(224, 224, 3), weights=None),
    "resnet50": lambda: tf.keras.applications.ResNet50(input_shape=(224, 224, 3), weights=None),
}


def randomize_batch_norms(model, rng):
    """Gives every BatchNormalization non-trivial statistics (the defaults make it an identity)."""
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            layer.set_weights([
                rng.uniform(0.5, 1.5, gamma.shape).astype(np.float32),
                rng.uniform(-0.2, 0.2, beta.shape).astype(np.float32),
                rng.uniform(-0.2, 0.2, mean.shape).astype(np.float32),
                rng.uniform(0.5, 2.0, variance.shape).astype(np.float32),
            ])


def export_onnx(model, path):
    import tf2onnx
    spec = (tf.TensorSpec((None, 224, 224, 3), tf.float32, name="input"),)
    with contextlib.redirect_stdout(io.StringIO()):
        tf2onnx.convert.from_keras(model, input_signature=spec, opset=17, output_path=path)


def quantize_onnx(source, destination, calibration):
    from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Reader(CalibrationDataReader):
        def __init__(self):
            import onnx
            self.name = onnx.load(source).graph.input[0].name
            self.items = iter([{self.name: sample[None]} for sample in calibration])

        def get_next(self):
            return next(self.items, None)

    import onnx
    prepared = destination + ".prep.onnx"
    quant_pre_process(source, prepared, skip_symbolic_shape=True)
    # Softmax stays float, as in modelkit's int8 models (onnxruntime would give it a fixed [0, 1]
    # range, and near-uniform random-weight probabilities all round to zero).
    softmax = [node.name for node in onnx.load(prepared).graph.node if node.op_type == "Softmax"]
    quantize_static(prepared, destination, Reader(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QInt8, weight_type=QuantType.QInt8, nodes_to_exclude=softmax)
    os.remove(prepared)


def convert_tflite(model, calibration, int8):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if int8:
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = lambda: ([sample[None]] for sample in calibration)
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return converter.convert()


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--models", default="mobilenetv2,resnet50")
    parser.add_argument("--samples", type=int, default=16)
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name in args.models.split(","):
        if name not in BUILDERS:
            sys.exit(f"make-peer-models: unknown model '{name}' (known: {', '.join(BUILDERS)})")
        rng = np.random.default_rng(20240601)
        tf.keras.utils.set_random_seed(1)
        model = BUILDERS[name]()
        randomize_batch_norms(model, rng)
        # Inputs in Keras applications' preprocessed range [-1, 1].
        calibration = rng.uniform(-1, 1, (args.samples, 224, 224, 3)).astype(np.float32)
        base = os.path.join(args.out, name)
        np.save(base + "-calibration.npy", calibration)
        export_onnx(model, base + ".onnx")
        quantize_onnx(base + ".onnx", base + "-int8.onnx", calibration)
        for int8, suffix in ((False, ""), (True, "-int8")):
            with open(f"{base}{suffix}.tflite", "wb") as file:
                file.write(convert_tflite(model, calibration, int8))
        print(f"make-peer-models: {name} written to {args.out}", file=sys.stderr)


if __name__ == "__main__":
    main()
