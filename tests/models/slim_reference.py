"""A synthetic TF-slim inception_v1 checkpoint and an independent `tf.nn` forward pass of it.

Written from TF-slim's `nets/inception_v1.py` (not from the package's mapping), so the tests
compare two implementations: the checkpoint's 230 tensors in slim's naming with random values
(BatchNorm statistics far from 0 / 1), and slim's semantics in plain `tf.nn` ops: TF `SAME`
padding for every convolution and pool, batch normalization without gamma and epsilon 1e-3,
no conv biases, `AvgPool_0a_7x7` (VALID) at 224 px or a global mean elsewhere, and the
1001-class 1×1 conv classifier whose class 0 ("background") is dropped for 1000 outputs.
"""

import tarfile

import numpy as np
import tensorflow as tf

SCOPE = "InceptionV1"
# (scope, #1×1, #3×3 reduce, #3×3, #5×5 reduce, #5×5 (a 3×3 conv in slim), pool proj)
MIXED = (
    ("Mixed_3b", 64, 96, 128, 16, 32, 32),
    ("Mixed_3c", 128, 128, 192, 32, 96, 64),
    ("Mixed_4b", 192, 96, 208, 16, 48, 64),
    ("Mixed_4c", 160, 112, 224, 24, 64, 64),
    ("Mixed_4d", 128, 128, 256, 24, 64, 64),
    ("Mixed_4e", 112, 144, 288, 32, 64, 64),
    ("Mixed_4f", 256, 160, 320, 32, 128, 128),
    ("Mixed_5b", 256, 160, 320, 32, 128, 128),
    ("Mixed_5c", 384, 192, 384, 48, 128, 128),
)


def branch_convs(mixed, in_channels, f1, f3r, f3, f5r, f5, fp):
    """(name, kernel, in, out) of one Mixed block's six convolutions, slim's names."""
    second_5x5 = "Conv2d_0a_3x3" if mixed == "Mixed_5b" else "Conv2d_0b_3x3"  # slim's quirk
    return [
        (f"{SCOPE}/{mixed}/Branch_0/Conv2d_0a_1x1", 1, in_channels, f1),
        (f"{SCOPE}/{mixed}/Branch_1/Conv2d_0a_1x1", 1, in_channels, f3r),
        (f"{SCOPE}/{mixed}/Branch_1/Conv2d_0b_3x3", 3, f3r, f3),
        (f"{SCOPE}/{mixed}/Branch_2/Conv2d_0a_1x1", 1, in_channels, f5r),
        (f"{SCOPE}/{mixed}/Branch_2/{second_5x5}", 3, f5r, f5),
        (f"{SCOPE}/{mixed}/Branch_3/Conv2d_0b_1x1", 1, in_channels, fp),
    ]


def conv_specs():
    specs = [
        (f"{SCOPE}/Conv2d_1a_7x7", 7, 3, 64),
        (f"{SCOPE}/Conv2d_2b_1x1", 1, 64, 64),
        (f"{SCOPE}/Conv2d_2c_3x3", 3, 64, 192),
    ]
    channels = 192
    for mixed, *filters in MIXED:
        specs += branch_convs(mixed, channels, *filters)
        channels = filters[0] + filters[2] + filters[4] + filters[5]
    return specs


def synthetic_tensors(seed=0):
    """`{name: float32 array}`: all 230 tensors with random values, BN statistics not 0 / 1."""
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, k, cin, cout in conv_specs():
        tensors[f"{name}/weights"] = rng.normal(0, np.sqrt(2.0 / (k * k * cin)), (k, k, cin, cout))
        tensors[f"{name}/BatchNorm/beta"] = rng.normal(0.0, 0.2, cout)
        tensors[f"{name}/BatchNorm/moving_mean"] = rng.normal(0.3, 0.2, cout)
        tensors[f"{name}/BatchNorm/moving_variance"] = rng.uniform(0.5, 2.0, cout)
    tensors[f"{SCOPE}/Logits/Conv2d_0c_1x1/weights"] = rng.normal(0, 0.05, (1, 1, 1024, 1001))
    tensors[f"{SCOPE}/Logits/Conv2d_0c_1x1/biases"] = rng.normal(0, 0.5, 1001)
    return {k: v.astype(np.float32) for k, v in tensors.items()}


