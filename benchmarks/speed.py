"""Speed benchmark: training, inference and input-pipeline images/s, FLOP/s use, and a peer.

Usage:
    python benchmarks/speed.py --data /data/cifar10-jpg --peer-python .venv-peer/bin/python
    python benchmarks/speed.py --quick            # a few steps of everything (a smoke run)

Measures in ONE process, side by side, with the cases interleaved over `--repeats` rounds
(round 1: case A, B, C, ...; round 2: A, B, C, ...) and reports the median of each case,
so a machine that gets busier or quieter during the run shifts every case alike:

- matmul peak: GFLOP/s of `tf.linalg.matmul` on two n x n matrices (n = 4096) in float32 and
  bfloat16, the ceiling the utilization figures are taken against;
- GoogLeNet (`variant="bn"`, aux heads, 224 x 224 x 3, 1000 classes, batch 32; other variants
  and sizes with `--googlenet-variant`, `--googlenet-size`, `--googlenet-batch`) and NIN (the
  training job's form: batch normalization, 32 x 32 x 3, 10 classes, batch 128), in float32
  and in the package's default mixed-precision policy (`resolve_precision("auto")`):
  - training images/s: `model.fit` over one cached in-memory random batch (SGD momentum 0.9,
    the `compile_model` recipe: a loss per head, weights 1 / 0.3 / 0.3), as `ninception
    train` runs it (`steps_per_execution` 1, no XLA), timed from the end of the first batch
    to the end of the last inside one `fit` call (a batch-end callback);
  - inference images/s of the inference model (`to_inference_model`: aux heads removed):
    `predict_on_batch` of the Keras model, the exported SavedModel (`Model.export`, its
    `serve` function) and, for float32, LiteRT (`tf.lite`, XNNPACK) converted from it;
- FLOP/s utilization = 2 x MACs/image x images/s x (3 for training, 1 for inference) /
  matmul peak of the same precision (its best round). MACs come from `models.profile.profile_model`
  (convolutions and dense layers; the training model with its aux heads). The factor 3
  for training is the usual estimate (the backward pass costs about twice the forward: one
  product for the input gradient and one for the weight gradient), not a measurement;
- input pipeline images/s: `load_dataset(--data)` train split as training reads it (JPEG
  decode, resize, shuffle, batch, augment `crop_flip`, scale, prefetch) with `cache=False`,
  and for GoogLeNet also with `augment="inception"` (`pipeline/googlenet_inception`: the
  random-resized crop of each decoded original, resized to 224, and a flip),
  so every batch decodes its files; at GoogLeNet's and NIN's image size and batch size;
  steady state: a new iterator each round, timed after the shuffle buffer is full;
- peer: `peer_torchvision.py` (torchvision's googlenet, channels_last + bfloat16 autocast,
  its best CPU configuration) in a subprocess of `--peer-python`, once per round, and the
  ratios our/peer;
- deploy runtimes (`--inference onnx,openvino,openvino_int8`, GoogLeNet only): our
  `ninception export` formats (`deploy.runtimes`: `uint8` images in, scaled inside) run in
  ONNX Runtime (float32, float32 policy only) and OpenVINO (`INFERENCE_PRECISION_HINT` f32
  under the float32 policy, bf16 under a bfloat16 one; the int8 export, NNCF-quantized on
  random images, under the default policy), beside the runtime peers (`--peer-runtimes`):
  torchvision's googlenet exported to ONNX once by `peer_torchvision.py --export-onnx` and
  run in this process by ONNX Runtime (float32) and OpenVINO (f32 and bf16). OpenVINO gets
  the latency hint and a static batch for ours and the peer's alike. `best_vs_best_peer`
  is our fastest GoogLeNet inference path over the fastest peer path (torchvision included);
  `best_float_vs_best_peer` leaves int8 out. `--no-train` runs only inference cases (no
  training, pipeline or matmul; the torchvision peer measures inference only).

`--ablations` adds the cases behind the defaults: XLA (`jit_compile=True`) and
`steps_per_execution` > 1 for both models' training, and, in each precision, training and
Keras inference with Keras' own `BatchNormalization` in place of the package's fused one
(`*_keras_bn`).

Writes `speed.json` (every round's value, medians, ratios, targets) and `speed.md` to
`--out-dir` (default `benchmarks/results`). This is a benchmark, not a test: figures depend
on the machine and its load; compare ratios taken in one run.
"""

