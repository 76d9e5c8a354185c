"""The allowed values of the package's options, in a module that imports nothing heavy.

The `ninception` command builds its parser (choices, defaults, `--help`) from these and from
`training.config.TrainConfig` without importing TensorFlow or Keras; the modules that act on
an option import its allowed values from here, so each list has one home.
"""

MODELS = ("googlenet", "nin")
# GoogLeNet variants (`models.googlenet.GOOGLENET_VARIANTS` holds their definitions).
GOOGLENET_VARIANTS = ("paper", "bn", "cifar")
# The variants `ninception train` builds ("slim" and "bn" take TF-slim's and torchvision's checkpoints).
TRAIN_VARIANTS = ("paper", "bn", "slim", "cifar")
NIN_CONFIGS = ("cifar10", "imagenet")
# `training.compile.OPTIMIZERS` builds them; "momentum" is classic momentum SGD (Caffe's).
OPTIMIZERS = ("adam", "adamw", "sgd", "momentum", "rmsprop")
AUGMENT_MODES = ("none", "crop", "crop_flip", "inception")
# `--cache`: these, or a file path prefix (`data.cache`).
CACHE_POLICIES = ("auto", "memory", "none")
ON_BAD_IMAGE = ("error", "skip")
# How image-folder files are checked before training (`data.files.CHECK_IMAGES`).
CHECK_IMAGES = ("full", "header", "none")
PRECISIONS = ("auto", "float32", "mixed_bfloat16", "mixed_float16")
STRATEGIES = ("auto", "none", "mirrored", "multiworker")
SPLITS = ("train", "validation", "test")
HEADS = ("aux1", "aux2", "main")
EXPORT_FORMATS = ("keras", "saved_model", "litert", "onnx", "openvino")
# The export formats `--int8` applies to (post-training quantization, `deploy.quantize`).
INT8_FORMATS = ("litert", "openvino")
# OpenVINO's CPU compute precision in predict and evaluate ("auto": OpenVINO's own default).
OPENVINO_PRECISIONS = ("float32", "bfloat16", "auto")
TUNERS = ("random", "bayesian", "hyperband")
BEST_MODEL_MODES = ("restore", "retrain")
MAX_SUMMARY_IMAGES = 64
# `ninception prune --auto`: absolute top-1 accuracy below the best head's that is still good
# enough (one percentage point).
DEFAULT_TOLERANCE = 0.01