def write_checkpoint(tensors, path, version="V1"):
    """Writes `tensors` under their exact names with `tf.compat.v1.train.Saver`.

    V1 (a single file, like TF-slim's 2016 `inception_v1.ckpt`) or V2 (`path.index` and
    `path.data-*`). Returns `path`.
    """
    graph = tf.Graph()
    with graph.as_default():
        variables = [tf.compat.v1.Variable(value, name=name) for name, value in tensors.items()]
        write_version = getattr(tf.compat.v1.train.SaverDef, version)
        saver = tf.compat.v1.train.Saver(variables, write_version=write_version)
        with tf.compat.v1.Session(graph=graph) as session:
            session.run(tf.compat.v1.global_variables_initializer())
            saver.save(session, str(path), write_meta_graph=False, write_state=False)
    return str(path)


def write_archive(checkpoint, path):
    """A `.tar.gz` holding `checkpoint` as `inception_v1.ckpt`, like TF-slim's archive."""
    with tarfile.open(path, "w:gz") as archive:
        archive.add(checkpoint, arcname="inception_v1.ckpt")
    return str(path)


def slim_features(tensors, images):
    """TF-slim inception_v1's `Mixed_5c` output for `images` (NHWC float32), in `tf.nn` ops."""

    def conv(x, scope, stride=1):
        y = tf.nn.conv2d(x, tensors[f"{scope}/weights"], stride, "SAME")
        y = tf.nn.batch_normalization(
            y,
            tensors[f"{scope}/BatchNorm/moving_mean"],
            tensors[f"{scope}/BatchNorm/moving_variance"],
            offset=tensors[f"{scope}/BatchNorm/beta"],
            scale=None,  # slim: batch_norm(scale=False)
            variance_epsilon=1e-3,
        )
        return tf.nn.relu(y)

    def mixed(x, name):
        second_5x5 = "Conv2d_0a_3x3" if name == "Mixed_5b" else "Conv2d_0b_3x3"
        scope = f"{SCOPE}/{name}"
        b0 = conv(x, f"{scope}/Branch_0/Conv2d_0a_1x1")
        b1 = conv(conv(x, f"{scope}/Branch_1/Conv2d_0a_1x1"), f"{scope}/Branch_1/Conv2d_0b_3x3")
        b2 = conv(conv(x, f"{scope}/Branch_2/Conv2d_0a_1x1"), f"{scope}/Branch_2/{second_5x5}")
        b3 = conv(tf.nn.max_pool2d(x, 3, 1, "SAME"), f"{scope}/Branch_3/Conv2d_0b_1x1")
        return tf.concat([b0, b1, b2, b3], axis=3)

    x = conv(tf.constant(images), f"{SCOPE}/Conv2d_1a_7x7", stride=2)
    x = tf.nn.max_pool2d(x, 3, 2, "SAME")  # MaxPool_2a_3x3
    x = conv(x, f"{SCOPE}/Conv2d_2b_1x1")
    x = conv(x, f"{SCOPE}/Conv2d_2c_3x3")
    x = tf.nn.max_pool2d(x, 3, 2, "SAME")  # MaxPool_3a_3x3
    x = mixed(mixed(x, "Mixed_3b"), "Mixed_3c")
    x = tf.nn.max_pool2d(x, 3, 2, "SAME")  # MaxPool_4a_3x3
    for name in ("Mixed_4b", "Mixed_4c", "Mixed_4d", "Mixed_4e", "Mixed_4f"):
        x = mixed(x, name)
    x = tf.nn.max_pool2d(x, 2, 2, "SAME")  # MaxPool_5a_2x2
    return mixed(mixed(x, "Mixed_5b"), "Mixed_5c")


def slim_logits(tensors, images, num_classes=1000):
    """TF-slim inception_v1's logits for `images` (NHWC float32 in [-1, 1]), in `tf.nn` ops."""
    x = slim_features(tensors, images)
    if x.shape[1] == 7 and x.shape[2] == 7:
        features = tf.nn.avg_pool2d(x, 7, 1, "VALID")  # Logits/AvgPool_0a_7x7
    else:
        features = tf.reduce_mean(x, axis=[1, 2], keepdims=True)  # slim's global_pool=True
    logits = tf.nn.conv2d(features, tensors[f"{SCOPE}/Logits/Conv2d_0c_1x1/weights"], 1, "VALID")
    logits = tf.squeeze(logits, [1, 2]) + tensors[f"{SCOPE}/Logits/Conv2d_0c_1x1/biases"]
    logits = logits.numpy()
    return logits[:, 1:] if num_classes == 1000 else logits
