"""Mixed precision by hardware: the policy choice, what stays float32, and saved runs."""

import json
import os

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_ninception.layers.normalization import LocalResponseNormalization
from keras_ninception.models import build_googlenet, build_nin
from keras_ninception.training import precision
from keras_ninception.training.precision import (
    cpu_description,
    cpu_flags,
    cpu_summary,
    default_precision_policy,
    dtype_policy,
    resolve_precision,
    to_float32,
)
from tests.forward import forward


def fake_hardware(monkeypatch, gpus=(), flags=()):
    monkeypatch.setattr(precision, "gpu_compute_capabilities", lambda: list(gpus))
    monkeypatch.setattr(precision, "cpu_flags", lambda: set(flags))


@pytest.mark.parametrize(
    "gpus, flags, expected",
    [
        ([(8, 0)], ("avx512_bf16",), "mixed_float16"),  # a GPU wins over the CPU
        ([(7, 0), (9, 0)], (), "mixed_float16"),
        ([(6, 1)], ("avx512_bf16",), "float32"),  # no tensor cores: float16 is no faster
        ([(8, 0), (6, 1)], (), "float32"),  # the slowest GPU decides
        ([], ("avx512f", "avx512_bf16"), "mixed_bfloat16"),
        ([], ("amx_bf16", "amx_tile"), "mixed_bfloat16"),
        ([], ("avx512f", "avx512_vnni"), "float32"),  # AVX-512 without BF16
        ([], (), "float32"),
    ],
)
def test_default_policy_follows_the_hardware(monkeypatch, gpus, flags, expected):
    fake_hardware(monkeypatch, gpus, flags)
    assert default_precision_policy() == expected
    assert resolve_precision("auto") == expected
    assert resolve_precision() == expected


def test_forced_precision_ignores_the_hardware(monkeypatch):
    fake_hardware(monkeypatch, flags=("avx512_bf16",))
    for name in ("float32", "mixed_bfloat16", "mixed_float16"):
        assert resolve_precision(name) == name


@pytest.mark.parametrize("value", ["fp16", "bfloat16", "mixed_float32", None, 32])
def test_unknown_precision_is_refused(value):
    with pytest.raises(ValueError, match=rf"`precision` must be one of .*Received: precision={value!r}"):
        resolve_precision(value)


def test_cpu_flags_are_read_from_cpuinfo(tmp_path):
    path = tmp_path / "cpuinfo"
    path.write_text("processor\t: 0\nmodel name\t: Some CPU\nflags\t\t: fpu avx512f avx512_bf16\n\n")
    assert cpu_flags(str(path)) == {"fpu", "avx512f", "avx512_bf16"}
    assert cpu_flags(str(tmp_path / "missing")) == set()


@pytest.mark.parametrize(
    "flags, reported, bf16, amx",
    [
        ("fpu avx2 avx512f avx512_vnni avx512_bf16", ["avx512_bf16", "avx512_vnni", "avx512f"], True, False),
        ("avx512f avx512_bf16 amx_tile amx_bf16 amx_int8", ["amx_bf16", "amx_int8", "amx_tile", "avx512_bf16", "avx512f"], True, True),
        ("fpu avx2", [], False, False),
    ],
)
def test_the_cpu_a_benchmark_records_names_its_model_and_bf16_amx_flags(tmp_path, flags, reported, bf16, amx):
    path = tmp_path / "cpuinfo"
    path.write_text(f"processor\t: 0\nmodel name\t: Some CPU 9000\nflags\t\t: {flags}\n\n")
    cpu = cpu_description(str(path))
    assert (cpu["model"], cpu["flags"], cpu["bf16"], cpu["amx"]) == ("Some CPU 9000", reported, bf16, amx)
    assert cpu["cores"] >= 1
    line = cpu_summary(cpu)
    assert line.startswith(f"Some CPU 9000, {cpu['cores']} cores, flags ")
    assert (" ".join(reported) in line) if reported else ("none of avx512f/" in line)


def test_dtype_policy_is_restored_even_after_an_error():
    assert keras.config.dtype_policy().name == "float32"
    with pytest.raises(RuntimeError):
        with dtype_policy("mixed_bfloat16") as name:
            assert name == keras.config.dtype_policy().name == "mixed_bfloat16"
            raise RuntimeError("boom")
    assert keras.config.dtype_policy().name == "float32"


def test_mixed_bfloat16_googlenet_keeps_float32_weights_and_outputs():
    with dtype_policy("mixed_bfloat16"):
        model = build_googlenet(input_shape=(80, 80, 3), num_classes=5, variant="paper")
    assert keras.config.dtype_policy().name == "float32"  # the builder left nothing behind
    conv = model.get_layer("inception_3a_1x1")
    assert (conv.compute_dtype, conv.variable_dtype) == ("bfloat16", "float32")
    x = np.random.default_rng(0).uniform(-1, 1, (2, 80, 80, 3)).astype("float32")
    outputs = model(x)
    assert [o.dtype for o in outputs] == [tf.float32] * 3  # main, aux1, aux2 softmax
    np.testing.assert_allclose(np.sum(outputs[0], axis=-1), 1.0, atol=1e-5)


