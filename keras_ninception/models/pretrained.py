"""Pretrained ImageNet weights for `build_googlenet`: TF-slim's inception_v1 checkpoint.

`build_googlenet(weights=...)` resolves its `weights` argument here, before it builds a layer
(`resolve_weights`), and loads them into the built model afterwards (`load_weights`). The
sources, all of one set of weights (torchvision's were ported from TF-slim's):

- `"imagenet"`: TF-slim's `inception_v1_2016_08_28.tar.gz` (top-1 69.8 %, top-5 89.6 % on the
  ImageNet validation set, TF-slim's README), fetched once by `keras.utils.get_file` into
  `$KERAS_HOME/models/` (default `~/.keras/models/`), where it is read from then on.
  Offline, with the file absent, the download is refused after a short probe with an error
  that says where to copy the file.
- a local copy of that archive (`.tar.gz`, `.tgz`, `.tar`), or of its checkpoint
  (`inception_v1.ckpt`, a V1 file, or a V2 prefix with `.index` / `.data-*` files), read by
  `tf.train.load_checkpoint`;
- torchvision's `googlenet-1378be20.pth` (or any state dict of torchvision's `googlenet`),
  read by `torch.load` when torch is installed (`variant="bn"` only).

The checkpoint's 230 tensors, in TF-slim's naming (`nets/inception_v1.py`), for each of the
57 convolutions `InceptionV1/<conv>/weights` (HWIO) and `.../BatchNorm/{beta, moving_mean,
moving_variance}` (no gamma: `scale=False`; epsilon 1e-3; no conv biases), and the classifier
`InceptionV1/Logits/Conv2d_0c_1x1/{weights [1, 1, 1024, 1001], biases [1001]}`, class 0 being
"background". Every tensor is mapped onto a layer of this package (`SLIM_CONVOLUTIONS`);
a missing, extra or mis-shaped tensor is an error that names it.
"""

import os
import tarfile
import tempfile
import threading
import urllib.request

import keras
import numpy as np
import tensorflow as tf

from keras_ninception.models.common import load_weights as load_keras_weights
from keras_ninception.models.torchvision_weights import load_torchvision_weights

IMAGENET_ARCHIVE = "inception_v1_2016_08_28.tar.gz"
IMAGENET_ORIGIN = "http://download.tensorflow.org/models/inception_v1_2016_08_28.tar.gz"
# The archive's hash is not published next to it, and these machines cannot download it to
# compute one: no hash is passed to `keras.utils.get_file` rather than an invented one.
IMAGENET_FILE_HASH = None
IMAGENET_CHECKPOINT = "inception_v1.ckpt"
# TF-slim's README (research/slim, "Pre-trained Models"): Inception V1, top-1 / top-5 (%).
IMAGENET_ACCURACY = (69.8, 89.6)
# Seconds to wait for the download server before giving up (offline machines fail fast).
PROBE_TIMEOUT_S = 5.0

SLIM_SCOPE = "InceptionV1"
SLIM_LOGITS = f"{SLIM_SCOPE}/Logits/Conv2d_0c_1x1"
SLIM_NUM_CLASSES = 1001  # class 0 is "background"; 1-1000 are the ILSVRC-2012 classes
SLIM_FEATURES = 1024
# Bookkeeping variables a training checkpoint may hold besides the model's: ignored.
SLIM_IGNORED = ("global_step",)

# TF-slim scope → this package's layer name, one row per convolution (57 in all).
_SLIM_STEM = (
    ("Conv2d_1a_7x7", "conv1_7x7_s2"),
    ("Conv2d_2b_1x1", "conv2_3x3_reduce"),
    ("Conv2d_2c_3x3", "conv2_3x3"),
)
_SLIM_MODULES = (
    ("Mixed_3b", "inception_3a"),
    ("Mixed_3c", "inception_3b"),
    ("Mixed_4b", "inception_4a"),
    ("Mixed_4c", "inception_4b"),
    ("Mixed_4d", "inception_4c"),
    ("Mixed_4e", "inception_4d"),
    ("Mixed_4f", "inception_4e"),
    ("Mixed_5b", "inception_5a"),
    ("Mixed_5c", "inception_5b"),
)
_SLIM_BRANCHES = (
    ("Branch_0/Conv2d_0a_1x1", "1x1"),
    ("Branch_1/Conv2d_0a_1x1", "3x3_reduce"),
    ("Branch_1/Conv2d_0b_3x3", "3x3"),
    ("Branch_2/Conv2d_0a_1x1", "5x5_reduce"),
    ("Branch_2/Conv2d_0b_3x3", "5x5"),  # the checkpoints' "5×5" branch is a 3×3 conv
    ("Branch_3/Conv2d_0b_1x1", "pool_proj"),
)
# TF-slim's quirk: Mixed_5b names its second Branch_2 convolution Conv2d_0a_3x3.
_SLIM_RENAMED = {"Mixed_5b/Branch_2/Conv2d_0b_3x3": "Mixed_5b/Branch_2/Conv2d_0a_3x3"}

