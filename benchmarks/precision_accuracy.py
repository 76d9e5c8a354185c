"""Test accuracy with the fast default precision against float32: same runs, several seeds.

Usage:
    python benchmarks/precision_accuracy.py                          # GoogLeNet on the digits, 4 seeds
    python benchmarks/precision_accuracy.py --dataset ROOT --epochs 3 --seeds 0 1 \\
        --batch-size 64 --learning-rate 0.002 --name cifar           # an image folder with a test split

Trains `ninception train` runs (`TrainConfig` + `train`, so exactly what the command does)
that differ only in `precision`: `"auto"` (the package default: `mixed_bfloat16` on CPUs with
AVX512-BF16/AMX, `mixed_float16` on GPUs) and `"float32"`, for each seed, interleaved (seed 0
auto, seed 0 float32, seed 1 auto, ...). The dataset needs a test split (the digits have one;
for a folder, `ROOT/test/<class>/`), which no run sees before its final evaluation.

Writes `precision_accuracy[_NAME].json` and `.md` to `--out` (default `benchmarks/results`):
every run's per-head test accuracy, wall seconds and resolved policy; per precision the mean
and sample standard deviation over seeds; and the difference of the means with the seed-to-seed
spread beside it. "Within noise" means the difference is smaller than the spread of either.
This is a benchmark, not a test: it takes minutes to hours.
"""

import argparse
import json
import os
import statistics
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PRECISIONS = ("auto", "float32")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="digits", help="as `ninception train --dataset` (default: digits)")
    parser.add_argument("--model", default="googlenet", choices=("googlenet", "nin"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--epochs", type=int, default=None, help="default: TrainConfig's")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--learning-rate", type=float, default=None)
    parser.add_argument("--image-size", type=int, default=None)
    parser.add_argument("--name", default=None, help="suffix of the output files (default: none)")
    parser.add_argument("--keep-runs", default=None, help="keep the run folders under this folder")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    return parser.parse_args(argv)


def summarize(values):
    return {
        "mean": statistics.mean(values),
        "std": statistics.stdev(values) if len(values) > 1 else None,
        "min": min(values),
        "max": max(values),
    }


def main(argv=None):
    args = parse_args(argv)
    import keras
    import tensorflow as tf

    from keras_ninception import TrainConfig, train

    overrides = {
        key: value
        for key, value in {
            "epochs": args.epochs, "batch_size": args.batch_size,
            "learning_rate": args.learning_rate, "image_size": args.image_size,
        }.items()
        if value is not None
    }
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        root = args.keep_runs or tmp
        for seed in args.seeds:
            for precision in PRECISIONS:
                run_dir = os.path.join(root, f"{args.model}-{precision}-seed{seed}")
                config = TrainConfig(
                    model=args.model, dataset=args.dataset, seed=seed, precision=precision,
                    run_dir=run_dir, **overrides,
                )
                start = time.perf_counter()
                result = train(config, verbose=0)
                seconds = time.perf_counter() - start
                with open(os.path.join(run_dir, "config.json")) as f:
                    policy = json.load(f)["train_config"]["precision"]
                test = result["metrics"].get("test")
                if not test:
                    raise SystemExit(f"{args.dataset!r} has no test split: nothing to compare.")
                heads = {head: float(values["accuracy"]) for head, values in test["heads"].items()}
                runs.append({"seed": seed, "precision": precision, "policy": policy, "test_accuracy": heads,
                             "seconds": seconds})
                print(f"seed {seed} {precision} ({policy}): " + ", ".join(f"{h} {a:.4f}" for h, a in heads.items())
                      + f"  [{seconds:.0f} s]", flush=True)

    report = build_report(runs, args.dataset, args.model, args.seeds, overrides)
    report["versions"] = {"python": sys.version.split()[0], "tensorflow": tf.__version__, "keras": keras.__version__}
    suffix = f"_{args.name}" if args.name else ""
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, f"precision_accuracy{suffix}.json"), "w") as f:
        json.dump(report, f, indent=2)
        f.write("\n")
    text = markdown(report)
    with open(os.path.join(args.out, f"precision_accuracy{suffix}.md"), "w") as f:
        f.write(text)
    print(text)
    return report


def machine():
    """The CPU (model, cores, bf16/AMX flags) beside the figures: `precision.cpu_description`."""
    from keras_ninception.training.precision import cpu_description

    return cpu_description()


def cpu_line(machine):
    """The report's CPU line; reports written before the flags were recorded give what they have."""
    if "model" not in machine:
        return f"{machine.get('processor', 'unknown')}, {machine.get('cpu_count')} cores, flags not recorded"
    from keras_ninception.training.precision import cpu_summary

    return cpu_summary(machine)


def build_report(runs, dataset, model, seeds, overrides):
    """The summary of `runs` (one dict per run: seed, precision, policy, test_accuracy, seconds)."""
    heads = list(runs[0]["test_accuracy"])
    summary = {
        precision: {
            head: summarize([r["test_accuracy"][head] for r in runs if r["precision"] == precision]) for head in heads
        }
        for precision in PRECISIONS
    }
    for precision in PRECISIONS:
        summary[precision]["seconds"] = summarize([r["seconds"] for r in runs if r["precision"] == precision])
    return {
        "benchmark": "precision_accuracy",
        "dataset": dataset, "model": model, "seeds": list(seeds), "overrides": overrides,
        "default_policy": next(r["policy"] for r in runs if r["precision"] == "auto"),
        "machine": machine(),
        "runs": runs,
        "summary": summary,
        "difference_of_means_auto_minus_float32": {
            head: summary["auto"][head]["mean"] - summary["float32"][head]["mean"] for head in heads
        },
    }


def markdown(report):
    heads = list(report["difference_of_means_auto_minus_float32"])
    seeds = report["seeds"]
    lines = [
        f"# Test accuracy: default precision (`{report['default_policy']}`) vs float32",
        "",
        f"{report['model']} on `{report['dataset']}`, settings {report['overrides'] or 'TrainConfig defaults'}, "
        f"seeds {', '.join(map(str, seeds))}; TensorFlow {report.get('versions', {}).get('tensorflow')}, "
        f"Keras {report.get('versions', {}).get('keras')}; CPU: {cpu_line(report['machine'])}.",
        "",
        "| precision | head | " + " | ".join(f"seed {s}" for s in seeds) + " | mean | std |",
        "|---|---|" + "---:|" * (len(seeds) + 2),
    ]
    for precision in PRECISIONS:
        for head in heads:
            values = [
                next(r["test_accuracy"][head] for r in report["runs"] if r["seed"] == s and r["precision"] == precision)
                for s in seeds
            ]
            stats = report["summary"][precision][head]
            std = "-" if stats["std"] is None else f"{stats['std']:.4f}"
            lines.append(
                f"| {precision} | {head} | " + " | ".join(f"{v:.4f}" for v in values) + f" | {stats['mean']:.4f} | {std} |"
            )
    lines += ["", "| head | mean difference (default - float32) |", "|---|---:|"]
    for head, value in report["difference_of_means_auto_minus_float32"].items():
        lines.append(f"| {head} | {value:+.4f} |")
    seconds = {p: report["summary"][p]["seconds"]["mean"] for p in PRECISIONS}
    lines += ["", f"Mean wall time per run: default {seconds['auto']:.0f} s, float32 {seconds['float32']:.0f} s "
              f"({seconds['float32'] / seconds['auto']:.2f}x)."]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
