"""The `ninception` command line: `train`, `evaluate`, `prune`, `profile`, `tune`, `export` and `predict`.

The CLI only parses arguments and calls the training layer; errors in the package's own
words are printed as `ninception: error: ...` with exit status 2, nothing half-written.
"""

import argparse
import dataclasses
import json
import os
import sys

DESCRIPTION = "Network in Network and GoogLeNet (Inception v1) for Keras 3."


def _add_train_parser(subparsers):
    from keras_ninception.training.distribute import STRATEGIES
    from keras_ninception.training.precision import PRECISIONS
    from keras_ninception.training.recipes import OPTIMIZER_NAMES, RECIPES, SCHEDULES
    from keras_ninception.training.config import MODELS, TrainConfig

    defaults = TrainConfig()
    p = subparsers.add_parser(
        "train",
        help="train a model with model.fit (default: GoogLeNet with aux heads on the embedded digits)",
        description="Train NIN or GoogLeNet, log to TensorBoard and save the run under saved_models/.",
    )
    p.add_argument("--model", choices=MODELS, default=defaults.model)
    p.add_argument(
        "--variant",
        choices=("paper", "cifar"),
        default=None,
        help="GoogLeNet variant (default: 'cifar' below 79 px, else 'paper')",
    )
    p.add_argument(
        "--dataset",
        default=defaults.dataset,
        help="'digits' (embedded), a folder ROOT/<split>/<class>/*.jpg, or a TFDS name (default: %(default)s)",
    )
    p.add_argument("--data-dir", default=None, help="TFDS data directory")
    p.add_argument("--download", action="store_true", help="let TFDS download the dataset (needs network)")
    p.add_argument(
        "--recipe",
        choices=tuple(RECIPES),
        default=defaults.recipe,
        help="a named training recipe: optimizer, schedule, regularization and budget as data "
        "(keras_ninception.training.recipes); the flags below override it (default: %(default)s)",
    )
    p.add_argument("--epochs", type=int, default=None, help="training epochs (default: the recipe's; fast: 6)")
    p.add_argument("--batch-size", type=int, default=None, help="global batch size (default: the recipe's; fast: 64)")
    p.add_argument(
        "--learning-rate",
        type=float,
        default=None,
        help="peak learning rate (default: the recipe's; fast: 2e-3)",
    )
    p.add_argument(
        "--optimizer", default=None, choices=OPTIMIZER_NAMES, help="default: the recipe's (fast: adam)"
    )
    p.add_argument(
        "--schedule", default=None, choices=SCHEDULES, help="learning-rate schedule (default: the recipe's; fast: cosine)"
    )
    p.add_argument(
        "--warmup-epochs", type=float, default=None, help="warm-up of the cosine schedule (default: the recipe's; fast: 1)"
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
    p.add_argument("--aux-loss-weight", type=float, default=defaults.aux_loss_weight)
    p.add_argument("--no-aux", dest="aux_classifiers", action="store_false", help="GoogLeNet without aux heads")
    p.add_argument(
        "--no-batch-norm",
        dest="batch_norm",
        action="store_false",
        help="NIN: train the paper's form, without batch normalization",
    )
    p.add_argument(
        "--image-size", type=int, default=None, help="input side in pixels (default: 24 for digits, else 32)"
    )
    p.add_argument("--validation-fraction", type=float, default=defaults.validation_fraction)
    p.add_argument(
        "--augment",
        choices=("none", "crop", "crop_flip"),
        default=None,
        help="default: the recipe's (fast: the source's, crop for the digits)",
    )
    p.add_argument("--on-bad-image", choices=("error", "skip"), default=defaults.on_bad_image)
    p.add_argument("--seed", type=int, default=defaults.seed)
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


def _add_evaluate_parser(subparsers):
    p = subparsers.add_parser(
        "evaluate",
        help="per-head loss and accuracy of a saved run",
        description="Report loss and accuracy of every head of a saved run on one split.",
    )
    p.add_argument("run_dir")
    p.add_argument("--dataset", default=None, help="default: the run's dataset")
    p.add_argument("--split", default="test", choices=("train", "validation", "test"))
    p.add_argument("--data-dir", default=None)
    p.add_argument("--batch-size", type=int, default=None)
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
    from keras_ninception.training.heads import DEFAULT_TOLERANCE

    p = subparsers.add_parser(
        "prune",
        help="save a GoogLeNet run cut after one of its heads as a standalone run",
        description="Cut a trained GoogLeNet after the branch point of one head (aux1: "
        "inception_4a, aux2: inception_4d, main: the inference model) and save the network up "
        "to that head as a run folder that `ninception evaluate` reads like any other run.",
    )
    p.add_argument("run_dir")
    group = p.add_mutually_exclusive_group(required=True)
    group.add_argument("--head", choices=("aux1", "aux2", "main"))
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
    p.add_argument("--batch-size", type=int, default=None)
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
    )