def test_local_response_normalization_computes_in_float32_under_mixed_bfloat16():
    # Values up to 30: the normalizer 1 + 2e-5 * sum(squares) is then up to ~1.09, which
    # bfloat16 (8 bits) rounds to 1.0 or 1.0078; computed in float32 it is exact.
    x = np.random.default_rng(0).uniform(0, 30, (2, 4, 4, 16)).astype("float32")
    x_bf16 = tf.cast(x, "bfloat16")
    expected = tf.nn.local_response_normalization(
        tf.cast(x_bf16, "float32"), depth_radius=2, bias=1.0, alpha=1e-4 / 5, beta=0.75
    )
    got = LocalResponseNormalization(dtype="mixed_bfloat16")(x)
    assert got.dtype == tf.bfloat16
    np.testing.assert_array_equal(tf.cast(got, "float32"), tf.cast(tf.cast(expected, "bfloat16"), "float32"))


@pytest.mark.slow
def test_a_mixed_bfloat16_run_saves_and_reloads_its_policy(tiny_nin_run):
    # NIN, 8 px, 1 epoch, batch 128, "auto" on a CPU with avx512_bf16 (tests/training/conftest.py).
    run_dir, result = tiny_nin_run
    config = json.loads(open(os.path.join(run_dir, "config.json")).read())
    assert config["train_config"]["precision"] == "mixed_bfloat16"  # resolved, not "auto"
    assert keras.config.dtype_policy().name == "float32"

    inference = keras.saving.load_model(os.path.join(run_dir, "inference.keras"))
    conv = inference.get_layer("mlpconv1_conv")
    assert (conv.dtype_policy.name, conv.kernel.dtype) == ("mixed_bfloat16", "float32")
    x = np.random.default_rng(0).uniform(-1, 1, (4, 8, 8, 1)).astype("float32")
    probabilities = forward(inference, x)
    assert probabilities.dtype == np.float32
    np.testing.assert_allclose(probabilities.sum(axis=-1), 1.0, atol=1e-5)
    # The reloaded model scores the test split as the run did.
    from keras_ninception import evaluate_run

    evaluated = evaluate_run(str(run_dir), split="test", verbose=0)
    assert evaluated["heads"]["main"]["accuracy"] == pytest.approx(
        result["metrics"]["test"]["heads"]["main"]["accuracy"], abs=1e-6
    )


def test_to_float32_copies_weights_into_float32_layers():
    with dtype_policy("mixed_bfloat16"):
        mixed = build_googlenet(input_shape=(80, 80, 3), num_classes=5, variant="paper")
    copy = to_float32(mixed)
    assert {layer.dtype_policy.name for layer in copy.layers} == {"float32"}
    assert copy.output_names == ["main", "aux1", "aux2"]
    # The same as a float32 build given the same weights, to the last bit.
    reference = build_googlenet(input_shape=(80, 80, 3), num_classes=5, variant="paper")
    reference.set_weights(mixed.get_weights())
    x = np.random.default_rng(0).uniform(-1, 1, (2, 80, 80, 3)).astype("float32")
    for got, expected in zip(forward(copy, x), forward(reference, x), strict=True):
        np.testing.assert_array_equal(got, expected)
    assert mixed.get_layer("inception_3a_1x1").compute_dtype == "bfloat16"  # the original is untouched


@pytest.mark.slow
def test_litert_needs_the_float32_copy_of_a_mixed_bfloat16_model(tmp_path):
    with dtype_policy("mixed_bfloat16"):
        mixed = build_nin(input_shape=(16, 16, 3), num_classes=4, batch_norm=True)
    mixed.export(str(tmp_path / "mixed"), format="tf_saved_model", verbose=False)
    with pytest.raises(Exception, match="Conv2D"):  # no bfloat16 convolution in LiteRT
        tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "mixed")).convert()
    copy = to_float32(mixed)
    copy.export(str(tmp_path / "float32"), format="tf_saved_model", verbose=False)
    interpreter = tf.lite.Interpreter(
        model_content=tf.lite.TFLiteConverter.from_saved_model(str(tmp_path / "float32")).convert()
    )
    interpreter.allocate_tensors()
    x = np.random.default_rng(0).uniform(-1, 1, (1, 16, 16, 3)).astype("float32")
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], x)
    interpreter.invoke()
    got = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    np.testing.assert_allclose(got, forward(copy, x), atol=1e-5)
