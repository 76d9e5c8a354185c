"""Paper-level CIFAR-10 accuracy: train each form on the shared JPEG folder, test on held-out images.

The shared tar (`../shared/data/cifar10-jpg-train.tar`) holds CIFAR-10's 50,000 training
images as `train/<class>/NNNN.jpg`. This benchmark lays out an image folder beside it:
`train/` with every image of a class but its last 500 (in sorted file order), and `test/`
with those last 500 per class, 5,000 images never used for training or model selection
(validation is carved from `train/` by `--validation-fraction`). The files are hard links
(symbolic links where the file system refuses them), so nothing is copied twice.

Each form is one `ninception train` run (`keras_ninception.training.run.train`) in
`WORK_DIR/runs/<form>` (outside the repository), with its recipe from `FORMS`. After every
epoch a callback evaluates the held-out test split and appends a row to
`WORK_DIR/runs/<form>/test_curve.jsonl`
(epoch, cumulative training seconds, test top-1 per head): the time-to-accuracy curve. The
test rows are written for the curve only; nothing reads them during training.

Resuming: start the same command again. A run killed mid-way resumes from its last
completed epoch (the run folder's `BackupAndRestore` state), and the curve goes on from its
last row (training seconds are summed per epoch, so time spent stopped does not count). A
complete run is not trained again; its results are read back.

Writes `OUT_DIR/cifar_accuracy.json`, `OUT_DIR/cifar_accuracy.md` and
`OUT_DIR/time_to_accuracy.png` after every form (and with `--report-only`, from what the
runs hold so far).

Usage:
    python3.11 benchmarks/cifar_accuracy.py --forms nin-bn                   # one form
    python3.11 benchmarks/cifar_accuracy.py --forms nin-bn nin-paper googlenet-cifar
    python3.11 benchmarks/cifar_accuracy.py --report-only                    # tables from the runs so far
"""

import argparse
import json
import os
import sys
import tarfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_TAR = os.path.join(HERE, "..", "..", "shared", "data", "cifar10-jpg-train.tar")
DEFAULT_OUT = os.path.join(HERE, "results", "cifar")
TEST_PER_CLASS = 500

# Each form: the TrainConfig fields of its run (the recipe and what the form is).
FORMS = {
    "nin-bn": {"model": "nin", "batch_norm": True, "recipe": "cifar"},
    # The recipe's 300 epochs cut to 60, with its two rate cuts kept at 50% and 75% of the run
    # (its own decay_epochs, 150 and 225, would never be reached).
    "nin-paper": {"model": "nin", "batch_norm": False, "recipe": "nin-paper", "epochs": 60, "decay_epochs": (30, 45)},
    # The paper's NIN with the recipe the CLI gives it (`fast-plain`: Adam 3e-4, warm-up, cosine,
    # the folder's crop + flip), against the paper's solver above.
    "nin-paper-fast-plain": {"model": "nin", "batch_norm": False, "recipe": "fast-plain"},
    "googlenet-cifar": {"model": "googlenet", "variant": "cifar", "recipe": "cifar"},
}
# The paper figures each form is measured against (CIFAR-10 test accuracy).
TARGETS = {"nin-bn": 0.896, "nin-paper": 0.85, "nin-paper-fast-plain": 0.85, "googlenet-cifar": 0.92}