import argparse
import importlib.util
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = os.path.dirname(os.path.abspath(__file__))
PEER_SCRIPT = os.path.join(HERE, "peer_torchvision.py")
INFERENCE_FORMATS = ("keras", "saved_model", "litert", "onnx", "openvino", "openvino_int8")
DEFAULT_INFERENCE = ("keras", "saved_model", "litert")
# Deploy formats measured for GoogLeNet only (their export takes tens of seconds each).
RUNTIME_FORMATS = ("onnx", "openvino", "openvino_int8")
PEER_RUNTIMES = ("onnxruntime", "openvino")
OPENVINO_PRECISION = {"float32": "f32", "mixed_bfloat16": "bf16", "mixed_float16": "f16"}
TRAIN_FLOP_FACTOR = 3  # forward + backward (about 2x the forward), an estimate
# Issue targets: ours / peer (training, inference of the exported model), pipeline / training.
TARGETS = {"train_vs_peer": 1.2, "infer_vs_peer": 1.0, "pipeline_vs_train": 5.0, "best_vs_best_peer": 1.0}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default=None, help="image folder ROOT/train/<class>/*.jpg for the pipeline")
    parser.add_argument(
        "--peer-python", default=None, help="a python with torch + torchvision (default: this one if it has torch)"
    )
    parser.add_argument("--no-peer", action="store_true", help="skip the torchvision peer")
    parser.add_argument("--peer-configs", default="bf16_nhwc", help="peer configurations (default: %(default)s)")
    parser.add_argument("--models", default="googlenet,nin")
    parser.add_argument("--precisions", default="float32,auto", help="'auto' is the package default (default: %(default)s)")
    parser.add_argument(
        "--inference", default=",".join(DEFAULT_INFERENCE), help=f"inference formats measured, of {list(INFERENCE_FORMATS)} (default: %(default)s)"
    )
    parser.add_argument(
        "--peer-runtimes", default="",
        help=f"torchvision googlenet via ONNX in these runtimes, of {list(PEER_RUNTIMES)} (needs --peer-python)",
    )
    parser.add_argument("--no-train", action="store_true", help="inference cases only (no training, pipeline, matmul)")
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default: %(default)s)")
    parser.add_argument("--steps", type=int, default=6, help="timed batches per measurement (default: %(default)s)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed batches before the first (default: %(default)s)")
    parser.add_argument("--googlenet-size", type=int, default=224)
    parser.add_argument(
        "--googlenet-variant", default="bn", choices=("bn", "paper", "cifar"),
        help="GoogLeNet's variant (default: %(default)s; cifar: 10 classes, e.g. with --googlenet-size 32)",
    )
    parser.add_argument("--googlenet-batch", type=int, default=32)
    parser.add_argument("--nin-size", type=int, default=32)
    parser.add_argument("--nin-batch", type=int, default=128)
    parser.add_argument("--matmul-size", type=int, default=4096)
    parser.add_argument("--pipeline-batches", type=int, default=20, help="timed batches of the pipeline")
    parser.add_argument("--ablations", action="store_true", help="also XLA, steps_per_execution and Keras-BN cases")
    parser.add_argument(
        "--cases", default=None, help="only the cases whose name contains one of these comma-separated strings"
    )
    parser.add_argument("--quick", action="store_true", help="1 round, 2 steps, small matmul: a smoke run")
    parser.add_argument("--out-dir", default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)
    if args.quick:
        args.repeats, args.steps, args.warmup = 1, 2, 1
        args.pipeline_batches = min(args.pipeline_batches, 3)
        args.matmul_size = min(args.matmul_size, 1024)
    args.models = [m for m in args.models.split(",") if m]
    args.inference = [f for f in args.inference.split(",") if f]
    for name in args.models:
        if name not in ("googlenet", "nin"):
            parser.error(f"--models: unknown model {name!r}")
    for name in args.inference:
        if name not in INFERENCE_FORMATS:
            parser.error(f"--inference: unknown format {name!r}")
    args.peer_runtimes = [r for r in args.peer_runtimes.split(",") if r]
    for name in args.peer_runtimes:
        if name not in PEER_RUNTIMES:
            parser.error(f"--peer-runtimes: unknown runtime {name!r}")
    if args.peer_python is None and not args.no_peer and importlib.util.find_spec("torch"):
        args.peer_python = sys.executable
    if args.no_peer:
        args.peer_python = None
    return args


def median(values):
    return statistics.median(values) if values else None


# ---------------------------------------------------------------------------------------------
# Cases: each `run()` returns {metric: value}; `setup` runs once, before round 1.


class Case:
    def __init__(self, name, setup, run):
        self.name, self._setup, self._run, self._state = name, setup, run, None

    def __call__(self):
        if self._state is None:
            start = time.perf_counter()
            self._state = self._setup() or {}
            print(f"  setup {self.name}: {time.perf_counter() - start:.1f} s", flush=True)
        return self._run(self._state)


def matmul_case(dtype_name, n, repeats=5):
    import tensorflow as tf

    def setup():
        a = tf.cast(tf.random.normal((n, n)), dtype_name)
        b = tf.cast(tf.random.normal((n, n)), dtype_name)
        f = tf.function(lambda a, b: tf.reduce_sum(tf.linalg.matmul(a, b)[:1, :1]))
        f(a, b).numpy()
        return {"f": f, "a": a, "b": b}

    def run(s):
        start = time.perf_counter()
        for _ in range(repeats):
            s["f"](s["a"], s["b"]).numpy()
        return {"gflops": 2 * n**3 * repeats / (time.perf_counter() - start) / 1e9}

    return Case(f"matmul/{dtype_name}", setup, run)