SLIM_CONVOLUTIONS = tuple(
    [(f"{SLIM_SCOPE}/{scope}", layer) for scope, layer in _SLIM_STEM]
    + [
        (f"{SLIM_SCOPE}/{_SLIM_RENAMED.get(f'{mixed}/{branch}', f'{mixed}/{branch}')}", f"{module}_{suffix}")
        for mixed, module in _SLIM_MODULES
        for branch, suffix in _SLIM_BRANCHES
    ]
)
_BN_STATISTICS = ("beta", "moving_mean", "moving_variance")

# The variants that hold these weights, and where each comes from.
PRETRAINED_VARIANTS = ("slim", "bn")


def slim_tensor_names():
    """The 230 tensor names of TF-slim's inception_v1 checkpoint, in network order."""
    names = []
    for scope, _ in SLIM_CONVOLUTIONS:
        names.append(f"{scope}/weights")
        names.extend(f"{scope}/BatchNorm/{s}" for s in _BN_STATISTICS)
    return names + [f"{SLIM_LOGITS}/weights", f"{SLIM_LOGITS}/biases"]


def weights_kind(weights):
    """What `weights` names: None, `"imagenet"`, `"keras"`, `"archive"`, `"checkpoint"` or `"torchvision"`.

    Raises:
        ValueError: `weights` is none of None, `"imagenet"` or an existing path (a file, or a
            TF checkpoint prefix with an `.index` file), in keras.applications' words.
    """
    if weights is None:
        return None
    if isinstance(weights, str) and weights == "imagenet":
        return "imagenet"
    if isinstance(weights, (str, os.PathLike)):
        path = os.fspath(weights)
        if os.path.isfile(path) or os.path.isfile(path + ".index"):
            if path.endswith((".keras", ".h5")):
                return "keras"
            if path.endswith((".tar.gz", ".tgz", ".tar")):
                return "archive"
            if path.endswith((".pth", ".pt")):
                return "torchvision"
            return "checkpoint"
    raise ValueError(
        "The `weights` argument should be either `None` (random initialization), `imagenet` "
        "(pre-training on ImageNet, TF-slim's inception_v1 checkpoint), or the path to the "
        "weights file to be loaded: a `.weights.h5` or `.keras` file of this architecture, "
        "TF-slim's `inception_v1_2016_08_28.tar.gz` or its `inception_v1.ckpt`, or "
        f"torchvision's `googlenet-*.pth`. Received: weights={weights!r}"
    )


def is_pretrained(weights):
    """True when `weights` names ImageNet weights (not a Keras file of this package)."""
    return weights_kind(weights) in ("imagenet", "archive", "checkpoint", "torchvision")


