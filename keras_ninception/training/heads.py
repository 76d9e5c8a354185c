"""Deep supervision you can see and use: per-head reports and runs pruned to one head.

`evaluate_run` measures every head (accuracy, parameters and latency of the network up to
it); this module writes that report (JSON + a PNG bar chart), picks the smallest head that is
about as accurate as the best, and saves a run pruned to one head (`prune_run`) as a
standalone run folder that `evaluate_run`, `load_run` and `to_inference_model` take like any
other.
"""

import dataclasses
import logging
import os

import keras

from keras_ninception.checks import check_number
from keras_ninception.models import HEAD_BRANCH_POINTS, prune_to_head, to_inference_model
from keras_ninception.models.prune import HEADS
from keras_ninception.options import DEFAULT_TOLERANCE  # noqa: F401 (re-exported)
from keras_ninception.training.compile import compile_model
from keras_ninception.training.evaluate import (
    SPLITS,
    compile_for_evaluation,
    load_run,
    load_run_splits,
)
from keras_ninception.training.config import slug
from keras_ninception.training.run import evaluate_splits, format_accuracy, per_head_metrics
from keras_ninception.training.run_folder import (
    check_run_folder,
    clear_run_folder,
    replace_atomic,
    save_model_atomic,
    write_json_atomic,
)

logger = logging.getLogger(__name__)
EVALUATION_DIR = "evaluation"
# What a pruned run folder holds; `--overwrite` replaces only these.
PRUNED_RUN_FILES = ("config.json", "model.keras", "inference.keras", "metrics.json", EVALUATION_DIR)
# `auto`: a head within 1 point (absolute) of the best head's top-1 accuracy is good enough.
# Accuracies are float32 ratios (rounding error up to ~6e-8): a head exactly `tolerance` below
# the best still counts, with this slack.
_EPSILON = 1e-6


def format_evaluation(result):
    """The per-head table of an `evaluate_run` result, as text."""
    latency = result.get("latency") or {}
    timing = "latency not measured"
    if latency.get("repeats"):
        timing = (
            f"latency: median of {latency['repeats']} predict_on_batch calls on a batch of "
            f"{latency.get('batch_size')} ({latency.get('device')})"
        )
    lines = [
        f"{result['dataset']} / {result['split']} ({result['num_examples']} images), total loss "
        f"{result['loss']:.4f}; {timing}",
        f"{'head':<6} {'loss':>8} {'top-1':>7} {'top-' + str(result.get('top_k', 5)):>7} "
        f"{'params':>12} {'M MACs':>8} {'ms/batch':>9} {'ms/image':>9}",
    ]
    for name, m in result["heads"].items():
        per_batch, per_image = m.get("latency_ms_per_batch"), m.get("latency_ms_per_image")
        lines.append(
            f"{name:<6} {m['loss']:>8.4f} {m['accuracy']:>7.4f} {m.get('top5_accuracy', float('nan')):>7.4f} "
            f"{m.get('params', 0):>12,} {m.get('macs_per_image', 0) / 1e6:>8.1f} "
            f"{'-' if per_batch is None else f'{per_batch:.2f}':>9} "
            f"{'-' if per_image is None else f'{per_image:.3f}':>9}"
        )
    if result.get("pruned_from"):
        source = result["pruned_from"]
        lines.append(f"(a run pruned to {source.get('head')!r} of {source.get('run_dir')})")
    return "\n".join(lines)


