"""Mixed precision chosen by hardware: bfloat16 on CPUs that have it, float16 on GPUs.

Keras mixed precision (`keras.mixed_precision`) computes in 16 bits and keeps the weights in
float32. Which 16-bit type pays off depends on the hardware:

- a GPU of compute capability 7.0 or more (tensor cores): `"mixed_float16"`; `Model.compile`
  then wraps the optimizer in a `keras.optimizers.LossScaleOptimizer` by itself (float16
  gradients underflow without loss scaling);
- a CPU with bfloat16 instructions (`avx512_bf16`, or AMX `amx_bf16`): `"mixed_bfloat16"`
  (bfloat16 has float32's exponent range, so no loss scaling);
- anything else: `"float32"` (16-bit compute would be emulated, slower than float32).

What stays in float32 under a mixed policy: the weights (and the optimizer's update), the
model inputs (cast to the compute dtype by the first layer), every softmax output (the
`main`, `aux1`, `aux2` activations are float32 layers, see `apply_classifier`), so the losses
and metrics see float32 probabilities; batch normalization and local response normalization
compute in float32 internally.

The policy is applied as Keras' global dtype policy while the model is built
(`dtype_policy(name)`), so the builders stay pure: each layer records the policy in its
config, a saved `.keras` file reloads with the same policy, and the global policy is restored
afterwards.
"""

import contextlib

import keras
import tensorflow as tf

from keras_ninception.checks import check_choice
from keras_ninception.models.common import copy_model
from keras_ninception.options import PRECISIONS  # noqa: F401 (re-exported)

# `/proc/cpuinfo` flags of CPUs with native bfloat16 matrix arithmetic (AVX512-BF16, AMX).
BF16_CPU_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})
# Tensor cores (Volta and later); older GPUs compute float16 no faster than float32.
MIN_FLOAT16_COMPUTE_CAPABILITY = (7, 0)


def cpu_flags(path="/proc/cpuinfo"):
    """The CPU feature flags the Linux kernel reports, e.g. `{"avx512f", "avx512_bf16", ...}`.

    Returns:
        A set of strings; empty where `path` cannot be read (not Linux).
    """
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.partition(":")[2].split())
    except OSError:
        pass
    return set()


# The flags a benchmark records beside its figures: what decides bfloat16 and int8 speed.
REPORTED_CPU_FLAGS = ("avx512f", "avx512_vnni", "avx512_bf16", "avx512_fp16", "amx_tile", "amx_bf16", "amx_int8")


def cpu_description(path="/proc/cpuinfo"):
    """The CPU as every benchmark records it beside its figures.

    Speed differs between these machines' CPUs (some have AMX, some only AVX512-BF16), so a
    figure without its CPU cannot be compared.

    Returns:
        A dict: `"model"` (str, the first `model name` of `path`, else `platform.processor()`,
        else `"unknown"`), `"cores"` (int, `os.cpu_count()`), `"flags"` (the sorted
        `REPORTED_CPU_FLAGS` the CPU has), `"bf16"` (bool: `avx512_bf16` or `amx_bf16`, what
        `default_policy` reads) and `"amx"` (bool: `amx_bf16`).
    """
    import os
    import platform

    model = ""
    try:
        with open(path) as f:
            model = next((line.partition(":")[2].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    flags = cpu_flags(path)
    return {
        "model": model or platform.processor() or "unknown",
        "cores": os.cpu_count(),
        "flags": sorted(flags.intersection(REPORTED_CPU_FLAGS)),
        "bf16": bool(flags & BF16_CPU_FLAGS),
        "amx": "amx_bf16" in flags,
    }


def cpu_summary(description=None):
    """One line for a report: `"AMD EPYC, 2 cores, flags avx512_bf16 avx512_vnni avx512f"`."""
    d = description or cpu_description()
    return f"{d['model']}, {d['cores']} cores, flags {' '.join(d['flags']) or 'none of ' + '/'.join(REPORTED_CPU_FLAGS)}"


def gpu_compute_capabilities():
    """`(major, minor)` compute capability of each GPU TensorFlow sees (`(0, 0)` if unknown)."""
    capabilities = []
    for gpu in tf.config.list_physical_devices("GPU"):
        details = tf.config.experimental.get_device_details(gpu)
        capabilities.append(tuple(details.get("compute_capability") or (0, 0)))
    return capabilities


def default_precision_policy():
    """The fastest safe Keras dtype policy on this machine.

    Returns:
        `"mixed_float16"` when TensorFlow sees a GPU and every GPU has compute capability
        >= 7.0 (an older GPU gives `"float32"`); else `"mixed_bfloat16"` when the CPU has
        `avx512_bf16` or `amx_bf16` (`cpu_flags`); else `"float32"`.
    """
    capabilities = gpu_compute_capabilities()
    if capabilities:
        if min(capabilities) >= MIN_FLOAT16_COMPUTE_CAPABILITY:
            return "mixed_float16"
        return "float32"
    if cpu_flags() & BF16_CPU_FLAGS:
        return "mixed_bfloat16"
    return "float32"


def resolve_precision(precision="auto"):
    """The Keras dtype policy name for a `precision` setting.

    Args:
        precision: `"auto"` (default: `default_precision_policy()`), or a policy name to
            force: `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`.

    Returns:
        `"float32"`, `"mixed_bfloat16"` or `"mixed_float16"`.

    Raises:
        ValueError: `precision` is not one of `PRECISIONS`.
    """
    check_choice("precision", precision, PRECISIONS)
    return default_precision_policy() if precision == "auto" else precision


@contextlib.contextmanager
def dtype_policy(name):
    """Sets Keras' global dtype policy to `name` inside the block, then restores the previous one.

    Layers created in the block (a model built by a builder) keep `name` as their policy.

    Args:
        name: a Keras dtype policy name (`"float32"`, `"mixed_bfloat16"`, ...), or a
            `precision` setting such as `"auto"` (resolved with `resolve_precision`).

    Raises:
        ValueError: an unknown name.
    """
    name = resolve_precision(name)
    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield name
    finally:
        keras.config.set_dtype_policy(previous)


def to_float32(model):
    """A float32 copy of a model built under a mixed policy, with the same weights.

    Mixed-precision layers keep float32 weights, so the copy computes what the model
    computes, in float32. Use it where 16-bit compute cannot go: LiteRT (`tf.lite`) has no
    bfloat16 convolution, and its converter refuses a `mixed_bfloat16` model.

    Args:
        model: a functional `keras.Model` (any policy; a float32 model gives an equal copy).

    Returns:
        A new `keras.Model`, every layer `"float32"`, same names, outputs and weights.
    """

    def clone(layer):
        config = layer.get_config()
        config["dtype"] = "float32"
        return layer.__class__.from_config(config)

    return copy_model(model, clone)
