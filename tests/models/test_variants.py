"""GoogLeNet variants, feature endpoints and the cost profile against published numbers."""

import numpy as np
import pytest

from keras_ninception import build_feature_extractor, build_googlenet, build_nin, feature_endpoints
from keras_ninception.models.profile import gap_savings, inception_bottleneck_savings, profile_model


def trainable(model):
    return int(sum(np.prod(w.shape) for w in model.trainable_weights))


def test_bn_variant_has_torchvisions_parameter_count():
    model = build_googlenet(variant="bn", aux_classifiers=False)
    # torchvision counts parameters(), not BN running statistics (buffers): 7,280 BN
    # channels × 2 statistics are the difference to Keras' count_params().
    assert trainable(model) == 6_624_904
    assert model.count_params() == 6_624_904 + 2 * 7_280


def test_bn_variant_topology():
    model = build_googlenet(variant="bn")
    conv = model.get_layer("inception_3a_5x5")
    assert conv.kernel_size == (3, 3) and conv.use_bias is False  # the checkpoints' "5×5"
    assert model.get_layer("inception_3a_5x5_bn").epsilon == 1e-3
    assert model.get_layer("pool4_2x2_s2").pool_size == (2, 2)
    assert model.get_layer("pool4_2x2_s2").output.shape[1:] == (7, 7, 832)
    assert model.get_layer("aux1_ave_pool").output.shape[1:] == (4, 4, 512)
    assert not any("norm" in layer.name for layer in model.layers)


def test_paper_variant_has_lrn_after_pool1_and_conv2_with_a_switch():
    names = [layer.name for layer in build_googlenet().layers]
    assert names.index("pool1_norm1") == names.index("pool1_3x3_s2") + 1
    assert names.index("conv2_norm2") == names.index("conv2_3x3") + 1
    without = [layer.name for layer in build_googlenet(local_response_normalization=False).layers]
    assert "pool1_norm1" not in without and "conv2_norm2" not in without


@pytest.mark.parametrize(
    "model, macs",
    [
        (lambda: build_googlenet(aux_classifiers=False), 1.583e9),
        (lambda: build_googlenet(variant="bn", aux_classifiers=False), 1.498e9),
        (lambda: build_nin(), 222.97e6),
    ],
)
def test_macs_within_one_percent_of_published(model, macs):
    assert profile_model(model()).macs == pytest.approx(macs, rel=0.01)


def test_profile_rows_by_hand():
    profile = profile_model(build_nin())
    rows = {r.name: r for r in profile.layers}
    assert rows["mlpconv1_conv"].macs == 32 * 32 * 192 * (5 * 5 * 3)
    assert rows["mlpconv1_cccp1"].macs == 32 * 32 * 160 * 192
    assert rows["pool1"].macs == 0
    assert rows["mlpconv1_conv"].activation_bytes == 32 * 32 * 192 * 4
    assert profile.params == 966_986 and profile.macs == sum(r.macs for r in profile.layers)


def test_the_two_claims_as_numbers():
    bottleneck = inception_bottleneck_savings()
    assert bottleneck["naive"]["macs"] == 28 * 28 * 192 * (64 + 9 * 128 + 25 * 32)
    assert bottleneck["bottleneck"]["macs"] == 28 * 28 * (192 * (64 + 96 + 16 + 32) + 9 * 96 * 128 + 25 * 16 * 32)
    assert bottleneck["mac_ratio"] == pytest.approx(2.37, abs=0.01)
    googlenet = gap_savings(build_googlenet())
    assert googlenet == {"feature_map": (7, 7, 1024), "gap_head_params": 1_025_000,
                         "fc_head_params": 50_177_000, "ratio": pytest.approx(48.95, abs=0.01)}
    nin = gap_savings(build_nin())
    assert (nin["gap_head_params"], nin["fc_head_params"]) == (1_930, 8 * 8 * 192 * 10 + 10)


def test_feature_endpoints_of_both_families():
    googlenet = build_googlenet()
    assert list(feature_endpoints(googlenet)) == ["stem"] + [
        f"inception_{s}" for s in ("3a", "3b", "4a", "4b", "4c", "4d", "4e", "5a", "5b")
    ]
    features = build_feature_extractor(googlenet, final_endpoint="inception_4a")
    assert {k: v.shape[1:] for k, v in features.output.items()} == {
        "stem": (28, 28, 192), "inception_3a": (28, 28, 256), "inception_3b": (28, 28, 480),
        "inception_4a": (14, 14, 512),
    }
    nin = build_feature_extractor(build_nin(), endpoints=["mlpconv2"])
    assert nin.output["mlpconv2"].shape[1:] == (16, 16, 192)
    with pytest.raises(ValueError, match="Received: endpoints=\\['inception_9z'\\]"):
        build_feature_extractor(googlenet, endpoints=["inception_9z"])


def test_min_input_size_of_bn_variant():
    from keras_ninception import min_input_size

    assert min_input_size("bn") == 63
    build_googlenet(variant="bn", input_shape=(63, 63, 3), num_classes=5)
    with pytest.raises(ValueError, match="at least 63×63"):
        build_googlenet(variant="bn", input_shape=(62, 62, 3), num_classes=5)


def test_slim_variant_is_tf_slims_inception_v1():
    model = build_googlenet(variant="slim", aux_classifiers=False)
    # No BN gamma: 7,280 fewer parameters than "bn" (6,639,464).
    assert model.count_params() == 6_632_184 and trainable(model) == 6_617_624
    assert model.get_layer("conv1_7x7_s2").padding == "same" and "conv1_7x7_s2_pad" not in [l.name for l in model.layers]
    assert model.get_layer("inception_3a_5x5_bn").scale is False and model.get_layer("inception_3a_5x5_bn").epsilon == 1e-3
    assert model.get_layer("pool1_3x3_s2").padding == "same" and model.get_layer("pool4_2x2_s2").padding == "same"
    assert profile_model(model).macs == 1_498_376_192  # the same convolutions as "bn" at 224 px
    # TF SAME pools at odd sides: 99 → 50 → 25 → 13 → 7 → 4 (ceil mode would give 12 after 25).
    small = build_googlenet(variant="slim", input_shape=(99, 99, 3), aux_classifiers=False)
    sides = [small.get_layer(n).output.shape[1] for n in ("conv1_7x7_s2", "pool1_3x3_s2", "pool2_3x3_s2", "pool3_3x3_s2", "pool4_2x2_s2")]
    assert sides == [50, 25, 13, 7, 4]