def plot_heads(result, path):
    """A PNG bar chart of an `evaluate_run` result: per head, top-1 and top-5 accuracy,
    parameters (millions) and latency (ms per image); written atomically to `path`. Without
    latencies (`latency_repeats=0`) the latency panel is left out (two panels, 8 inches wide).
    Returns the `matplotlib` figure.

    Uses Matplotlib's object API with the Agg canvas (no display, no global pyplot state).
    Heads are drawn from the smallest network to the largest.
    """
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    heads = sorted(result["heads"].items(), key=lambda item: item[1].get("params", 0))
    names = [name for name, _ in heads]
    positions = list(range(len(names)))
    times = [m.get("latency_ms_per_image") for _, m in heads]
    measured = all(t is not None for t in times)
    figure = Figure(figsize=(12 if measured else 8, 4), dpi=100, layout="constrained")
    FigureCanvasAgg(figure)
    accuracy, params, *latency = figure.subplots(1, 3 if measured else 2)

    width = 0.38
    top_k = result.get("top_k", 5)
    for offset, key, label in ((-width / 2, "accuracy", "top-1"), (width / 2, "top5_accuracy", f"top-{top_k}")):
        values = [m.get(key, 0.0) for _, m in heads]
        bars = accuracy.bar([p + offset for p in positions], values, width, label=label)
        accuracy.bar_label(bars, fmt="%.3f", fontsize=8)
    accuracy.set(title="accuracy", ylim=(0, 1.25), xticks=positions, xticklabels=names)
    accuracy.legend(loc="upper center", ncols=2, fontsize=8)

    bars = params.bar(positions, [m.get("params", 0) / 1e6 for _, m in heads], color="tab:green")
    labels = [f"{m.get('params', 0) / 1e6:.2f} M\n{m.get('macs_per_image', 0) / 1e6:.0f} M MACs" for _, m in heads]
    params.bar_label(bars, labels=labels, fontsize=8)
    params.set(title="parameters (millions); MACs per image", xticks=positions, xticklabels=names)
    params.margins(y=0.15)

    if measured:
        (latency,) = latency
        bars = latency.bar(positions, times, color="tab:orange")
        latency.bar_label(bars, fmt="%.3f", fontsize=8)
        info = result.get("latency") or {}
        latency.set(
            title=f"latency, ms per image (batch {info.get('batch_size')}, {info.get('device')})",
            xticks=positions,
            xticklabels=names,
        )

    run = os.path.basename(os.path.normpath(str(result.get("run_dir", ""))))
    figure.suptitle(f"{run}: {result['dataset']} / {result['split']} ({result['num_examples']} images)")
    replace_atomic(path, lambda tmp: figure.savefig(tmp, format="png"), ".png")
    return figure


def save_evaluation(result, output_dir=None, name=None):
    """Writes an `evaluate_run` result as `<output_dir>/<name>.json` and `<name>.png`.

    Args:
        result: the dict `evaluate_run` returns.
        output_dir: default `<run_dir>/evaluation`.
        name: the file stem; default the split (`test`). `evaluation_name` prefixes the
            dataset for a dataset other than the run's (`cifar10-test`).

    Returns:
        `{"json": path, "png": path}`. Both files are written atomically (a previous report
        of the same name is replaced whole).
    """
    output_dir = output_dir or os.path.join(result["run_dir"], EVALUATION_DIR)
    name = name or result["split"]
    os.makedirs(output_dir, exist_ok=True)
    paths = {"json": os.path.join(output_dir, f"{name}.json"), "png": os.path.join(output_dir, f"{name}.png")}
    write_json_atomic(paths["json"], result)
    plot_heads(result, paths["png"])
    return paths


def evaluation_name(split, dataset=None):
    """The file stem of a report: the split, prefixed with the dataset when it is not the run's."""
    return split if dataset is None else f"{slug(dataset)}-{split}"


