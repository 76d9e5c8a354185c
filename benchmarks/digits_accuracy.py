"""Test accuracy of both models on the embedded digits with the default budget.

Usage:
    python benchmarks/digits_accuracy.py [--out benchmarks/results] [--models googlenet nin]

Trains each model exactly as `ninception train --model M` does (the `TrainConfig`
defaults), in a temporary run folder, and writes `digits_accuracy.json` and
`digits_accuracy.md` with the per-head test accuracy, the wall time in seconds, and the
target (>= 0.97 test accuracy of the main head). This is a benchmark, not a test: it
takes minutes and its times depend on the machine.
"""

import argparse
import json
import os
import platform
import sys
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

TARGET = 0.97


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "results"))
    parser.add_argument("--models", nargs="+", default=["googlenet", "nin"])
    args = parser.parse_args(argv)

    import keras

    from keras_ninception import TrainConfig, train
    from keras_ninception.training.precision import cpu_description, cpu_summary

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for model in args.models:
            config = TrainConfig(model=model, run_dir=os.path.join(tmp, model))
            start = time.perf_counter()
            result = train(config, verbose=2)
            seconds = time.perf_counter() - start
            test = result["metrics"]["test"]
            rows.append(
                {
                    "model": model,
                    "variant": config.resolved_variant(),
                    "epochs": config.epochs,
                    "image_size": config.image_size,
                    "test_examples": test["num_examples"],
                    "test_accuracy": {h: m["accuracy"] for h, m in test["heads"].items()},
                    "wall_seconds": round(seconds, 1),
                    "meets_target": test["heads"]["main"]["accuracy"] >= TARGET,
                }
            )
    report = {
        "benchmark": "digits_accuracy",
        "target_main_test_accuracy": TARGET,
        "machine": {**cpu_description(), "platform": platform.platform()},
        "versions": {"python": sys.version.split()[0], "keras": keras.__version__},
        "results": rows,
    }
    os.makedirs(args.out, exist_ok=True)
    with open(os.path.join(args.out, "digits_accuracy.json"), "w") as f:
        json.dump(report, f, indent=2)
    lines = [
        "| model | variant | epochs | test images | main | aux1 | aux2 | wall s | >= 0.97 |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        acc = {h: f"{a:.4f}" for h, a in r["test_accuracy"].items()}
        lines.append(
            f"| {r['model']} | {r['variant'] or '-'} | {r['epochs']} | {r['test_examples']} | "
            f"{acc['main']} | {acc.get('aux1', '-')} | {acc.get('aux2', '-')} | "
            f"{r['wall_seconds']} | {r['meets_target']} |"
        )
    table = "\n".join(lines + ["", f"CPU: {cpu_summary(report['machine'])}"])
    with open(os.path.join(args.out, "digits_accuracy.md"), "w") as f:
        f.write(table + "\n")
    print(table)
    return 0 if all(r["meets_target"] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