def check_pretrained_arguments(
    weights, variant, include_top, num_classes, classifier_activation, channels, width_multiplier, naive
):
    """keras.applications' rules for pretrained weights, plus the architecture they need.

    Raises:
        ValueError: a variant without these weights, `num_classes` other than 1000 (or 1001:
            TF-slim's background class first) with `include_top=True`, an activation other
            than None / softmax, inputs that are not RGB, a width multiplier other than 1, or
            the naive module; torch missing for a `.pth` file.
    """
    kind = weights_kind(weights)
    if kind not in ("imagenet", "archive", "checkpoint", "torchvision"):
        return kind
    allowed = ("bn",) if kind == "torchvision" else PRETRAINED_VARIANTS
    if variant not in allowed:
        raise ValueError(
            f"`variant` must be one of {list(allowed)} with `weights={weights!r}`: only these "
            "variants have the checkpoint's architecture ('slim': TF-slim's padding exactly; "
            f"'bn': torchvision's). Received: variant={variant!r}"
        )
    classes = (1000,) if kind == "torchvision" else (1000, SLIM_NUM_CLASSES)
    if include_top and num_classes not in classes:
        raise ValueError(
            f'If using `weights="imagenet"` (or an ImageNet checkpoint) with `include_top=True`, '
            f"`num_classes` should be {' or '.join(map(str, classes))} (1001: TF-slim's "
            "'background' class first). For other classes use include_top=False and add a "
            f"head. Received: num_classes={num_classes}"
        )
    if include_top and classifier_activation not in (None, "softmax"):
        raise ValueError(
            "Only `None` and `softmax` activations are allowed for the `classifier_activation` "
            "argument when using pretrained weights, with `include_top=True`. "
            f"Received: classifier_activation={classifier_activation!r}"
        )
    if channels != 3:
        raise ValueError(
            "The ImageNet weights take RGB images: the input must have 3 channels. "
            f"Received: {channels} channels"
        )
    if width_multiplier != 1 or naive:
        raise ValueError(
            "The ImageNet weights need the checkpoint's widths and the module with 1×1 "
            "reductions: width_multiplier=1.0 and naive_inception=False. "
            f"Received: width_multiplier={width_multiplier}, naive_inception={naive}"
        )
    if kind == "torchvision":
        import importlib.util

        if importlib.util.find_spec("torch") is None:
            raise ValueError(
                f"Reading torchvision's {os.path.basename(os.fspath(weights))!r} needs torch "
                "(`pip install 'keras-ninception[torch]'`). Without torch use TF-slim's "
                "checkpoint, the same weights: weights='imagenet' or a path to "
                f"{IMAGENET_ARCHIVE}. Received: weights={weights!r}"
            )
    return kind


def keras_cache_dir():
    """The Keras cache folder `keras.utils.get_file` writes to: `$KERAS_HOME`, else `~/.keras`."""
    return os.path.expanduser(os.environ.get("KERAS_HOME") or os.path.join("~", ".keras"))


def _probe(origin, timeout):
    """None when `origin`'s server answers a HEAD request within `timeout` seconds, else why not.

    The request runs in a daemon thread joined with the timeout, so a slow DNS lookup (which
    the socket timeout does not cover) cannot stall the caller either.
    """
    outcome = []

    def probe():
        try:
            with urllib.request.urlopen(urllib.request.Request(origin, method="HEAD"), timeout=timeout):
                outcome.append(None)
        except Exception as error:  # URLError, HTTPError, socket errors, timeouts: all mean "no"
            outcome.append(str(error) or type(error).__name__)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else f"no answer within {timeout:g} s"


def imagenet_checkpoint_path():
    """The path of `inception_v1.ckpt` from the Keras cache, downloading the archive once.

    `keras.utils.get_file(IMAGENET_ARCHIVE, IMAGENET_ORIGIN, cache_subdir="models",
    extract=True)`: with the archive already in `$KERAS_HOME/models/` nothing is fetched.
    Without it, the server is probed first (HEAD, at most `PROBE_TIMEOUT_S`), so an offline
    machine fails in seconds instead of waiting on connection retries.

    Raises:
        FileNotFoundError: the archive is not in the cache and the server does not answer;
            the message says which file to copy where.
    """
    cache_dir = keras_cache_dir()
    archive = os.path.join(cache_dir, "models", IMAGENET_ARCHIVE)
    failure = None if os.path.isfile(archive) else _probe(IMAGENET_ORIGIN, PROBE_TIMEOUT_S)
    if failure:
        raise FileNotFoundError(
            f"The ImageNet weights are not in the Keras cache, and {IMAGENET_ORIGIN} cannot "
            f"be reached ({failure}). Download {IMAGENET_ARCHIVE} (TF-slim's inception_v1) on "
            f"a machine with network and copy it to {archive} ($KERAS_HOME/models/; "
            "KERAS_HOME defaults to ~/.keras), or pass its path: "
            "weights='/path/to/inception_v1_2016_08_28.tar.gz'."
        )
    os.makedirs(os.path.dirname(archive), exist_ok=True)
    folder = keras.utils.get_file(
        IMAGENET_ARCHIVE,
        IMAGENET_ORIGIN,
        cache_subdir="models",
        file_hash=IMAGENET_FILE_HASH,
        extract=True,
        cache_dir=cache_dir,
    )
    return _checkpoint_in(folder, archive)