def select_head(heads, tolerance=DEFAULT_TOLERANCE):
    """The smallest head whose top-1 accuracy is within `tolerance` of the best head's.

    Args:
        heads: `{name: {"accuracy": top-1 in [0, 1], "params": int}}`.
        tolerance: float >= 0, absolute (0.01 = one percentage point). Default 0.01. A head
            with accuracy >= best - tolerance qualifies (with 1e-6 slack for float32
            rounding).

    Returns:
        The name of the qualifying head with the fewest parameters (ties: the more accurate).

    Raises:
        ValueError: an empty `heads`, a head without `accuracy` or `params`, or a bad
            `tolerance`.
    """
    check_number("tolerance", tolerance)
    if not heads:
        raise ValueError("`heads` is empty: there is no head to choose. Received: heads={}")
    for name, head in heads.items():
        if not isinstance(head, dict) or "accuracy" not in head or "params" not in head:
            raise ValueError(f"Each head needs 'accuracy' and 'params'. Received: heads[{name!r}]={head!r}")
    best = max(head["accuracy"] for head in heads.values())
    qualifying = [name for name, head in heads.items() if head["accuracy"] >= best - tolerance - _EPSILON]
    return min(qualifying, key=lambda name: (heads[name]["params"], -heads[name]["accuracy"]))


def _single_labels(splits):
    """The splits with plain labels (the `main` ones) instead of a dict per head."""

    def main_labels(dataset):
        if dataset is None or not isinstance(dataset.element_spec[1], dict):
            return dataset
        return dataset.map(lambda x, y: (x, y["main"]))

    return dataclasses.replace(
        splits,
        train=main_labels(splits.train),
        validation=main_labels(splits.validation),
        test=main_labels(splits.test),
    )


def default_pruned_dir(run_dir, head):
    """`<run_dir>-<head>`, beside the source run."""
    return f"{os.path.normpath(run_dir)}-{head}"