def _add_profile_parser(subparsers):
    p = subparsers.add_parser(
        "profile",
        help="parameters, multiply-adds and activation memory per layer",
        description="Cost profile of a model: parameters, MACs (multiply-adds) and activation "
        "memory per layer and in total, per image, with the papers' two claims as numbers: "
        "what the 1×1 bottlenecks save (GoogLeNet) and what global average pooling saves.",
    )
    p.add_argument("model", choices=("googlenet", "nin"))
    p.add_argument("--variant", choices=("paper", "bn", "cifar"), default="paper", help="GoogLeNet variant")
    p.add_argument("--config", choices=("cifar10", "imagenet"), default="cifar10", help="NIN configuration")
    p.add_argument("--input-size", type=int, default=None, help="input side in pixels (default: the variant's)")
    p.add_argument("--channels", type=int, default=3)
    p.add_argument("--num-classes", type=int, default=None, help="default: 1000 GoogLeNet / NIN imagenet, 10 NIN cifar10")
    p.add_argument("--aux", action="store_true", help="GoogLeNet: include the aux heads (default: inference model)")
    p.add_argument("--naive-inception", action="store_true", help="GoogLeNet: naive modules (Figure 2a)")
    p.add_argument("--top", type=int, default=None, help="show only the N costliest layers")
    p.add_argument("--json", action="store_true")
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
    train(config, resume=args.resume, overwrite=args.overwrite)


def _evaluate(args):
    from keras_ninception.training.evaluate import evaluate_run
    from keras_ninception.training.heads import evaluation_name, format_evaluation, save_evaluation

    result = evaluate_run(
        args.run_dir,
        dataset=args.dataset,
        split=args.split,
        data_dir=args.data_dir,
        batch_size=args.batch_size,
        verbose=0 if args.json else "auto",  # keep stdout pure JSON
        latency_repeats=args.latency_repeats,
    )
    files = save_evaluation(result, args.output_dir, evaluation_name(args.split, args.dataset))
    if args.json:
        print(json.dumps({**result, "files": files}, indent=2))
        return
    print(format_evaluation(result))
    print(f"Report saved in {files['json']} and {files['png']}")