def _checkpoint_in(folder, archive):
    """The checkpoint path (V1 file or V2 prefix) inside an extracted archive folder."""
    found = []
    for root, _, files in os.walk(folder):
        for name in files:
            if name.endswith(".ckpt"):
                found.append(os.path.join(root, name))
            elif name.endswith(".index"):
                found.append(os.path.join(root, name[: -len(".index")]))
    if len(found) != 1:
        raise ValueError(
            f"{archive!r} must hold one TF checkpoint ({IMAGENET_CHECKPOINT}, as TF-slim's "
            f"{IMAGENET_ARCHIVE}). Found: {sorted(found) or 'none'}"
        )
    return found[0]


def read_slim_checkpoint(path):
    """Every tensor of a TF checkpoint, as `{name: float32 ndarray}`, via `tf.train.load_checkpoint`.

    Args:
        path: a TF checkpoint (V1 file, or V2 prefix), or a `.tar.gz` / `.tgz` / `.tar`
            archive holding one (extracted to a temporary folder and removed after).

    Raises:
        ValueError: the file is not a readable checkpoint (the message names it).
    """
    path = os.fspath(path)
    if path.endswith((".tar.gz", ".tgz", ".tar")):
        with tempfile.TemporaryDirectory() as folder:
            try:
                with tarfile.open(path) as archive:
                    archive.extractall(folder, filter="data")
            except (tarfile.TarError, OSError) as error:
                raise ValueError(f"Could not extract {path!r}: {error}") from None
            return read_slim_checkpoint(_checkpoint_in(folder, path))
    try:
        reader = tf.train.load_checkpoint(path)
        names = reader.get_variable_to_shape_map()
        return {name: np.asarray(reader.get_tensor(name)) for name in names}
    except (tf.errors.OpError, ValueError) as error:
        raise ValueError(
            f"{path!r} is not a readable TF checkpoint ({str(error).splitlines()[0][:200]})."
        ) from None