def prune_run(
    run_dir,
    head="auto",
    out_dir=None,
    tolerance=DEFAULT_TOLERANCE,
    split="validation",
    overwrite=False,
    batch_size=None,
    verbose="auto",
):
    """Saves a run pruned to one head as a standalone run folder.

    The pruned model is `prune_to_head(model, head, output_name="main")`: the network up to
    the head, whose only output is named `main` (so `compile_model` logs `main_accuracy`,
    `evaluate_run` reports one head `main`, and `to_inference_model` takes it). The folder
    holds `model.keras` (the pruned model, compiled as the source run's optimizer and
    learning rate), `inference.keras` (the same network), `metrics.json` (validation and
    test) and `config.json`: the source run's configuration (dataset, class names, image
    size and preprocessing), with `output_names: ["main"]` and a `pruned_from` note (source
    run, head, branch point, parameters before and after, and for `auto` the choice).

    Args:
        run_dir: a completed GoogLeNet run with aux heads (for `aux1`/`aux2`).
        head: `"aux1"`, `"aux2"`, `"main"`, or `"auto"` (default): the smallest head whose
            top-1 accuracy on `split` is within `tolerance` of the best head's
            (`select_head`).
        out_dir: the new run folder; default `<run_dir>-<head>`.
        tolerance: float >= 0, absolute accuracy (0.01 = one point). Default 0.01.
        split: the split `auto` chooses on. Default `"validation"` (never the test split
            you report on).
        overwrite: replace a pruned run in `out_dir`; without it an existing run is refused.
        batch_size: default the run's.
        verbose: Keras verbosity; 0 also silences the summary (logged at INFO, see
            `keras_ninception.reporting`).

    Returns:
        `{"run_dir": out_dir, "head", "metrics", "selection"}`; `selection` is None unless
        `head="auto"`, then `{"split", "tolerance", "heads": {name: {"accuracy", "params"}},
        "chosen"}`.

    Raises:
        ValueError: an unknown head or split, a bad tolerance, a model without that head or
            not a GoogLeNet, `out_dir` equal to `run_dir`, or an unreadable run.
        FileNotFoundError: `run_dir` is not a completed run.
        FileExistsError: `out_dir` holds a run (and no `overwrite`) or other files.
    """
    if head not in HEADS + ("auto",):
        raise ValueError(f"`head` must be one of {list(HEADS) + ['auto']}. Received: head={head!r}")
    if split not in SPLITS:
        raise ValueError(f"`split` must be one of {list(SPLITS)}. Received: split={split!r}")
    check_number("tolerance", tolerance)

    def check_out_dir(path):
        if os.path.abspath(path) == os.path.abspath(run_dir):
            raise ValueError(f"`out_dir` must not be the source run's folder. Received: out_dir={path!r}")
        check_run_folder(path, False, overwrite, ("config.json", "model.keras"), PRUNED_RUN_FILES)

    if out_dir is not None:
        check_out_dir(out_dir)
    model, config = load_run(run_dir)
    # The model's errors (not a GoogLeNet, no such head) before any data is read.
    networks = {name: prune_to_head(model, name) for name in (model.output_names if head == "auto" else [head])}
    splits = load_run_splits(model, config, batch_size=batch_size)
    say = logger.info if verbose != 0 else (lambda *args: None)

    selection = None
    if head == "auto":
        data = splits.get_split(split)
        compile_for_evaluation(model, config)
        logs = model.evaluate(data, return_dict=True, verbose=verbose)
        accuracies = per_head_metrics(logs, model.output_names)["heads"]
        candidates = {
            name: {"accuracy": accuracies[name]["accuracy"], "params": int(network.count_params())}
            for name, network in networks.items()
        }
        head = select_head(candidates, tolerance)
        selection = {"split": split, "tolerance": float(tolerance), "heads": candidates, "chosen": head}
        say("%s top-1 accuracy per head (tolerance %g below the best):", split, tolerance)
        for name, c in sorted(candidates.items(), key=lambda item: item[1]["params"]):
            mark = "  <- chosen: smallest within tolerance" if name == head else ""
            say("  %-5s %.4f  %12s parameters%s", name, c["accuracy"], f"{c['params']:,}", mark)

    if out_dir is None:
        out_dir = default_pruned_dir(run_dir, head)
        check_out_dir(out_dir)
    pruned = prune_to_head(model, head, output_name="main")
    train_config = config["train_config"]
    compile_model(
        pruned,
        optimizer=train_config.get("optimizer", "adam"),
        learning_rate=train_config.get("learning_rate", 1e-3),
        weight_decay=train_config.get("weight_decay"),
    )
    # Built (zero state) as a trained run's is, so model.keras reloads without a mismatch.
    pruned.optimizer.build(pruned.trainable_variables)
    metrics = evaluate_splits(pruned, _single_labels(splits), verbose=verbose)

    # Everything is computed: only now is anything deleted or written.
    if overwrite:
        clear_run_folder(out_dir, PRUNED_RUN_FILES)
    os.makedirs(out_dir, exist_ok=True)
    source_params = int(to_inference_model(model).count_params()) if "main" in model.output_names else None
    write_json_atomic(
        os.path.join(out_dir, "config.json"),
        {
            **config,
            "train_config": {**train_config, "run_dir": out_dir},
            "output_names": ["main"],
            "pruned_from": {
                "run_dir": os.path.abspath(run_dir),
                "head": head,
                "branch_point": HEAD_BRANCH_POINTS[head] or "inception_5b",
                "params": int(pruned.count_params()),
                "source_inference_params": source_params,
                "selection": selection,
            },
            "versions": {**config.get("versions", {}), "keras": keras.__version__},
        },
    )
    write_json_atomic(os.path.join(out_dir, "metrics.json"), metrics)
    save_model_atomic(to_inference_model(pruned), os.path.join(out_dir, "inference.keras"))
    save_model_atomic(pruned, os.path.join(out_dir, "model.keras"))  # last: marks the run complete

    final_split = "test" if "test" in metrics else "validation"
    say(
        f"Pruned to {head} ({pruned.count_params():,} parameters"
        + (f", {source_params:,} in the source's inference model" if source_params else "")
        + f"); {final_split} accuracy ({metrics[final_split]['num_examples']} images): "
        + format_accuracy(metrics[final_split])
    )
    say("Pruned run saved in %s", out_dir)
    return {"run_dir": out_dir, "head": head, "metrics": metrics, "selection": selection}