def _add_tune_parser(subparsers):
    from keras_ninception.training.config import MODELS
    from keras_ninception.tuning.run import BEST_MODEL_MODES, TUNERS

    p = subparsers.add_parser(
        "tune",
        help="hyperparameter search with KerasTuner (default: NIN on the embedded digits)",
        description="Search hyperparameters of NIN or GoogLeNet with KerasTuner (objective "
        "val_main_accuracy), print and save the trial table (trials.csv, trials.json), log every "
        "trial to TensorBoard with HParams, and save the best model like `ninception train`. "
        "A run definition (--config tuning/nin_digits.json) sets everything; flags override it.",
    )
    p.add_argument("--config", default=None, help="run definition JSON, e.g. tuning/nin_digits.json")
    p.add_argument("--name", default=None, help="run name (default: <model>-<dataset>-tune)")
    p.add_argument("--model", choices=MODELS, default=None, help="default: nin")
    p.add_argument("--variant", choices=("paper", "bn", "cifar"), default=None)
    p.add_argument("--dataset", default=None, help="'digits' (default), a folder, or a TFDS name")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--download", action="store_const", const=True, default=None)
    p.add_argument("--image-size", type=int, default=None)
    p.add_argument("--no-aux", dest="aux_classifiers", action="store_const", const=False, default=None)
    p.add_argument("--no-batch-norm", dest="batch_norm", action="store_const", const=False, default=None)
    p.add_argument("--tuner", choices=tuple(TUNERS), default=None, help="default: random")
    p.add_argument("--max-trials", type=int, default=None, help="default: 6")
    p.add_argument("--epochs", type=int, default=None, help="epochs per trial (Hyperband: max_epochs); default 3")
    p.add_argument("--executions-per-trial", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=None, help="the pipeline's batch size (default 64)")
    p.add_argument("--best-model", choices=BEST_MODEL_MODES, default=None, help="default: restore")
    p.add_argument("--num-best", type=int, default=None, help="rows of the printed table (default 10)")
    p.add_argument(
        "--augment",
        choices=("none", "crop", "crop_flip"),
        default=None,
        help="default: the recipe's (fast: the source's, crop for the digits)",
    )
    p.add_argument("--seed", type=int, default=None)
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
    tune(config, resume=args.resume, overwrite=args.overwrite)


def _add_export_parser(subparsers):
    from keras_ninception.deploy.export import FORMATS

    p = subparsers.add_parser(
        "export",
        help="export a run's inference model: .keras, SavedModel or LiteRT",
        description="Export the inference model of a run (aux heads dropped) to a folder with the "
        "model and metadata.json (class names, input size, preprocessing). saved_model takes "
        "uint8 images of any size and resizes and scales inside; litert takes uint8 images at the "
        "model's size and scales inside; keras takes preprocessed float32 images.",
    )
    p.add_argument("run_dir")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--output", default=None, help="export folder (default: RUN_DIR/export/<format>)")
    p.add_argument("--overwrite", action="store_true", help="replace the export in --output")
    p.set_defaults(func=_export)


def _export(args):
    from keras_ninception.deploy.export import export_run

    path = export_run(args.run_dir, args.format, args.output, overwrite=args.overwrite)
    print(f"Exported {args.format} to {path}")


def _add_predict_parser(subparsers):
    p = subparsers.add_parser(
        "predict",
        help="top-k classes of JPEG/PNG images with a run or an export",
        description="Print the top-k classes and probabilities of each image (JPEG or PNG, any "
        "size, gray or RGB: converted to the model's channels) with a run folder, a .keras or "
        ".tflite file, or an export folder. Every file is checked before anything is predicted.",
    )
    p.add_argument("model", metavar="RUN_DIR_OR_EXPORT")
    p.add_argument("images", nargs="+", metavar="IMAGE")
    p.add_argument("--top-k", type=int, default=None, help="classes per image (default: 5, at most the class count)")
    p.add_argument("--json", action="store_true", help="print the result as JSON")
    p.set_defaults(func=_predict)


def _predict(args):
    from keras_ninception.deploy.predict import format_json, format_predictions, predict_files

    results = predict_files(args.model, args.images, args.top_k)
    print(format_json(results) if args.json else format_predictions(results))


def build_parser():
    parser = argparse.ArgumentParser(prog="ninception", description=DESCRIPTION)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_train_parser(subparsers)
    _add_evaluate_parser(subparsers)
    _add_prune_parser(subparsers)
    _add_profile_parser(subparsers)
    _add_tune_parser(subparsers)
    _add_export_parser(subparsers)
    _add_predict_parser(subparsers)
    return parser


def main(argv=None):
    """Entry point of the `ninception` console script. Returns the exit status."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 2
    try:
        args.func(args)
    except (ValueError, OSError, RuntimeError, FloatingPointError) as e:
        # The package's own errors (bad arguments, data, run folders, a failed download, a
        # NaN loss); anything else is a bug and keeps its traceback.
        print(f"ninception {args.command}: error: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