def prepare_folder(tar_path, work_dir):
    """Extracts the tar once and lays out `work_dir/folder/{train,test}/<class>/`.

    Returns the folder's path. The split is by sorted file name within each class: the last
    `TEST_PER_CLASS` files of a class are its test images.
    """
    folder = os.path.join(work_dir, "folder")
    done = os.path.join(folder, ".complete")
    if os.path.exists(done):
        return folder
    source = os.path.join(work_dir, "extracted")
    if not os.path.isdir(os.path.join(source, "train")):
        if not os.path.isfile(tar_path):
            raise SystemExit(f"cifar_accuracy: error: the CIFAR-10 tar is not at {tar_path!r}; pass --tar.")
        os.makedirs(source, exist_ok=True)
        with tarfile.open(tar_path) as tar:
            tar.extractall(source, filter="data")
    train_root = os.path.join(source, "train")
    for class_name in sorted(os.listdir(train_root)):
        files = sorted(os.listdir(os.path.join(train_root, class_name)))
        for split, names in (("train", files[:-TEST_PER_CLASS]), ("test", files[-TEST_PER_CLASS:])):
            target_dir = os.path.join(folder, split, class_name)
            os.makedirs(target_dir, exist_ok=True)
            for name in names:
                src, dst = os.path.join(train_root, class_name, name), os.path.join(target_dir, name)
                if not os.path.exists(dst):
                    try:
                        os.link(src, dst)
                    except OSError:
                        os.symlink(src, dst)
    open(done, "w").close()
    return folder


def make_test_curve_callback(folder, config, curve_path):
    """A Keras callback that appends the held-out test accuracy after each epoch."""
    import keras

    from keras_ninception.data import load_dataset
    from keras_ninception.training.precision import cpu_summary

    class TestCurve(keras.callbacks.Callback):
        def on_train_begin(self, logs=None):
            names = list(self.model.output_names) if len(self.model.outputs) > 1 else None
            self.test = load_dataset(
                folder, image_size=config.image_size or 32, batch_size=256, output_names=names,
                validation_fraction=config.validation_fraction,
            ).test
            self.rows = read_curve(curve_path)
            self.seconds = self.rows[-1]["train_seconds"] if self.rows else 0.0

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            self.seconds += time.perf_counter() - self.start
            results = self.model.evaluate(self.test, return_dict=True, verbose=0)
            heads = {
                k[: -len("_accuracy")]: float(v) for k, v in results.items() if k.endswith("_accuracy")
            }
            # The CPU of each epoch: a run resumed on another machine has epochs of both.
            row = {"epoch": epoch + 1, "train_seconds": round(self.seconds, 1), "test_accuracy": heads,
                   "cpu": cpu_summary()}
            self.rows = [r for r in self.rows if r["epoch"] < epoch + 1] + [row]
            tmp = curve_path + ".tmp"
            with open(tmp, "w") as f:
                f.writelines(json.dumps(r) + "\n" for r in self.rows)
            os.replace(tmp, curve_path)
            print(f"  epoch {epoch + 1}: test accuracy {heads} after {self.seconds:.0f} s of training", flush=True)

    return TestCurve()