NUM_CLASSES = {"googlenet": 1000, "nin": 10}


def num_classes_of(model_name, variant="bn"):
    """The benchmark's classes: ImageNet's 1,000 for GoogLeNet, CIFAR-10's 10 for NIN and for
    GoogLeNet's `cifar` variant."""
    return 10 if variant == "cifar" else NUM_CLASSES[model_name]


def build_models(model_name, policy, size, batch, fused_batch_norm=None, variant="bn"):
    """Training model, inference model, a random batch and its labels; layers in `policy`.

    `fused_batch_norm`: batch normalization on TF's fused kernel (`use_fused_batch_normalization`,
    what `compile_model` and the package's loaders do), or Keras' own arithmetic (the ablation).
    None (default): as `compile_model` chooses, the fused kernel on the TensorFlow backend only.
    `variant`: GoogLeNet's (`"bn"`, default; `"cifar"` has 10 classes, as on CIFAR-10).
    """
    import keras
    import numpy as np

    from keras_ninception.layers import use_fused_batch_normalization
    from keras_ninception.models import build_googlenet, build_nin, to_inference_model
    from keras_ninception.training.precision import dtype_policy

    num_classes = num_classes_of(model_name, variant)
    with dtype_policy(policy):
        if model_name == "googlenet":
            model = build_googlenet(
                input_shape=(size, size, 3), num_classes=num_classes, variant=variant, aux_classifiers=True
            )
        else:
            model = build_nin(input_shape=(size, size, 3), num_classes=num_classes, batch_norm=True)
    rng = np.random.default_rng(0)
    x = rng.uniform(-1, 1, (batch, size, size, 3)).astype("float32")
    labels = rng.integers(0, num_classes, (batch,)).astype("int32")
    y = {name: labels for name in model.output_names} if len(model.output_names) > 1 else labels
    inference = to_inference_model(model) if len(model.output_names) > 1 else model
    if fused_batch_norm is None:
        fused_batch_norm = keras.backend.backend() == "tensorflow"
    if fused_batch_norm:
        use_fused_batch_normalization(model)  # the inference model shares the layers
    return model, inference, x, y


def batch_end_times():
    """A Keras callback whose `times` list gets `time.perf_counter()` at every training batch's end."""
    import keras

    times = keras.callbacks.LambdaCallback(on_train_batch_end=lambda batch, logs: times.times.append(time.perf_counter()))
    times.times = []
    return times


