"""The `ninception` command line: `train`, `prepare`, `evaluate`, `prune`, `profile`, `tune`, `export` and `predict`.

The CLI only parses arguments and calls the training layer; errors in the package's own
words are printed as `ninception: error: ...` with exit status 2, nothing half-written.
Results (`--json`, tables, predictions) go to stdout; run messages are `keras_ninception`
log records on stderr, and `-q/--quiet` and `-v/--verbose` mean the same in every subcommand
(`_add_verbosity_flags`, `_apply_verbosity`).
"""

import argparse
import dataclasses
import json
import logging
import os
import sys

from keras_ninception.extras import MissingExtraError

DESCRIPTION = "Network in Network and GoogLeNet (Inception v1) for Keras 3."
logger = logging.getLogger("keras_ninception.cli")


def _add_verbosity_flags(parser):
    """`-q/--quiet` and `-v/--verbose`, the same for every subcommand."""
    group = parser.add_mutually_exclusive_group()
    group.add_argument(
        "-q",
        "--quiet",
        dest="verbosity",
        action="store_const",
        const="quiet",
        default="default",
        help="only results, warnings and errors: no run messages, no Keras progress bars",
    )
    group.add_argument(
        "-v",
        "--verbose",
        dest="verbosity",
        action="store_const",
        const="verbose",
        help="also the detail of a run (its resolved configuration) and TensorFlow's own C++ log "
        "lines (quiet by default unless TF_CPP_MIN_LOG_LEVEL is set)",
    )


def _apply_verbosity(args):
    """Sets the package's log level from `--quiet`/`--verbose`; returns Keras' `verbose`."""
    from keras_ninception import reporting

    reporting.configure(args.verbosity)
    return reporting.keras_verbose(args.verbosity)


class HelpFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Adds `(default: X)` to a flag's help, unless the help already says its default.

    Not for on/off switches (`--download`, `--no-aux`) or a default of None (their help
    says what happens without them).
    """

    def _get_help_string(self, action):
        help_text = action.help or ""
        switch = isinstance(action, (argparse._StoreTrueAction, argparse._StoreFalseAction, argparse._StoreConstAction))
        if "default" in help_text or switch or action.default is None or action.default is argparse.SUPPRESS:
            return help_text
        return super()._get_help_string(action)


def _add_subparser(subparsers, name, **kwargs):
    return subparsers.add_parser(name, formatter_class=HelpFormatter, **kwargs)


def _add_train_parser(subparsers):
    # TF-free imports: `--help` never imports TensorFlow.
    from keras_ninception.options import (
        AUGMENT_MODES,
        CHECK_IMAGES,
        MODELS,
        ON_BAD_IMAGE,
        OPTIMIZERS,
        PRECISIONS,
        STRATEGIES,
        TRAIN_VARIANTS,
    )
    from keras_ninception.training.config import TrainConfig
    from keras_ninception.training.recipes import RECIPES, SCHEDULES

    defaults = TrainConfig()
    p = _add_subparser(
        subparsers,
        "train",
        help="train a model with model.fit (default: GoogLeNet with aux heads on the embedded digits)",
        description="Train NIN or GoogLeNet, log to TensorBoard and save the run under saved_models/.",
    )
    p.add_argument("--model", choices=MODELS, default=defaults.model, help="the architecture")
    p.add_argument(
        "--variant",
        choices=TRAIN_VARIANTS,
        default=None,
        help="GoogLeNet variant (default: the --weights source's, 'slim' for imagenet; else "
        "'cifar' below 79 px, else 'paper')",
    )
    p.add_argument(
        "--weights",
        default=None,
        metavar="imagenet|PATH|RUN_DIR",
        help="start from pretrained weights: 'imagenet' (TF-slim's inception_v1, from "
        "$KERAS_HOME/models/ or downloaded there), a local inception_v1_2016_08_28.tar.gz / "
        ".ckpt, torchvision's googlenet .pth, a .keras file, or a finished run folder; heads "
        "that do not fit (other classes, aux heads) start fresh (default: none, train from scratch)",
    )
    p.add_argument(
        "--fine-tune",
        choices=("head", "all"),
        default=defaults.fine_tune,
        help="with --weights: 'head' freezes the backbone (BN in inference mode) and trains the "
        "heads; 'all' trains every layer at --learning-rate (default: %(default)s)",
    )
    p.add_argument(
        "--dataset",
        default=defaults.dataset,
        help="'digits' (embedded), a folder ROOT/<split>/<class>/*.jpg, or a TFDS name",
    )
    p.add_argument("--data-dir", default=None, help="TFDS data directory (default: TFDS' own)")
    p.add_argument("--download", action="store_true", help="let TFDS download the dataset (needs network)")
    p.add_argument(
        "--recipe",
        choices=tuple(RECIPES),
        default=None,
        help="a named training recipe: optimizer, schedule, regularization and budget as data "
        "(keras_ninception.training.recipes); the flags below override it (default: fast, and "
        "fast-plain for the unnormalized forms: --no-batch-norm NIN, GoogLeNet --variant paper)",
    )
    fast = RECIPES["fast"]
    p.add_argument("--epochs", type=int, default=None, help=f"training epochs (default: the recipe's; fast: {fast.epochs})")
    p.add_argument("--batch-size", type=int, default=None, help=f"global batch size (default: the recipe's; fast: {fast.batch_size})")
    p.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help=f"peak learning rate (default: the recipe's; fast: {fast.learning_rate})",
    )
    p.add_argument(
        "--optimizer", default=None, choices=OPTIMIZERS, help=f"the optimizer (default: the recipe's; fast: {fast.optimizer})"
    )
    p.add_argument(
        "--schedule", default=None, choices=SCHEDULES, help=f"learning-rate schedule (default: the recipe's; fast: {fast.schedule})"
    )
    p.add_argument(
        "--warmup-epochs", type=float, default=None, help=f"warm-up epochs of the cosine schedule (default: the recipe's; fast: {fast.warmup_epochs})"
    )
    p.add_argument(
        "--decay-epochs",
        type=float,
        nargs="+",
        default=None,
        metavar="EPOCH",
        help="epochs at which the step schedule multiplies the rate by --decay-rate (the exponential "
        "one: its period); scale them with --epochs (default: the recipe's; nin-paper: 150 225)",
    )
    p.add_argument(
        "--decay-rate", type=float, default=None, help="factor of each cut (default: the recipe's; nin-paper: 0.1)"
    )
    p.add_argument(
        "--weight-decay",
        type=float,
        default=None,
        help="decoupled weight decay, not on BN or biases; 0: off (default: the recipe's; fast: none)",
    )
    p.add_argument(
        "--label-smoothing", type=float, default=None, help="for every head (default: the recipe's; fast: 0)"
    )
    p.add_argument(
        "--dropout-rate",
        type=float,
        default=None,
        help="NIN's dropout, GoogLeNet's main-head dropout (default: the recipe's; fast: the builders' 0.5 / 0.4)",
    )
    p.add_argument(
        "--ema",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="Polyak averaging of the weights, saved for inference (default: the recipe's; fast: off)",
    )
    p.add_argument(
        "--aux-loss-weight",
        type=float,
        default=defaults.aux_loss_weight,
        help="weight of each aux head's loss in the total, as in the paper",
    )
    p.add_argument("--no-aux", dest="aux_classifiers", action="store_false", help="GoogLeNet without aux heads")
    p.add_argument(
        "--no-batch-norm",
        dest="batch_norm",
        action="store_false",
        help="NIN: train the paper's form, without batch normalization",
    )
    p.add_argument(
        "--image-size",
        type=int,
        default=None,
        help="input side in pixels (default: 224 with ImageNet weights, 24 for digits, else 32)",
    )
    p.add_argument(
        "--validation-fraction",
        type=float,
        default=defaults.validation_fraction,
        help="share of train held out for validation when the source has no validation split",
    )
    p.add_argument(
        "--augment",
        choices=AUGMENT_MODES,
        default=None,
        help="training augmentation; inception: GoogLeNet's random crop of 8-100%% of the original image, "
        "aspect 3/4-4/3, and a flip (default: the recipe's; fast: crop for digits and gray TFDS datasets, else crop_flip)",
    )
    p.add_argument(
        "--color-distortion",
        action="store_true",
        help="with --augment inception: also TF-slim's random brightness, saturation, hue and contrast",
    )
    p.add_argument(
        "--eval-crop",
        type=float,
        default=None,
        metavar="FRACTION",
        help="validation/test/evaluate/predict: resize to image_size / FRACTION, then the central "
        "image_size (0.875 is TF-slim's: 256 then 224; default: the whole image resized)",
    )
    p.add_argument(
        "--cache",
        default=defaults.cache,
        metavar="auto|memory|none|PATH",
        help="where decoded images stay between epochs: auto caches a split in memory when its decoded "
        "size fits a quarter of the available memory, else decodes it each epoch; PATH: tf.data cache files",
    )
    p.add_argument(
        "--on-bad-image",
        choices=ON_BAD_IMAGE,
        default=defaults.on_bad_image,
        help="damaged images in a folder: stop with an error naming them, or skip them",
    )
    p.add_argument(
        "--check-images",
        choices=CHECK_IMAGES,
        default=defaults.check_images,
        help="image folders: check every file before training, in parallel, with TF's decoder: "
        "'header' parses JPEG headers (other files are decoded), 'full' decodes every file, "
        "'none' checks nothing; a file that still fails to decode stops training with its name",
    )
    p.add_argument("--seed", type=int, default=defaults.seed, help="seeds Keras, TF, NumPy and the shuffling")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=defaults.precision,
        help="dtype policy: 'auto' (default) is mixed_bfloat16 on CPUs with AVX512-BF16/AMX, "
        "mixed_float16 on GPUs, else float32; 'float32' forces full precision",
    )
    p.add_argument("--run-dir", default=None, help="run folder (default: saved_models/<model>-<dataset>-<time>)")
    p.add_argument(
        "--image-summary-freq",
        type=int,
        default=defaults.image_summary_freq,
        help="epochs between the confusion matrix and validation images in TensorBoard; 0: off (default: %(default)s)",
    )
    p.add_argument(
        "--num-summary-images",
        type=int,
        default=defaults.num_summary_images,
        help="validation images in the TensorBoard grid, 0 to 64 (default: %(default)s)",
    )
    p.add_argument(
        "--histogram-freq",
        type=int,
        default=defaults.histogram_freq,
        help="epochs between weight histograms in TensorBoard; 0: off (default: %(default)s)",
    )
    p.add_argument(
        "--profile-batch",
        default=None,
        metavar="START[,STOP]",
        help="trace training batches START to STOP (from 1) with the TF profiler, e.g. 10,20 (default: off)",
    )
    p.add_argument(
        "--strategy",
        choices=STRATEGIES,
        default=defaults.strategy,
        help="tf.distribute strategy; --batch-size is the global batch (default: %(default)s: "
        "multiworker when TF_CONFIG names several workers, mirrored with several GPUs, else none)",
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument(
        "--resume",
        action="store_true",
        help="continue the interrupted run in --run-dir with its saved configuration (the same "
        "command resumes it without this flag)",
    )
    group.add_argument("--overwrite", action="store_true", help="replace the run in --run-dir")
    p.set_defaults(func=_train)


def _add_prepare_parser(subparsers):
    from keras_ninception.options import CHECK_IMAGES, ON_BAD_IMAGE

    p = _add_subparser(
        subparsers,
        "prepare",
        help="write an image folder once as TFDS record shards, for --dataset DIR",
        description="Write FOLDER (ROOT/<split>/<class>/*.jpg) as TFDS record shards with an index of "
        "classes and counts (DIR/prepared.json). `ninception train --dataset DIR` then reads the shards "
        "with interleaved parallel reads, and a multi-worker run gives each worker its own shards.",
    )
    p.add_argument("folder", help="the image folder ROOT/<split>/<class>/*.jpg|jpeg|png")
    p.add_argument("--out", required=True, help="the new folder (must not exist, or be empty)")
    p.add_argument(
        "--validation-fraction",
        type=float,
        default=0.1,
        help="share of train/ written as the validation split when FOLDER has no validation/ or val/",
    )
    p.add_argument("--shards", type=int, default=None, help="shards per split (default: 16, or ~128 MB each)")
    p.add_argument(
        "--on-bad-image",
        choices=ON_BAD_IMAGE,
        default="error",
        help="damaged images: stop with an error naming them, or skip them",
    )
    p.add_argument(
        "--check-images",
        choices=CHECK_IMAGES,
        default="header",
        help="check every file first, in parallel, with TF's decoder: 'header' parses JPEG "
        "headers (other files are decoded), 'full' decodes every file, 'none' checks nothing",
    )
    p.set_defaults(func=_prepare)


def _prepare(args):
    from keras_ninception.data.prepared import prepare_image_folder

    index = prepare_image_folder(
        args.folder,
        args.out,
        validation_fraction=args.validation_fraction,
        on_bad_image=args.on_bad_image,
        check_images=args.check_images,
        num_shards=args.shards,
    )
    counts = ", ".join(f"{split} {entry['num_examples']:,}" for split, entry in index["splits"].items())
    logger.info(
        "Prepared %s: %d classes, %s images in %d shards per split (validation: %s).",
        args.out, len(index["class_names"]), counts, next(iter(index["splits"].values()))["num_shards"],
        index["validation_from"],
    )


def _add_evaluate_parser(subparsers):
    from keras_ninception.options import OPENVINO_PRECISIONS, SPLITS

    p = _add_subparser(
        subparsers,
        "evaluate",
        help="per-head loss and accuracy of a saved run (or of an export)",
        description="Report loss and accuracy of every head of a saved run on one split. Given an "
        "export folder (ninception export: any format, float or int8), evaluate its model in its own "
        "runtime on the same split of its run's dataset; an export has one head, main.",
    )
    p.add_argument(
        "run_dir", metavar="RUN_DIR_OR_EXPORT",
        help="a run folder of `ninception train`, `tune` or `prune`, or an export folder of `ninception export`",
    )
    p.add_argument(
        "--run", default=None,
        help="for an export: the run it came from (default: the metadata's source, or RUN_DIR of RUN_DIR/export/<format>)",
    )
    p.add_argument(
        "--precision", default="float32", choices=OPENVINO_PRECISIONS,
        help="for an OpenVINO export: the CPU compute precision (default %(default)s; auto: OpenVINO's own)",
    )
    p.add_argument("--dataset", default=None, help="the data to evaluate on (default: the run's dataset)")
    p.add_argument(
        "--split",
        default=None,
        choices=SPLITS,
        help="the split (default: test; validation, with a note, when the dataset has no test split)",
    )
    p.add_argument("--data-dir", default=None, help="TFDS data directory (default: the run's)")
    p.add_argument("--batch-size", type=int, default=None, help="images per batch (default: the run's)")
    p.add_argument("--json", action="store_true", help="print the result as JSON (only JSON on stdout)")
    p.add_argument(
        "--output-dir",
        default=None,
        help="where the report <split>.json and <split>.png go (default: RUN_DIR/evaluation)",
    )
    p.add_argument(
        "--latency-repeats",
        type=int,
        default=10,
        help="timed predict_on_batch calls per head for the latency median (0: skip; default %(default)s)",
    )
    p.set_defaults(func=_evaluate)


def _add_prune_parser(subparsers):
    from keras_ninception.options import DEFAULT_TOLERANCE, HEADS

    p = _add_subparser(
        subparsers,
        "prune",
        help="save a GoogLeNet run cut after one of its heads as a standalone run",
        description="Cut a trained GoogLeNet after the branch point of one head (aux1: "
        "inception_4a, aux2: inception_4d, main: the inference model) and save the network up "
        "to that head as a run folder that `ninception evaluate` reads like any other run.",
    )
    p.add_argument("run_dir", help="a GoogLeNet run folder")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--head", choices=HEADS, help="the head to keep")
    group.add_argument(
        "--auto",
        action="store_true",
        help="the smallest head whose validation top-1 accuracy is within --tolerance of the best head's",
    )
    p.add_argument(
        "--tolerance",
        type=float,
        default=DEFAULT_TOLERANCE,
        help="--auto: absolute accuracy below the best that is still good enough (default %(default)s = 1 point)",
    )
    p.add_argument("--out-dir", default=None, help="the new run folder (default: RUN_DIR-<head>)")
    p.add_argument("--batch-size", type=int, default=None, help="images per batch (default: the run's)")
    p.add_argument("--overwrite", action="store_true", help="replace the pruned run in --out-dir")
    p.set_defaults(func=_prune)


def _prune(args):
    from keras_ninception.training.heads import prune_run

    prune_run(
        args.run_dir,
        head="auto" if args.auto else args.head,
        out_dir=args.out_dir,
        tolerance=args.tolerance,
        overwrite=args.overwrite,
        batch_size=args.batch_size,
        verbose=args.keras_verbose,
    )


def _add_profile_parser(subparsers):
    from keras_ninception.options import GOOGLENET_VARIANTS, MODELS, NIN_CONFIGS

    p = _add_subparser(
        subparsers,
        "profile",
        help="parameters, multiply-adds and activation memory per layer",
        description="Cost profile of a model: parameters, MACs (multiply-adds) and activation "
        "memory per layer and in total, per image, with the papers' two claims as numbers: "
        "what the 1×1 bottlenecks save (GoogLeNet) and what global average pooling saves.",
    )
    p.add_argument("model", choices=MODELS, help="the architecture")
    p.add_argument("--variant", choices=GOOGLENET_VARIANTS, default="paper", help="GoogLeNet variant")
    p.add_argument("--config", choices=NIN_CONFIGS, default="cifar10", help="NIN configuration")
    p.add_argument("--input-size", type=int, default=None, help="input side in pixels (default: the variant's)")
    p.add_argument("--channels", type=int, default=3, help="input channels")
    p.add_argument("--num-classes", type=int, default=None, help="default: 1000 GoogLeNet / NIN imagenet, 10 NIN cifar10")
    p.add_argument("--aux", action="store_true", help="GoogLeNet: include the aux heads (default: inference model)")
    p.add_argument("--naive-inception", action="store_true", help="GoogLeNet: naive modules (Figure 2a)")
    p.add_argument("--top", type=int, default=None, help="show only the N costliest layers (default: all)")
    p.add_argument("--json", action="store_true", help="print the profile as JSON")
    p.set_defaults(func=_profile)


def _profile(args):
    import dataclasses as dc

    from keras_ninception.models import GOOGLENET_VARIANTS, NIN_CONFIGS, build_googlenet, build_nin
    from keras_ninception.models.profile import gap_savings, inception_bottleneck_savings, profile_model

    if args.model == "googlenet":
        size = args.input_size or GOOGLENET_VARIANTS[args.variant]["default_size"]
        model = build_googlenet(
            input_shape=(size, size, args.channels),
            num_classes=args.num_classes or 1000,
            variant=args.variant,
            aux_classifiers=args.aux,
            naive_inception=args.naive_inception,
        )
    else:
        size = args.input_size or NIN_CONFIGS[args.config]["default_size"]
        classes = args.num_classes or (10 if args.config == "cifar10" else 1000)
        model = build_nin(input_shape=(size, size, args.channels), num_classes=classes, config=args.config)
    profile = profile_model(model)
    claims = {"global_average_pooling": gap_savings(model)}
    if args.model == "googlenet":
        claims["bottleneck_inception_3a"] = inception_bottleneck_savings()
    if args.json:
        print(json.dumps({**dc.asdict(profile), "claims": claims}, indent=2, default=list))
        return
    print(profile.table(top=args.top))
    print(
        f"\n{model.name} at {size}×{size}×{args.channels}: {profile.params:,} parameters "
        f"({profile.trainable_params:,} trainable), {profile.macs / 1e9:.4f} G MACs, "
        f"{profile.activation_bytes / 2**20:.1f} MiB of activations per image (float32)"
    )
    gap = claims["global_average_pooling"]
    print(
        f"Global average pooling: classifier {gap['gap_head_params']:,} parameters vs "
        f"{gap['fc_head_params']:,} for a fully connected layer over the "
        f"{'×'.join(map(str, gap['feature_map']))} map ({gap['ratio']:.1f}× fewer)"
    )
    if "bottleneck_inception_3a" in claims:
        b = claims["bottleneck_inception_3a"]
        print(
            f"1×1 bottlenecks, inception 3a on 28×28×192: {b['bottleneck']['macs'] / 1e6:.1f} M MACs "
            f"vs {b['naive']['macs'] / 1e6:.1f} M naive ({b['mac_ratio']:.2f}× fewer), "
            f"{b['bottleneck']['params']:,} vs {b['naive']['params']:,} parameters"
        )


def _train(args):
    from keras_ninception.training.config import TrainConfig
    from keras_ninception.training.run import train

    fields = {f.name for f in dataclasses.fields(TrainConfig)}
    config = TrainConfig(**{k: v for k, v in vars(args).items() if k in fields})
    train(config, resume=args.resume, overwrite=args.overwrite, verbose=args.keras_verbose)


def _evaluate_export(args):
    from keras_ninception.deploy.evaluate import evaluate_export
    from keras_ninception.training.heads import evaluation_name, format_evaluation, save_evaluation

    result = evaluate_export(
        args.run_dir, run_dir=args.run, dataset=args.dataset, split=args.split, data_dir=args.data_dir,
        batch_size=args.batch_size, precision=args.precision, latency_repeats=args.latency_repeats,
    )
    export = os.path.basename(os.path.normpath(args.run_dir))
    suffix = f"-{args.precision}" if result["export"]["runtime"] == "openvino" and args.precision != "float32" else ""
    name = f"{evaluation_name(result['split'], args.dataset)}-export-{export}{suffix}"
    files = save_evaluation(result, args.output_dir, name)
    if args.json:
        print(json.dumps({**result, "files": files}, indent=2))
        return
    print(f"export {args.run_dir} ({result['export']['runtime']}" + (
        f", int8: {result['export']['quantization']['method']}" if result["export"]["quantization"] else ""
    ) + f"); {result['note']}")
    print(format_evaluation(result))
    print(f"Report saved in {files['json']} and {files['png']}")


def _evaluate(args):
    from keras_ninception.deploy.evaluate import is_export
    from keras_ninception.training.evaluate import evaluate_run
    from keras_ninception.training.heads import evaluation_name, format_evaluation, save_evaluation

    if is_export(args.run_dir):
        return _evaluate_export(args)
    result = evaluate_run(
        args.run_dir,
        dataset=args.dataset,
        split=args.split,
        data_dir=args.data_dir,
        batch_size=args.batch_size,
        verbose=0 if args.json else args.keras_verbose,  # keep stdout pure JSON
        latency_repeats=args.latency_repeats,
    )
    if args.split is None and result["split"] != "test":
        print(
            f"ninception evaluate: note: {result['dataset']!r} has no test split; evaluated on "
            f"{result['split']!r} (choose with --split).",
            file=sys.stderr,
        )
    files = save_evaluation(result, args.output_dir, evaluation_name(result["split"], args.dataset))
    if args.json:
        print(json.dumps({**result, "files": files}, indent=2))
        return
    print(format_evaluation(result))
    logger.info("Report saved in %s and %s", files["json"], files["png"])


def _add_tune_parser(subparsers):
    from keras_ninception.options import AUGMENT_MODES, BEST_MODEL_MODES, GOOGLENET_VARIANTS, MODELS, TUNERS

    p = _add_subparser(
        subparsers,
        "tune",
        help="hyperparameter search with KerasTuner (default: NIN on the embedded digits)",
        description="Search hyperparameters of NIN or GoogLeNet with KerasTuner (objective "
        "val_main_accuracy), print and save the trial table (trials.csv, trials.json), log every "
        "trial to TensorBoard with HParams, and save the best model like `ninception train`. "
        "A run definition (--config tuning/nin_digits.json) sets everything; flags override it.",
    )
    p.add_argument("--config", default=None, help="run definition JSON, e.g. tuning/nin_digits.json (default: none)")
    p.add_argument("--name", default=None, help="run name (default: <model>-<dataset>-tune)")
    p.add_argument("--model", choices=MODELS, default=None, help="default: nin")
    p.add_argument("--variant", choices=GOOGLENET_VARIANTS, default=None, help="GoogLeNet variant (default: by image size)")
    p.add_argument("--dataset", default=None, help="'digits' (default), a folder, or a TFDS name")
    p.add_argument("--data-dir", default=None, help="TFDS data directory (default: TFDS' own)")
    p.add_argument(
        "--download", action="store_const", const=True, default=None, help="let TFDS download the dataset (needs network)"
    )
    p.add_argument("--image-size", type=int, default=None, help="input side in pixels (default: 24 for digits, else 32)")
    p.add_argument(
        "--no-aux", dest="aux_classifiers", action="store_const", const=False, default=None, help="GoogLeNet without aux heads"
    )
    p.add_argument(
        "--no-batch-norm", dest="batch_norm", action="store_const", const=False, default=None,
        help="NIN without batch normalization",
    )
    p.add_argument("--tuner", choices=TUNERS, default=None, help="default: random")
    p.add_argument("--max-trials", type=int, default=None, help="default: 6")
    p.add_argument("--epochs", type=int, default=None, help="epochs per trial (Hyperband: max_epochs); default 3")
    p.add_argument(
        "--executions-per-trial", type=int, default=None, help="models trained per trial, scores averaged (default 1)"
    )
    p.add_argument("--batch-size", type=int, default=None, help="the pipeline's batch size (default 64)")
    p.add_argument("--best-model", choices=BEST_MODEL_MODES, default=None, help="default: restore")
    p.add_argument("--num-best", type=int, default=None, help="rows of the printed table (default 10)")
    p.add_argument("--augment", choices=AUGMENT_MODES, default=None, help="default: the source's (crop or crop_flip)")
    p.add_argument("--seed", type=int, default=None, help="default 0")
    p.add_argument("--run-dir", default=None, help="run folder (default: saved_models/<name>)")
    p.add_argument(
        "--distribution-strategy", choices=("mirrored",), default=None, help="train each trial on all local GPUs"
    )
    group = p.add_mutually_exclusive_group()
    group.add_argument("--resume", action="store_true", help="continue the search in the run folder")
    group.add_argument("--overwrite", action="store_true", help="replace the tuning run in the run folder")
    p.set_defaults(func=_tune)


def _tune(args):
    from keras_ninception.tuning.run import TuneConfig, tune

    fields = {f.name for f in dataclasses.fields(TuneConfig)}
    flags = {k: v for k, v in vars(args).items() if k in fields and v is not None}
    config = TuneConfig.from_json(args.config, **flags) if args.config else TuneConfig(**flags)
    tune(config, resume=args.resume, overwrite=args.overwrite, verbose=args.keras_verbose)


def _add_export_parser(subparsers):
    from keras_ninception.options import EXPORT_FORMATS, INT8_FORMATS

    p = _add_subparser(
        subparsers,
        "export",
        help="export a run's inference model: .keras, SavedModel, LiteRT, ONNX or OpenVINO",
        description="Export the inference model of a run (aux heads dropped) to a folder with the "
        "model and metadata.json (class names, input size, preprocessing). saved_model takes "
        "uint8 images of any size and resizes and scales inside; litert, onnx and openvino take "
        "uint8 images at the model's size and scale inside; keras takes preprocessed float32 "
        "images. onnx and openvino need the extras [onnx] and [openvino]. --int8 quantizes "
        "(openvino: NNCF; litert: full integer) with images of the run's train split.",
    )
    p.add_argument("run_dir", help="a run folder")
    p.add_argument("--format", required=True, choices=EXPORT_FORMATS, help="the export format")
    p.add_argument("--int8", action="store_true", help=f"int8 post-training quantization ({', '.join(INT8_FORMATS)})")
    p.add_argument(
        "--calibration-images", type=int, default=None,
        help="with --int8: images of the run's train split to calibrate on (default: 300)",
    )
    p.add_argument("--output", default=None, help="export folder (default: RUN_DIR/export/<format>)")
    p.add_argument("--overwrite", action="store_true", help="replace the export in --output")
    p.set_defaults(func=_export)


def _export(args):
    from keras_ninception.deploy.run_export import export_run

    path = export_run(
        args.run_dir, args.format, args.output, overwrite=args.overwrite, int8=args.int8,
        calibration_images=args.calibration_images,
    )
    logger.info("Exported %s%s to %s", args.format, " int8" if args.int8 else "", path)


def _add_predict_parser(subparsers):
    from keras_ninception.options import OPENVINO_PRECISIONS

    p = _add_subparser(
        subparsers,
        "predict",
        help="top-k classes of JPEG/PNG images with a run or an export",
        description="Print the top-k classes and probabilities of each image (JPEG or PNG, any "
        "size, gray or RGB: converted to the model's channels) with a run folder, a .keras, "
        ".tflite, .onnx (ONNX Runtime) or OpenVINO .xml file, an export folder, or 'imagenet' "
        "(GoogLeNet with TF-slim's ImageNet weights; 1000-class models print ImageNet class "
        "names). Every file is checked before anything is predicted.",
    )
    p.add_argument("model", metavar="RUN_DIR_OR_EXPORT", help="a run folder, an export folder, a .keras/.tflite file, or 'imagenet'")
    p.add_argument(
        "images",
        nargs="+",
        metavar="IMAGE",
        help="image files, folders (their JPEG/PNG files, sorted) or glob patterns such as 'photos/*.jpg'",
    )
    p.add_argument("--top-k", type=int, default=None, help="classes per image (default: 5, at most the class count)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.add_argument(
        "--precision", default="float32", choices=OPENVINO_PRECISIONS,
        help="OpenVINO models: the CPU compute precision (default %(default)s; auto: OpenVINO's own)",
    )
    p.set_defaults(func=_predict)


def _predict(args):
    from keras_ninception.deploy.predict import format_json, format_predictions, predict_files

    results = predict_files(args.model, args.images, args.top_k, precision=args.precision)
    print(format_json(results) if args.json else format_predictions(results))


def quiet_tensorflow_logs(verbose=False):
    """Quiets TensorFlow's C++ log lines unless `verbose`; call before TensorFlow is imported.

    Default: `TF_CPP_MIN_LOG_LEVEL=3` (fatal errors only) unless the user has set it. The
    lines TensorFlow writes while it loads (oneDNN, CUDA stubs, CPU features) come before
    `absl::InitializeLog()` and ignore that level (abseil/abseil-cpp#1718,
    tensorflow/tensorflow#102212), so TensorFlow is imported here with the process's stderr
    (file descriptor 2) on `os.devnull` when the level hides INFO lines. Later lines, such as
    "failed call to cuInit" on a machine without a GPU, follow the level. The command
    reports its own errors. `verbose` lets every line through (`TF_CPP_MIN_LOG_LEVEL=0`,
    over the user's setting).
    """
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return
    level = os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    if "tensorflow" in sys.modules or not level.isdigit() or int(level) < 1:
        return
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow  # noqa: F401
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def build_parser():
    """The `ninception` argument parser; builds without importing TensorFlow or Keras."""
    parser = argparse.ArgumentParser(prog="ninception", description=DESCRIPTION, formatter_class=HelpFormatter)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train_parser(subparsers)
    _add_prepare_parser(subparsers)
    _add_evaluate_parser(subparsers)
    _add_prune_parser(subparsers)
    _add_profile_parser(subparsers)
    _add_tune_parser(subparsers)
    _add_export_parser(subparsers)
    _add_predict_parser(subparsers)
    for subparser in subparsers.choices.values():
        _add_verbosity_flags(subparser)
    return parser


def main(argv=None):
    """Entry point of the `ninception` console script. Returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    quiet_tensorflow_logs(args.verbosity == "verbose")
    args.keras_verbose = _apply_verbosity(args)
    try:
        args.func(args)
    except (ValueError, OSError, RuntimeError, FloatingPointError, MissingExtraError) as e:
        # The package's own errors (bad arguments, data, run folders, a failed download, a
        # NaN loss, an optional extra not installed); anything else is a bug and keeps its
        # traceback.
        print(f"ninception {args.command}: error: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        # An image file that failed to decode inside the tf.data pipeline: named in the
        # package's words, not as TF's InvalidArgumentError.
        from keras_ninception.data.files import named_decode_error

        error = named_decode_error(e)
        if error is None:
            raise
        print(f"ninception {args.command}: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
