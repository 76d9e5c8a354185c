"""The paper's NIN (no batch normalization) on the digits: training loss of the first 100 steps.

Before/after evidence for the dead-NIN root cause (see `keras_ninception.layers.blocks.apply_conv`):
each case builds `build_nin(batch_norm=False)` at 24 px, optionally re-initializes every
convolution kernel with another initializer (Keras' default Glorot-uniform was the builders'
before the fix), compiles it with a recipe's optimizer and schedule, and records the loss of
each of the first `--steps` training steps. A network whose class maps all fell below zero
shows the loss pinned at ln(10) = 2.302585 with no gradient left.

Writes `benchmarks/results/nin_first_steps.{json,md,png}`.

Usage:
    python3.11 benchmarks/nin_first_steps.py
"""

import argparse
import json
import math
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = os.path.dirname(os.path.abspath(__file__))

# (label, kernel initializer or None for the builder's, TrainConfig fields of the optimizer)
CASES = (
    ("before: Glorot-uniform, fast recipe (Adam 2e-3)", "glorot_uniform", {"recipe": "fast"}),
    ("He-normal, fast recipe (Adam 2e-3)", None, {"recipe": "fast"}),
    ("after: He-normal, fast-plain recipe (the form's default: Adam 3e-4)", None, {}),
)


def run_case(initializer, fields, steps, seed):
    import keras

    from keras_ninception.data import load_dataset
    from keras_ninception.models import build_nin
    from keras_ninception.training.compile import compile_model
    from keras_ninception.training.config import TrainConfig
    from keras_ninception.training.schedules import make_schedule

    keras.utils.set_random_seed(seed)
    config = TrainConfig(**{"model": "nin", "batch_norm": False, "dataset": "digits", **fields}).validate().resolved()
    splits = load_dataset("digits", image_size=24, batch_size=config.batch_size, seed=seed)
    model = build_nin(input_shape=splits.input_shape, num_classes=10, batch_norm=False)
    if initializer is not None:
        for layer in model.layers:
            if isinstance(layer, keras.layers.Conv2D):
                layer.kernel.assign(keras.initializers.get(initializer)(layer.kernel.shape))
    steps_per_epoch = len(splits.train)
    compile_model(model, optimizer=config.optimizer, learning_rate=make_schedule(config, steps_per_epoch),
                  weight_decay=config.weight_decay)
    losses = []

    class Record(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            losses.append(float(logs["loss"]))
            if len(losses) >= steps:
                self.model.stop_training = True

    epochs = math.ceil(steps / steps_per_epoch)
    model.fit(splits.train, epochs=epochs, verbose=0, callbacks=[Record()])
    accuracy = model.evaluate(splits.validation, verbose=0, return_dict=True)["main_accuracy"]
    # Keras logs the running mean of the epoch's losses; turn it back into per-step losses.
    per_step, previous = [], 0.0
    for i, mean in enumerate(losses):
        position = i % steps_per_epoch
        per_step.append(mean * (position + 1) - previous * position)
        previous = mean if position + 1 < steps_per_epoch else 0.0
    return {"loss": per_step[:steps], "validation_accuracy": float(accuracy), "config": {
        k: getattr(config, k) for k in ("optimizer", "learning_rate", "schedule", "epochs", "batch_size")}}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out-dir", default=os.path.join(HERE, "results"))
    args = parser.parse_args(argv)
    from keras_ninception.training.precision import cpu_description, cpu_summary

    results = {label: run_case(init, fields, args.steps, args.seed) for label, init, fields in CASES}
    machine = cpu_description()
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "nin_first_steps.json"), "w") as f:
        json.dump({**results, "machine": machine}, f, indent=1)
    lines = ["# The paper's NIN on the digits: loss of the first training steps", "",
             "`python3.11 benchmarks/nin_first_steps.py`; chance is ln(10) = 2.3026.", "",
             f"CPU: {cpu_summary(machine)}", "",
             "| case | step 1 | step 10 | step 50 | step 100 | validation accuracy after |", "|---|---:|---:|---:|---:|---:|"]
    for label, r in results.items():
        loss = r["loss"]
        pick = [loss[i - 1] if len(loss) >= i else float("nan") for i in (1, 10, 50, 100)]
        lines.append(f"| {label} | " + " | ".join(f"{v:.4f}" for v in pick) + f" | {r['validation_accuracy']:.3f} |")
    with open(os.path.join(args.out_dir, "nin_first_steps.md"), "w") as f:
        f.write("\n".join(lines) + "\n")

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4))
    for label, r in results.items():
        ax.plot(range(1, len(r["loss"]) + 1), r["loss"], label=label)
    ax.axhline(math.log(10), color="gray", linestyle=":", label="ln(10)")
    ax.set_xlabel("training step")
    ax.set_ylabel("training loss")
    ax.set_title("NIN without batch normalization, digits 24 px")
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(os.path.join(args.out_dir, "nin_first_steps.png"), dpi=110)
    print("\n".join(lines))


if __name__ == "__main__":
    main()