def train_case(name, build, steps, warmup, steps_per_execution=1, jit_compile=False, fused_batch_norm=None):
    """`model.fit` images/s over one cached batch; `build()` gives a fresh (model, inference, x, y).

    Timed inside one `fit` call, from the end of its first batch (or first execution of
    `steps_per_execution` batches) to the end of its last: `fit` on an endless `repeat()`
    dataset returns up to ~2.5 s after its last batch while the iterator's prefetch winds
    down, a pause of the benchmark's own input, not of training.
    """
    import tensorflow as tf

    from keras_ninception.training.compile import compile_model

    def setup():
        model, _, x, y = build()
        compile_model(
            model, optimizer="sgd", learning_rate=0.01,
            steps_per_execution=steps_per_execution, jit_compile=jit_compile,
            fused_batch_normalization=fused_batch_norm,
        )
        data = tf.data.Dataset.from_tensors((x, y)).repeat()
        model.fit(data, steps_per_epoch=max(warmup, 1) * steps_per_execution, epochs=1, verbose=0, shuffle=False)
        return {"model": model, "data": data, "batch": len(x)}

    def run(s):
        executions = max(1, steps // steps_per_execution)
        times = batch_end_times()
        s["model"].fit(
            s["data"], steps_per_epoch=(executions + 1) * steps_per_execution, epochs=1, verbose=0,
            shuffle=False, callbacks=[times],
        )
        seconds = times.times[-1] - times.times[0]
        return {"images_per_s": s["batch"] * executions * steps_per_execution / seconds}

    return Case(name, setup, run)


def infer_case(name, models, fmt, steps, warmup, workdir):
    import numpy as np
    import tensorflow as tf

    def setup():
        _, inference, x, _ = models()
        if fmt == "keras":
            call = lambda: inference.predict_on_batch(x)  # noqa: E731
        else:
            path = os.path.join(workdir, name.replace("/", "-"))
            inference.export(path, format="tf_saved_model", verbose=False)
            if fmt == "saved_model":
                loaded = tf.saved_model.load(path)  # kept alive: its functions use its variables
                signature = loaded.signatures["serving_default"]
                (input_name,) = signature.structured_input_signature[1]
                (output_name,) = signature.structured_outputs
                xt = tf.constant(x)
                call = lambda: signature(**{input_name: xt})[output_name].numpy()  # noqa: E731
            else:
                converter = tf.lite.TFLiteConverter.from_saved_model(path)
                interpreter = tf.lite.Interpreter(
                    model_content=converter.convert(), num_threads=os.cpu_count()
                )
                index = interpreter.get_input_details()[0]["index"]
                interpreter.resize_tensor_input(index, x.shape)
                interpreter.allocate_tensors()
                output = interpreter.get_output_details()[0]["index"]

                def call():
                    interpreter.set_tensor(index, x)
                    interpreter.invoke()
                    return interpreter.get_tensor(output)

        expected = np.asarray(inference.predict_on_batch(x), dtype="float32")
        got = np.asarray(call(), dtype="float32")
        for _ in range(max(warmup - 1, 0)):
            call()
        return {
            "call": call,
            "keep": locals().get("loaded"),  # the SavedModel object, alive while its function runs
            "batch": len(x),
            "max_abs_diff_vs_keras": float(np.abs(got - expected).max()),
        }

    def run(s):
        start = time.perf_counter()
        for _ in range(steps):
            s["call"]()
        return {"images_per_s": s["batch"] * steps / (time.perf_counter() - start)}

    case = Case(name, setup, run)
    case.extra = lambda: {"max_abs_diff_vs_keras": case._state and case._state.get("max_abs_diff_vs_keras")}
    return case


def compile_openvino(path, shape, precision):
    """An OpenVINO CPU model with a static input shape, the latency hint and a compute precision."""
    import openvino as ov

    core = ov.Core()
    model = core.read_model(path)
    model.reshape(list(shape))
    return core.compile_model(
        model, "CPU", {"PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision}
    )


def runtime_session(runtime, path, shape, precision):
    """A `call(x)` running the model file `path` in ONNX Runtime or OpenVINO on the CPU."""
    if runtime == "onnxruntime":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        input_name = session.get_inputs()[0].name
        return lambda x: session.run(None, {input_name: x})[0]
    request = compile_openvino(path, shape, precision).create_infer_request()
    return lambda x: request.infer({0: x})[0]


def runtime_infer_case(name, models, fmt, precision, steps, warmup, workdir):
    """Our `ninception export` formats (`deploy.runtimes`) in their runtimes: `uint8` in."""
    import numpy as np
    import tensorflow as tf

    def setup():
        from keras_ninception.deploy.quantize import to_uint8_pixels
        from keras_ninception.deploy.runtimes import export_onnx, export_openvino

        _, inference, x, _ = models()
        pixels = to_uint8_pixels(x, "channels_last")
        names = [str(i) for i in range(inference.outputs[0].shape[-1])]
        path = os.path.join(workdir, name.replace("/", "-"))
        if fmt == "onnx":
            export_onnx(inference, path, names)
            call = runtime_session("onnxruntime", os.path.join(path, "model.onnx"), pixels.shape, None)
        else:
            calibration = None
            if fmt == "openvino_int8":  # random weights: any images calibrate a speed case
                calibration = np.random.default_rng(1).integers(0, 256, (32, *pixels.shape[1:])).astype(np.uint8)
            export_openvino(inference, path, names, calibration_images=calibration)
            call = runtime_session("openvino", os.path.join(path, "model.xml"), pixels.shape, precision)
        expected = np.asarray(inference.predict_on_batch(tf.cast(pixels, tf.float32) / 127.5 - 1), "float32")
        got = np.asarray(call(pixels), "float32")
        for _ in range(max(warmup - 1, 0)):
            call(pixels)
        return {
            "call": lambda: call(pixels), "batch": len(x), "precision": precision,
            "max_abs_diff_vs_keras": float(np.abs(got - expected).max()),
            "top1_agreement_vs_keras": float((got.argmax(-1) == expected.argmax(-1)).mean()),
        }

    def run(s):
        start = time.perf_counter()
        for _ in range(steps):
            s["call"]()
        return {"images_per_s": s["batch"] * steps / (time.perf_counter() - start)}

    case = Case(name, setup, run)
    case.extra = lambda: {
        k: case._state.get(k) for k in ("max_abs_diff_vs_keras", "top1_agreement_vs_keras", "precision")
    } if case._state else None
    return case


def peer_runtime_case(python, runtime, precision, size, batch, steps, warmup, workdir):
    """torchvision's googlenet, exported to ONNX by `peer_torchvision.py`, in ONNX Runtime or OpenVINO."""
    import numpy as np

    def setup():
        path = os.path.join(workdir, "torchvision_googlenet.onnx")
        record = None
        if not os.path.exists(path):
            command = [python, PEER_SCRIPT, "--export-onnx", path, "--image-size", str(size)]
            done = subprocess.run(command, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                raise RuntimeError(f"peer ONNX export failed ({done.returncode}): {done.stderr.strip()[-500:]}")
            record = json.loads(done.stdout.strip().splitlines()[-1])
        x = np.random.default_rng(0).uniform(-1, 1, (batch, 3, size, size)).astype("float32")
        call = runtime_session(runtime, path, x.shape, precision)
        for _ in range(warmup):
            call(x)
        return {"call": lambda: call(x), "batch": batch, "record": record}

    def run(s):
        start = time.perf_counter()
        for _ in range(steps):
            s["call"]()
        return {"images_per_s": s["batch"] * steps / (time.perf_counter() - start)}

    suffix = "" if runtime == "onnxruntime" else f"_{precision}"
    return Case(f"peer/{runtime}{suffix}", setup, run)


def pipeline_case(name, data, size, batch, output_names, batches, augment=None):
    """Steady-state images/s of the train split; a fresh iterator each round (nothing prefetched).

    `augment`: None for the source's default (`crop_flip` for a folder), or a mode such as
    `"inception"` (the random-resized crop of the original image, then the resize to `size`).
    """
    from keras_ninception.data import load_dataset

    def setup():
        splits = load_dataset(
            data, image_size=size, batch_size=batch, output_names=output_names, cache=False, augment=augment
        )
        return {"train": splits.train.repeat(), "batch": batch}

    def run(s):
        iterator = iter(s["train"])
        start = time.perf_counter()
        next(iterator)  # fills the shuffle buffer (up to 10,000 images decoded)
        first = time.perf_counter() - start
        next(iterator)
        start = time.perf_counter()
        for _ in range(batches):
            next(iterator)
        seconds = time.perf_counter() - start
        del iterator
        return {"images_per_s": s["batch"] * batches / seconds, "first_batch_s": first}

    return Case(name, setup, run)


def peer_case(python, config, size, batch, steps, warmup, train=True):
    def setup():
        return {"ready": True}

    def run(s):
        command = [
            python, PEER_SCRIPT, "--configs", config, "--image-size", str(size),
            "--batch-size", str(batch), "--steps", str(steps), "--warmup", str(warmup),
        ] + ([] if train else ["--no-train"])
        done = subprocess.run(command, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"peer failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        record = json.loads(done.stdout.strip().splitlines()[-1])
        s["record"] = record
        values = {"infer_images_per_s": record["infer_images_per_s"]}
        if record["train_images_per_s"] is not None:
            values["train_images_per_s"] = record["train_images_per_s"]
        return values

    return Case(f"peer/{config}", setup, run)


# ---------------------------------------------------------------------------------------------


def machine_info():
    """The CPU (model, cores, bf16/AMX flags: `precision.cpu_description`) and the platform."""
    from keras_ninception.training.precision import cpu_description

    cpu = cpu_description()
    return {
        "cpu": cpu["model"],
        "cpu_count": cpu["cores"],
        "avx512f": "avx512f" in cpu["flags"],
        "bf16_flags": [f for f in cpu["flags"] if f in ("avx512_bf16", "amx_bf16")],
        "flags": cpu["flags"],
        "amx": cpu["amx"],
        "platform": platform.platform(),
    }


def main(argv=None):
    args = parse_args(argv)
    import keras
    import tensorflow as tf

    from keras_ninception.models.profile import profile_model
    from keras_ninception.training.precision import resolve_precision

    policies = list(dict.fromkeys(resolve_precision(p) for p in args.precisions.split(",") if p))
    default_policy = resolve_precision("auto")
    sizes = {"googlenet": (args.googlenet_size, args.googlenet_batch), "nin": (args.nin_size, args.nin_batch)}
    built = {}

    def models(model_name, policy, fresh=False, keras_batch_norm=False):
        """A function giving the (model, inference, x, y) of one policy: shared, or `fresh` each call.

        `keras_batch_norm`: batch normalization left on Keras' own arithmetic (no
        `use_fused_batch_normalization`, fresh each call), the ablation of the fused kernel.
        """

        def build(**options):
            return build_models(model_name, policy, *sizes[model_name], variant=args.googlenet_variant, **options)

        def get():
            if keras_batch_norm:
                return build(fused_batch_norm=False)
            if fresh:
                return build()
            if (model_name, policy) not in built:
                built[(model_name, policy)] = build()
            return built[(model_name, policy)]

        return get

    workdir = tempfile.mkdtemp(prefix="speed-")
    cases = [] if args.no_train else [matmul_case("float32", args.matmul_size), matmul_case("bfloat16", args.matmul_size)]
    for model_name in args.models:
        for policy in policies:
            get = models(model_name, policy)
            prefix = f"{model_name}/{policy}"
            if not args.no_train:
                cases.append(train_case(f"{prefix}/train", models(model_name, policy, fresh=True), args.steps, args.warmup))
            for fmt in args.inference:
                if fmt in ("litert", "onnx") and policy != "float32":
                    continue  # LiteRT and ONNX Runtime run float32 graphs; a bfloat16 graph is not their case
                if fmt in RUNTIME_FORMATS:
                    if model_name != "googlenet" or (fmt == "openvino_int8" and policy != default_policy):
                        continue
                    cases.append(
                        runtime_infer_case(
                            f"{prefix}/infer_{fmt}", get, fmt, OPENVINO_PRECISION[policy], args.steps, args.warmup, workdir
                        )
                    )
                    continue
                cases.append(infer_case(f"{prefix}/infer_{fmt}", get, fmt, args.steps, args.warmup, workdir))
        if args.ablations:
            get = models(model_name, default_policy, fresh=True)
            prefix = f"{model_name}/{default_policy}"
            cases.append(train_case(f"{prefix}/train_xla", get, args.steps, args.warmup, jit_compile=True))
            spe = 4 if model_name == "googlenet" else 8
            cases.append(
                train_case(f"{prefix}/train_spe{spe}", get, max(args.steps, spe), args.warmup, steps_per_execution=spe)
            )
            for policy in policies:
                keras_bn = models(model_name, policy, keras_batch_norm=True)
                cases.append(
                    train_case(f"{model_name}/{policy}/train_keras_bn", keras_bn, args.steps, args.warmup, fused_batch_norm=False)
                )
                cases.append(
                    infer_case(f"{model_name}/{policy}/infer_keras_keras_bn", keras_bn, "keras", args.steps, args.warmup, workdir)
                )
        if args.data and not args.no_train:
            output_names = ("main", "aux1", "aux2") if model_name == "googlenet" else None
            cases.append(
                pipeline_case(
                    f"pipeline/{model_name}", args.data, *sizes[model_name], output_names, args.pipeline_batches
                )
            )
            if model_name == "googlenet":  # GoogLeNet's own augmentation, at its size
                cases.append(
                    pipeline_case(
                        "pipeline/googlenet_inception", args.data, *sizes[model_name], output_names,
                        args.pipeline_batches, augment="inception",
                    )
                )
    if args.peer_python and "googlenet" in args.models:
        for config in args.peer_configs.split(","):
            cases.append(
                peer_case(args.peer_python, config, *sizes["googlenet"], args.steps, args.warmup, train=not args.no_train)
            )
        for runtime in args.peer_runtimes:
            for precision in ("f32",) if runtime == "onnxruntime" else ("f32", "bf16"):
                cases.append(
                    peer_runtime_case(args.peer_python, runtime, precision, *sizes["googlenet"], args.steps, args.warmup, workdir)
                )

    if args.cases:
        wanted = [part for part in args.cases.split(",") if part]
        cases = [case for case in cases if any(part in case.name for part in wanted)]
    load_before = os.getloadavg()
    runs = {case.name: {} for case in cases}
    errors = {}
    started = time.perf_counter()
    for round_index in range(args.repeats):
        print(f"round {round_index + 1}/{args.repeats}", flush=True)
        for case in cases:
            if case.name in errors:
                continue
            try:
                values = case()
            except Exception as error:  # a case that cannot run is reported, the rest go on
                errors[case.name] = f"{type(error).__name__}: {str(error).splitlines()[0][:300] if str(error) else ''}"
                print(f"  {case.name}: FAILED {errors[case.name]}", flush=True)
                continue
            for metric, value in values.items():
                runs[case.name].setdefault(metric, []).append(value)
            print(f"  {case.name}: " + ", ".join(f"{k} {v:.1f}" for k, v in values.items()), flush=True)
    load_after = os.getloadavg()

    medians = {name: {m: median(v) for m, v in metrics.items()} for name, metrics in runs.items() if metrics}
    # A peak is the best the machine did: the fastest round, not the median.
    peak = {
        "float32": max(runs.get("matmul/float32", {}).get("gflops", []), default=None),
        "mixed_bfloat16": max(runs.get("matmul/bfloat16", {}).get("gflops", []), default=None),
        "mixed_float16": None,
    }
    macs, utilization = {}, {}
    for model_name in args.models:
        model, inference, _, _ = models(model_name, policies[0])()
        macs[model_name] = {"train": profile_model(model).macs, "infer": profile_model(inference).macs}
        for policy in policies:
            for case_name, kind, factor in [("train", "train", TRAIN_FLOP_FACTOR)] + [
                (f"infer_{fmt}", "infer", 1) for fmt in args.inference
            ]:
                ips = medians.get(f"{model_name}/{policy}/{case_name}", {}).get("images_per_s")
                if ips is None or not peak.get(policy):
                    continue
                gflops = 2 * macs[model_name][kind] * factor * ips / 1e9
                utilization[f"{model_name}/{policy}/{case_name}"] = {
                    "gflops": gflops, "fraction_of_peak": gflops / peak[policy], "peak_gflops": peak[policy],
                }

    ratios = best_paths(medians, args.peer_configs.split(",")[0]) if args.peer_python else {}
    peer = medians.get(f"peer/{args.peer_configs.split(',')[0]}")
    ours = lambda case: medians.get(f"googlenet/{default_policy}/{case}", {}).get("images_per_s")  # noqa: E731
    if peer and "train_images_per_s" in peer:
        if ours("train"):
            ratios["train_vs_peer"] = ours("train") / peer["train_images_per_s"]
    if peer:
        for fmt in args.inference:
            if ours(f"infer_{fmt}"):
                ratios[f"infer_{fmt}_vs_peer"] = ours(f"infer_{fmt}") / peer["infer_images_per_s"]
        exported = [ours(f"infer_{f}") for f in ("saved_model", "litert") if ours(f"infer_{f}")]
        fp32_litert = medians.get("googlenet/float32/infer_litert", {}).get("images_per_s")
        best = max(exported + ([fp32_litert] if fp32_litert else []), default=None)
        if best:
            ratios["infer_vs_peer"] = best / peer["infer_images_per_s"]
    for model_name in args.models:
        pipe = medians.get(f"pipeline/{model_name}", {}).get("images_per_s")
        train_ips = medians.get(f"{model_name}/{default_policy}/train", {}).get("images_per_s")
        if pipe and train_ips:
            ratios[f"pipeline_vs_train_{model_name}"] = pipe / train_ips
        inception = medians.get(f"{'pipeline/' + model_name}_inception", {}).get("images_per_s")
        if inception and train_ips:
            ratios[f"pipeline_inception_vs_train_{model_name}"] = inception / train_ips
    if "pipeline_vs_train_googlenet" in ratios:
        ratios["pipeline_vs_train"] = min(v for k, v in ratios.items() if k.startswith("pipeline_vs_train_"))
    best = ratios.pop("best", {})
    targets = {
        k: {"target": t, "ratio": ratios.get(k), "met": None if k not in ratios else ratios[k] >= t}
        for k, t in TARGETS.items()
    }

    extras = {c.name: c.extra() for c in cases if hasattr(c, "extra") and c._state}
    report = {
        "benchmark": "speed",
        "quick": args.quick,
        "machine": machine_info(),
        "load_average_1min": {"before": load_before[0], "after": load_after[0]},
        "wall_seconds": time.perf_counter() - started,
        "versions": {
            "python": sys.version.split()[0], "tensorflow": tf.__version__, "keras": keras.__version__,
        },
        "settings": {
            "repeats": args.repeats, "steps": args.steps, "warmup": args.warmup,
            "googlenet": {"variant": args.googlenet_variant, "aux_classifiers": True, "image_size": args.googlenet_size,
                          "batch_size": args.googlenet_batch,
                          "num_classes": num_classes_of("googlenet", args.googlenet_variant)},
            "nin": {"batch_norm": True, "image_size": args.nin_size, "batch_size": args.nin_batch, "num_classes": 10},
            "optimizer": "sgd (momentum 0.9, Nesterov)", "policies": policies, "default_policy": default_policy,
            "matmul_size": args.matmul_size, "pipeline_batches": args.pipeline_batches, "data": args.data,
            "train_flop_factor": TRAIN_FLOP_FACTOR, "peer_python": args.peer_python,
        },
        "macs_per_image": macs,
        "runs": runs,
        "medians": medians,
        "peak_gflops": peak,
        "utilization": utilization,
        "ratios": ratios,
        "best_paths": best,
        "targets": targets,
        "inference_check": extras,
        "peer_record": next((c._state.get("record") for c in cases if c.name.startswith("peer/") and c._state), None),
        "peer_onnx_record": next(
            (c._state.get("record") for c in cases if c.name.startswith("peer/") and c._state and c._state.get("record") and "onnx" in c._state["record"]),
            None,
        ),
        "errors": errors,
    }
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "speed.json"), "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
        f.write("\n")
    with open(os.path.join(args.out_dir, "speed.md"), "w") as f:
        f.write(markdown(report))
    print(markdown(report))
    return report


def best_paths(medians, torch_config):
    """Our fastest GoogLeNet inference case over the fastest peer case, with and without int8.

    Returns `{"best_vs_best_peer", "best_float_vs_best_peer", "best": {names and images/s}}`
    (ratios only where both sides were measured).
    """
    ours = {
        name: m["images_per_s"] for name, m in medians.items()
        if name.startswith("googlenet/") and "/infer_" in name and m.get("images_per_s")
    }
    peers = {
        name: m.get("infer_images_per_s", m.get("images_per_s")) for name, m in medians.items()
        if name == f"peer/{torch_config}" or name.startswith(("peer/onnxruntime", "peer/openvino"))
    }
    peers = {name: value for name, value in peers.items() if value}
    if not ours or not peers:
        return {}
    best_peer = max(peers, key=peers.get)
    best = max(ours, key=ours.get)
    floats = {name: value for name, value in ours.items() if "int8" not in name}
    result = {
        "best_vs_best_peer": ours[best] / peers[best_peer],
        "best": {"ours": best, "ours_images_per_s": ours[best], "peer": best_peer, "peer_images_per_s": peers[best_peer]},
    }
    if floats:
        best_float = max(floats, key=floats.get)
        result["best_float_vs_best_peer"] = floats[best_float] / peers[best_peer]
        result["best"].update({"ours_float": best_float, "ours_float_images_per_s": floats[best_float]})
    return result


def _fmt(value, digits=1):
    return "-" if value is None else f"{value:.{digits}f}"


def markdown(report):
    s, med, util = report["settings"], report["medians"], report["utilization"]
    lines = [
        "# Speed",
        "",
        f"{report['machine']['cpu']} ({report['machine']['cpu_count']} CPUs, flags: "
        f"{', '.join(report['machine'].get('flags', report['machine']['bf16_flags'])) or 'none'}); "
        f"TensorFlow {report['versions']['tensorflow']}, "
        f"Keras {report['versions']['keras']}. Medians of {s['repeats']} interleaved rounds "
        f"({s['steps']} timed batches each){' - QUICK run, not a measurement' if report['quick'] else ''}; "
        f"load average {report['load_average_1min']['before']:.1f} before, "
        f"{report['load_average_1min']['after']:.1f} after. Default policy: `{s['default_policy']}`.",
        "",
        "Matmul peak (GFLOP/s, best round): float32 "
        f"{_fmt(report['peak_gflops']['float32'])}, bfloat16 {_fmt(report['peak_gflops']['mixed_bfloat16'])}.",
        "",
        "| case | images/s | GFLOP/s | of peak |",
        "|---|---:|---:|---:|",
    ]
    for name, metrics in med.items():
        if name.startswith(("matmul/", "peer/")):
            continue
        u = util.get(name, {})
        lines.append(
            f"| {name} | {_fmt(metrics.get('images_per_s'))} | {_fmt(u.get('gflops'))} | "
            f"{_fmt(100 * u['fraction_of_peak'] if u else None)}% |"
        )
    for name, metrics in med.items():
        if name.startswith("peer/") and "infer_images_per_s" in metrics:
            if "train_images_per_s" in metrics:
                lines.append(f"| {name} train | {_fmt(metrics['train_images_per_s'])} | | |")
            lines.append(f"| {name} infer | {_fmt(metrics['infer_images_per_s'])} | | |")
        elif name.startswith("peer/"):
            lines.append(f"| {name} infer | {_fmt(metrics.get('images_per_s'))} | | |")
    lines += ["", "| ratio | value | target |", "|---|---:|---:|"]
    for name, value in report["ratios"].items():
        target = report["targets"].get(name, {}).get("target")
        lines.append(f"| {name} | {value:.2f} | {'>= ' + str(target) if target else ''} |")
    lines += [
        "",
        f"GoogLeNet: variant `{s['googlenet'].get('variant', 'bn')}` with aux heads, {s['googlenet']['image_size']} px, batch "
        f"{s['googlenet']['batch_size']}; NIN with batch norm, {s['nin']['image_size']} px, batch "
        f"{s['nin']['batch_size']}. Training: `model.fit` on one cached batch, SGD. FLOP/s = 2 x MACs x "
        f"images/s, x{s['train_flop_factor']} for training (forward + backward, an estimate); peak of the "
        "same precision. Pipeline: the train split of `load_dataset(data, cache=False)`: decode, resize, "
        "shuffle, batch, augment, scale. Peer: torchvision googlenet, channels_last + bf16 autocast.",
    ]
    if report.get("best_paths"):
        b = report["best_paths"]
        lines += [
            "",
            f"Best path: ours `{b['ours']}` {b['ours_images_per_s']:.1f} images/s"
            + (f" (float: `{b['ours_float']}` {b['ours_float_images_per_s']:.1f})" if "ours_float" in b else "")
            + f"; best peer `{b['peer']}` {b['peer_images_per_s']:.1f} images/s.",
        ]
    checks = {k: v for k, v in report["inference_check"].items() if v and "top1_agreement_vs_keras" in v}
    if checks:
        lines += ["", "| export case | max abs diff vs Keras | top-1 agreement |", "|---|---:|---:|"]
        lines += [
            f"| {k} ({v['precision'] or 'float32'}) | {v['max_abs_diff_vs_keras']:.2e} | {v['top1_agreement_vs_keras']:.3f} |"
            for k, v in checks.items()
        ]
    if report["errors"]:
        lines += ["", "Failed cases: " + "; ".join(f"{k}: {v}" for k, v in report["errors"].items())]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
