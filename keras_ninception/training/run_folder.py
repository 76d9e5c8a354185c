"""The run folder's on-disk contract, written and read here for train, tune, prune, evaluate
and export runs.

A training run folder holds `config.json` (the resolved configuration), `logs/` (TensorBoard),
`checkpoints/` (`last.keras` and the `BackupAndRestore` state), `history.csv` (one row per
finished epoch, appended across resumes), and at the end `model.keras` (every head, its
presence marks the run complete), `inference.keras` (aux heads removed), `metrics.json`,
`history.json` and `learning_curves.png`. Every file is written to a temporary name and
renamed into place, so a crash never leaves a half-written file under its final name.
"""

import csv
import json
import math
import os
import shutil
import tempfile

LEARNING_CURVES_FILE = "learning_curves.png"
# Everything a run folder may hold, including what `ninception evaluate` and `ninception export`
# write into it later (`evaluation/`, `export/`): `--overwrite` replaces the run with these,
# since an old report or export is of the old model.
RUN_FILES = (
    "config.json", "model.keras", "inference.keras", "metrics.json", "history.json", "history.csv", "logs",
    "checkpoints", LEARNING_CURVES_FILE, "evaluation", "export",
)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def replace_atomic(path, write, suffix):
    """Calls `write(tmp_path)` on a temporary file beside `path`, then renames it into place.

    The file gets the usual permissions (0666 less the umask), and the temporary file is
    removed if `write` fails, so `path` is either the old file or the whole new one.
    """
    directory = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=suffix, dir=directory)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def write_json_atomic(path, data):
    """Writes `data` as JSON to `path` atomically (temporary file + `os.replace`)."""
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"  # fails before any file exists

    def write(tmp):
        with open(tmp, "w") as f:
            f.write(text)

    replace_atomic(path, write, ".json")


def save_model_atomic(model, path):
    """`model.save(path)` atomically: a `.keras` file is whole or absent, never half-written.

    The builders' batch normalization is Keras' own layer (training runs it on the fused
    kernel without changing its class), so the run's `.keras` files load with Keras alone.
    """
    replace_atomic(path, model.save, ".keras")


def read_json(path):
    """Reads a JSON file, or raises ValueError naming it."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError) as error:
        raise ValueError(f"Cannot read {path!r}: {error}") from None


def check_run_folder(run_dir, resume, overwrite, markers, own_files, kind="run"):
    """The run-folder policy shared by train and tune runs; deletes nothing.

    A folder holds a `kind` when it has one of `markers`. A new run needs a missing or empty
    folder; an existing one is refused unless `resume` (continue it) or `overwrite` (replace
    it, and only when every entry is one of `own_files`).

    Returns:
        True when there is a run to resume, else False.

    Raises:
        ValueError: both `resume` and `overwrite`.
        FileExistsError: `run_dir` is a file, holds something else, or holds a `kind` and
            neither flag was given.
        FileNotFoundError: `resume` without a `kind` in `run_dir`.
    """
    if resume and overwrite:
        raise ValueError("Pass either `resume` or `overwrite`, not both.")
    if os.path.exists(run_dir) and not os.path.isdir(run_dir):
        raise FileExistsError(f"--run-dir {run_dir!r} is a file, not a folder; choose another --run-dir.")
    entries = set(os.listdir(run_dir)) if os.path.isdir(run_dir) else set()
    if not entries & set(markers):
        if resume:
            raise FileNotFoundError(
                f"Cannot resume: {run_dir!r} holds no {kind} (no {' or '.join(markers)}). Drop "
                "--resume to start a new one there."
            )
        if entries:
            raise FileExistsError(
                f"Run folder {run_dir!r} is not empty and holds no {kind}; choose another "
                "--run-dir (nothing was written)."
            )
        return False
    if overwrite:
        foreign = sorted(e for e in entries if e not in own_files and not e.startswith(".tmp-"))
        if foreign:
            raise FileExistsError(
                f"--overwrite only replaces a {kind}, and {run_dir!r} also holds {foreign[:5]}; "
                "move them or choose another --run-dir (nothing was deleted)."
            )
        return False
    if not resume:
        raise FileExistsError(
            f"Run folder {run_dir!r} already holds a {kind}. Pass --resume to continue it, "
            "--overwrite to replace it, or choose another --run-dir (nothing was written)."
        )
    return True


def clear_run_folder(run_dir, own_files):
    """Removes the entries `own_files` from `run_dir`, nothing else."""
    for entry in own_files:
        path = os.path.join(run_dir, entry)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)


def read_saved_run(run_dir):
    """The `config.json` of the run in `run_dir`, a dict; raises ValueError when it is not one."""
    path = os.path.join(run_dir, "config.json")
    saved = read_json(path)
    if not isinstance(saved, dict) or not isinstance(saved.get("train_config"), dict):
        raise ValueError(f"{path!r} is not a run configuration.")
    return saved


def read_history(path):
    """`{"loss": [...], "val_main_accuracy": [...], ...}`, one value per epoch, from a `CSVLogger` file.

    An epoch written twice (a run killed between its row and its backup, then resumed)
    keeps its last row; a row cut short by a kill is skipped. `"NA"` values become NaN.
    Returns `{}` when the file does not exist.
    """
    if not os.path.exists(path):
        return {}
    rows = {}
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if None in row or None in row.values():
                continue
            try:
                epoch = int(row.pop("epoch"))
                rows[epoch] = {k: math.nan if v == "NA" else float(v) for k, v in row.items()}
            except ValueError:
                continue
    epochs = sorted(rows)
    keys = sorted({k for values in rows.values() for k in values})
    return {k: [rows[e].get(k, math.nan) for e in epochs] for k in keys}