def read_curve(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def run_form(form, folder, work_dir, epochs, batch_size, validation_fraction, seed):
    from keras_ninception.training.config import TrainConfig
    from keras_ninception.training.run import train

    run_dir = os.path.join(work_dir, "runs", form)
    fields = dict(FORMS[form])
    config = TrainConfig(
        dataset=folder, run_dir=run_dir, seed=seed, validation_fraction=validation_fraction,
        image_summary_freq=0, **fields,
    )
    if epochs is not None:
        config.epochs = epochs
        if fields.get("decay_epochs"):  # the form's cuts stay at the same fractions of the run
            config.decay_epochs = tuple(round(e * epochs / fields["epochs"], 2) for e in fields["decay_epochs"])
    if batch_size is not None:
        config.batch_size = batch_size
    if os.path.exists(os.path.join(run_dir, "model.keras")):
        print(f"{form}: complete in {run_dir}; reading its results.")
        return
    interrupted = os.path.exists(os.path.join(run_dir, "config.json"))
    curve = os.path.join(run_dir, "test_curve.jsonl")
    os.makedirs(run_dir, exist_ok=True) if interrupted else None
    callback = make_test_curve_callback(folder, config, curve)
    print(f"{form}: {'resuming' if interrupted else 'training'} in {run_dir}", flush=True)
    train(config, resume=interrupted, verbose=2, callbacks=[callback])


def summarize(work_dir):
    """Per form: test top-1 per head, epochs, wall time, images/s, and the curve."""
    results = {}
    runs = os.path.join(work_dir, "runs")
    for form in sorted(os.listdir(runs)) if os.path.isdir(runs) else []:
        run_dir = os.path.join(runs, form)
        curve = read_curve(os.path.join(run_dir, "test_curve.jsonl"))
        try:
            with open(os.path.join(run_dir, "config.json")) as f:
                saved = json.load(f)
        except OSError:
            continue
        train_config = saved["train_config"]
        entry = {
            "complete": os.path.exists(os.path.join(run_dir, "model.keras")),
            "epochs_done": curve[-1]["epoch"] if curve else 0,
            "epochs_planned": train_config["epochs"],
            "train_seconds": curve[-1]["train_seconds"] if curve else 0.0,
            "train_images": saved["num_examples"]["train"],
            "test_images": saved["num_examples"].get("test"),
            "config": train_config,
            "curve": curve,
            "target": TARGETS.get(form),
            "cpus": sorted({row["cpu"] for row in curve if "cpu" in row}),
        }
        if curve:
            entry["test_accuracy"] = curve[-1]["test_accuracy"]
            entry["best_epoch_test_accuracy_main"] = max(r["test_accuracy"].get("main", 0) for r in curve)
            entry["images_per_second"] = round(entry["train_images"] * entry["epochs_done"] / entry["train_seconds"], 1)
        metrics_path = os.path.join(run_dir, "metrics.json")
        if os.path.exists(metrics_path):
            with open(metrics_path) as f:
                entry["metrics"] = json.load(f)
        results[form] = entry
    return results


def merge_with_report(out_dir, results):
    """`results` plus the forms of the report already in `out_dir` that have no run folder here.

    Run folders live outside the repository (`--work-dir`, /tmp by default) and do not outlive
    the machine; the committed report is what remains of a form trained elsewhere, so a new
    report keeps it rather than dropping it. A form measured before the curve rows named their
    CPU takes the old report's machine.
    """
    from keras_ninception.training.precision import cpu_summary

    path = os.path.join(out_dir, "cifar_accuracy.json")
    try:
        with open(path) as f:
            old = json.load(f)
    except (OSError, ValueError):
        return results
    merged = {}
    for form, entry in old.get("forms", {}).items():
        if form not in results:
            entry = dict(entry)
            if not entry.get("cpus") and "cpu" in old:
                entry["cpus"] = [cpu_summary(old["cpu"])]
            merged[form] = entry
    merged.update(results)
    return dict(sorted(merged.items()))


def form_command(form, entry):
    """The command that trains `form` as `entry` (a report entry) records it: with the
    `--epochs` (the form's rate cuts scale with it) and `--batch-size` its run used."""
    config = entry.get("config", {})
    command = f"python3.11 benchmarks/cifar_accuracy.py --forms {form} --epochs {entry['epochs_planned']}"
    if config.get("batch_size") is not None:
        command += f" --batch-size {config['batch_size']}"
    return command


def write_report(out_dir, results, command):
    results = merge_with_report(out_dir, results)
    for form, entry in results.items():
        entry["command"] = form_command(form, entry)
    os.makedirs(out_dir, exist_ok=True)
    report = {"command": command, "forms": results}
    with open(os.path.join(out_dir, "cifar_accuracy.json"), "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
    lines = [
        "# CIFAR-10 accuracy on 5,000 held-out images (the last 500 per class of the shared JPEG train split)",
        "",
        "Commands (each resumes an interrupted run): "
        + "; ".join(f"{form}: `{entry['command']}`" for form, entry in results.items()),
        "Training time is the sum of the epochs' wall time on this machine, as loaded as it was (the"
        " first epoch includes decoding the JPEGs into the in-memory cache).",
        "The CPU each form trained on is under the table.",
        "",
        "| form | settings | epochs done / planned | test top-1 per head (last epoch) | target (main) | training time | images/s |",
        "|---|---|---|---|---|---:|---:|",
    ]
    for form, r in results.items():
        heads = " / ".join(f"{k} {v:.4f}" for k, v in r.get("test_accuracy", {}).items()) or "-"
        target = f"{r['target']:.3f}" if r["target"] else "-"
        state = "" if r["complete"] else " (running or stopped)"
        lines.append(
            f"| {form} | {settings(r['config'])} | {r['epochs_done']} / {r['epochs_planned']}{state} | {heads} "
            f"| {target} | {r['train_seconds'] / 60:.1f} min | {r.get('images_per_second', '-')} |"
        )
    lines += ["", "Test accuracy after each epoch (main head), and training seconds:", ""]
    for form, r in results.items():
        points = ", ".join(f"{row['epoch']}: {row['test_accuracy'].get('main', 0):.4f} ({row['train_seconds']:.0f} s)" for row in r["curve"])
        lines.append(f"- {form}: {points or '-'}")
    lines += ["", "CPU of each form's epochs:", ""]
    lines += [f"- {form}: {'; '.join(r.get('cpus') or ['not recorded'])}" for form, r in results.items()]
    with open(os.path.join(out_dir, "cifar_accuracy.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    plot_curves(results, os.path.join(out_dir, "time_to_accuracy.png"))


def settings(config):
    """`cifar: sgd 0.1 cosine, wd 0.005, crop_flip, batch 128` from a saved train config."""
    return (
        f"{config.get('recipe') or '-'}: {config.get('optimizer')} {config.get('learning_rate')} "
        f"{config.get('schedule') or 'cosine'}, wd {config.get('weight_decay')}, {config.get('augment')}, "
        f"batch {config.get('batch_size')}"
    )


def plot_curves(results, path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.5))
    for form, r in results.items():
        if not r["curve"]:
            continue
        minutes = [row["train_seconds"] / 60 for row in r["curve"]]
        accuracy = [row["test_accuracy"].get("main", float("nan")) for row in r["curve"]]
        (line,) = ax.plot(minutes, accuracy, marker="o", markersize=3, label=form)
        if r["target"]:
            ax.axhline(r["target"], color=line.get_color(), linestyle=":", linewidth=1)
    ax.set_xlabel("training time (minutes, this machine)")
    ax.set_ylabel("test top-1 (main head, 5,000 held-out images)")
    ax.set_title("CIFAR-10: time to accuracy (dotted: the paper's figure)")
    ax.grid(alpha=0.3)
    if ax.get_lines():  # no form has a curve yet: an empty plot, without matplotlib's legend warning
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    parser.add_argument("--forms", nargs="+", choices=sorted(FORMS), default=["nin-bn"])
    parser.add_argument("--tar", default=DEFAULT_TAR, help="the CIFAR-10 JPEG tar")
    parser.add_argument("--work-dir", default="/tmp/ninception-cifar10", help="where the tar is extracted and the runs live (resume state)")
    parser.add_argument("--out-dir", default=DEFAULT_OUT)
    parser.add_argument("--epochs", type=int, default=None,
                        help="override the form's epochs (its learning-rate cuts scale with them)")
    parser.add_argument("--batch-size", type=int, default=None, help="override the recipe's batch size")
    parser.add_argument("--validation-fraction", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--report-only", action="store_true", help="only write the report from the runs so far")
    args = parser.parse_args(argv)
    command = "python3.11 benchmarks/cifar_accuracy.py " + " ".join(argv if argv is not None else sys.argv[1:])
    if not args.report_only:
        folder = prepare_folder(args.tar, args.work_dir)
        for form in args.forms:
            run_form(form, folder, args.work_dir, args.epochs, args.batch_size, args.validation_fraction, args.seed)
            write_report(args.out_dir, summarize(args.work_dir), command)
    write_report(args.out_dir, summarize(args.work_dir), command)


if __name__ == "__main__":
    main()