def _listed(names, limit=8):
    names = sorted(names)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def load_slim_checkpoint(model, tensors):
    """Copies TF-slim inception_v1 tensors into a `variant="slim"` or `"bn"` GoogLeNet.

    Convolution kernels are HWIO in both; BN `beta`, `moving_mean`, `moving_variance` go to
    the layer's own (a `"bn"` layer's `gamma` is set to 1: slim has no scale). The classifier
    `[1, 1, 1024, 1001]` 1×1 conv becomes the `main_classifier` Dense kernel `[1024, 1001]`,
    or `[1024, 1000]` without column 0 ("background") for a 1000-class model. Without a top
    (`include_top=False`) the classifier tensors are checked but not used. Aux heads (none
    in the checkpoint) are left as they are.

    Args:
        model: from `build_googlenet(variant="slim" or "bn", ...)`, channels_last, float
            weights.
        tensors: `{name: array}`, e.g. `read_slim_checkpoint(path)`. A `global_step` entry
            is ignored.

    Returns:
        `model`, with its weights set.

    Raises:
        ValueError: `model` is not such a GoogLeNet; or tensors are missing, extra, or
            mis-shaped (the message names each, with the two shapes).
    """
    names = {layer.name for layer in model.layers}
    if "conv1_7x7_s2_bn" not in names or "inception_5b_pool_proj_bn" not in names:
        raise ValueError(
            "`model` must be a GoogLeNet built with variant='slim' or 'bn' (width 1) to take "
            f"TF-slim's inception_v1 checkpoint. Received: model named {model.name!r}"
        )
    expected = {}
    for scope, layer_name in SLIM_CONVOLUTIONS:
        if layer_name not in names:
            raise ValueError(f"`model` has no layer {layer_name!r} for {scope}.")
        expected[f"{scope}/weights"] = tuple(model.get_layer(layer_name).kernel.shape)
        channels = expected[f"{scope}/weights"][-1]
        for statistic in _BN_STATISTICS:
            expected[f"{scope}/BatchNorm/{statistic}"] = (channels,)
    expected[f"{SLIM_LOGITS}/weights"] = (1, 1, SLIM_FEATURES, SLIM_NUM_CLASSES)
    expected[f"{SLIM_LOGITS}/biases"] = (SLIM_NUM_CLASSES,)

    given = {k: v for k, v in tensors.items() if k not in SLIM_IGNORED}
    missing = set(expected) - set(given)
    extra = set(given) - set(expected)
    misshaped = [
        f"{name} {tuple(given[name].shape)} (the model needs {expected[name]})"
        for name in sorted(set(expected) & set(given))
        if tuple(given[name].shape) != expected[name]
    ]
    problems = []
    if missing:
        problems.append(f"{len(missing)} missing: {_listed(missing)}")
    if extra:
        problems.append(f"{len(extra)} not in TF-slim's inception_v1: {_listed(extra)}")
    if misshaped:
        problems.append(f"{len(misshaped)} mis-shaped: {_listed(misshaped, 4)}")
    if problems:
        raise ValueError(
            "The checkpoint does not match TF-slim's inception_v1 (230 tensors, "
            f"{IMAGENET_ARCHIVE}): " + "; ".join(problems) + "."
        )

    def value(name):
        return np.asarray(given[name], dtype=np.float32)

    for scope, layer_name in SLIM_CONVOLUTIONS:
        model.get_layer(layer_name).set_weights([value(f"{scope}/weights")])
        bn = model.get_layer(f"{layer_name}_bn")
        statistics = [value(f"{scope}/BatchNorm/{s}") for s in _BN_STATISTICS]
        if bn.scale:
            statistics.insert(0, np.ones_like(statistics[0]))
        bn.set_weights(statistics)

    if "main_classifier" in names:
        classifier = model.get_layer("main_classifier")
        outputs = classifier.kernel.shape[-1]
        if outputs not in (1000, SLIM_NUM_CLASSES):
            raise ValueError(
                "The checkpoint's classifier has 1001 outputs (1000 without 'background'); "
                f"`model`'s main classifier has {outputs}. Build with num_classes=1000 or "
                "1001, or include_top=False."
            )
        kernel = value(f"{SLIM_LOGITS}/weights").reshape(SLIM_FEATURES, SLIM_NUM_CLASSES)
        bias = value(f"{SLIM_LOGITS}/biases")
        drop = SLIM_NUM_CLASSES - outputs  # 1: drop class 0, "background"
        classifier.set_weights([kernel[:, drop:], bias[drop:]])
    return model


def read_torchvision_state_dict(path):
    """torchvision's state dict from a `.pth` file, read with `torch.load(weights_only=True)`."""
    import torch

    state = torch.load(os.fspath(path), map_location="cpu", weights_only=True)
    if isinstance(state, dict) and "state_dict" in state and isinstance(state["state_dict"], dict):
        state = state["state_dict"]
    return {k: v.detach().cpu().numpy() for k, v in state.items()}


def resolve_weights(weights):
    """The local file behind `weights`, fetching the ImageNet archive when needed.

    Runs before the model is built, so a missing file fails before any work.

    Returns:
        `(kind, path)`: `kind` from `weights_kind`, `path` a local file (None for None).

    Raises:
        ValueError, FileNotFoundError: see `weights_kind` and `imagenet_checkpoint_path`.
    """
    kind = weights_kind(weights)
    if kind == "imagenet":
        return kind, imagenet_checkpoint_path()
    return kind, None if weights is None else os.fspath(weights)


def load_weights(model, kind, path):
    """Loads resolved weights (`resolve_weights`) into a freshly built GoogLeNet.

    Raises:
        ValueError: the file does not fit the model (the message names the tensors).
    """
    if kind in ("imagenet", "archive", "checkpoint"):
        return load_slim_checkpoint(model, read_slim_checkpoint(path))
    if kind == "torchvision":
        return load_torchvision_weights(model, read_torchvision_state_dict(path))
    return load_keras_weights(model, path)
