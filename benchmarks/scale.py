"""Scale simulation: an ImageNet-shaped folder of tiny JPEGs, listed, prepared and read.

Usage:
    nice python benchmarks/scale.py generate --root /tmp/ninception-scale   # resumable
    python benchmarks/scale.py measure --root /tmp/ninception-scale

`generate` writes `--images` (default 200,000) JPEGs of 16-32 px in `--classes` (default
1,000) class folders, `ROOT/train/<class>/<n>.jpg`: a few hundred distinct small images are
encoded once with Pillow and each file is one of them with a JPEG comment (`COM` segment)
holding its own index, so every file differs and decodes, and writing costs one `write` per
file. It skips the files already there, so an interrupted run resumes. Never commit the
folder: it lives under /tmp.

`measure` reports, each in a fresh subprocess (so that peak RSS is that step's own):

- the time to list the files and check them (`files.list_image_folder` +
  `files.find_bad_image_files` with `check_images="header"`, the check `load_dataset` runs
  by default before building anything);
- the time of `ninception prepare` (the folder written as TFDS record shards);
- train steps/s (batches/s of the training split, through the whole pipeline to the batch
  the model receives, no model) reading the prepared shards against reading the folder;
- peak RSS over epochs of the training pipeline with `cache="auto"`;

and extrapolates each to ImageNet's 1,281,167 training images. Writes `scale.json` and
`scale.md` to `--out-dir` (default `benchmarks/results`).
"""

import argparse
import io
import os
import random
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HERE = os.path.dirname(os.path.abspath(__file__))
IMAGENET_TRAIN_IMAGES = 1_281_167
DISTINCT_IMAGES = 400
MIN_SIDE, MAX_SIDE = 16, 32


def class_name(index):
    """ImageNet-like synset folder names: `n00000000`, `n00000001`, ..."""
    return f"n{index:08d}"


def distinct_jpegs(count, seed):
    """`count` encoded JPEGs of random sides in [16, 32] px: noise over a colour gradient."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    encoded = []
    for _ in range(count):
        height, width = rng.integers(MIN_SIDE, MAX_SIDE + 1, size=2)
        base = rng.integers(0, 256, size=3)
        ramp = np.linspace(0, 1, width)[None, :, None] * rng.integers(-80, 80, size=3)
        noise = rng.normal(0, 25, size=(height, width, 3))
        pixels = np.clip(base + ramp + noise, 0, 255).astype(np.uint8)
        buffer = io.BytesIO()
        Image.fromarray(pixels).save(buffer, format="JPEG", quality=90)
        encoded.append(buffer.getvalue())
    return encoded


def with_comment(jpeg, text):
    """The same JPEG with a `COM` segment right after `SOI` (decoders ignore comments)."""
    payload = text.encode("ascii")
    segment = b"\xff\xfe" + (len(payload) + 2).to_bytes(2, "big") + payload
    return jpeg[:2] + segment + jpeg[2:]


def generate(root, images, classes, seed=0):
    """Writes the folder; returns the number of files written (0 when it was complete)."""
    per_class, extra = divmod(images, classes)
    jpegs = distinct_jpegs(DISTINCT_IMAGES, seed)
    chooser = random.Random(seed)
    written = 0
    for index in range(classes):
        class_dir = os.path.join(root, "train", class_name(index))
        os.makedirs(class_dir, exist_ok=True)
        count = per_class + (1 if index < extra else 0)
        existing = set(os.listdir(class_dir))
        for number in range(count):
            name = f"{number:06d}.jpg"
            pick = chooser.randrange(DISTINCT_IMAGES)  # drawn even when skipped: resumable
            if name in existing:
                continue
            path = os.path.join(class_dir, name)
            with open(path + ".tmp", "wb") as file:
                file.write(with_comment(jpegs[pick], f"{index}/{number}"))
            os.replace(path + ".tmp", path)
            written += 1
        if index % 100 == 99:
            print(f"{index + 1}/{classes} classes", flush=True)
    return written


# ---------------------------------------------------------------------------------------------
# Measurements: each runs in its own process (`python scale.py step NAME ...`) and prints one
# JSON line; `ru_maxrss` is then that step's own peak.


def peak_rss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux counts kB


def rss_mb():
    import psutil

    return psutil.Process().memory_info().rss / 2**20


def step_check(args):
    import time

    from keras_ninception.data import files as files_lib

    start = time.perf_counter()
    files = files_lib.list_image_folder(args.root).files
    paths = [path for split in files.values() for paths in split.values() for path in paths]
    listed = time.perf_counter()
    bad = files_lib.find_bad_image_files(paths, "header")
    checked = time.perf_counter()
    classes = {name for split in files.values() for name in split}
    return {
        "files": len(paths), "classes": len(classes), "bad": len(bad),
        "list_s": listed - start, "check_s": checked - listed,
    }


def step_prepare(args):
    import shutil
    import time

    from keras_ninception.data import prepared

    shutil.rmtree(args.prepared, ignore_errors=True)
    start = time.perf_counter()
    index = prepared.prepare_image_folder(args.root, args.prepared, num_shards=args.shards)
    elapsed = time.perf_counter() - start
    size = sum(
        os.path.getsize(os.path.join(d, f)) for d, _, names in os.walk(args.prepared) for f in names
    )
    return {
        "prepare_s": elapsed, "num_shards": args.shards or index["splits"]["train"]["num_shards"],
        "examples": {split: entry["num_examples"] for split, entry in index["splits"].items()},
        "bytes": size,
    }


def step_read(args):
    """Batches/s of the training split (no model), from `source` (the folder or prepared)."""
    import time

    from keras_ninception.data import load_dataset

    start = time.perf_counter()
    splits = load_dataset(
        args.source, image_size=args.image_size, batch_size=args.batch_size, augment=args.augment,
        cache="none",
    )
    loaded = time.perf_counter()
    iterator = iter(splits.train)
    for _ in range(args.warmup):
        next(iterator)
    begin = time.perf_counter()
    for _ in range(args.batches):
        next(iterator)
    elapsed = time.perf_counter() - begin
    return {
        "load_dataset_s": loaded - start, "batches": args.batches, "batch_size": args.batch_size,
        "steps_per_s": args.batches / elapsed, "images_per_s": args.batches * args.batch_size / elapsed,
    }


def step_cache(args):
    """RSS at the end of each epoch of the training split with `cache="auto"` (no model)."""
    import time

    from keras_ninception.data import load_dataset

    before = rss_mb()
    splits = load_dataset(
        args.source, image_size=args.image_size, batch_size=args.batch_size, augment=args.augment,
        cache="auto", cache_budget=args.budget,
    )
    epochs = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        images = sum(int(labels.shape[0]) for _, labels in splits.train)
        epochs.append({"images": images, "seconds": time.perf_counter() - start, "rss_mb": rss_mb()})
    return {
        "budget": args.budget, "cache_plan": splits.cache_plan, "rss_before_mb": before,
        "epochs": epochs, "peak_rss_mb": peak_rss_mb(),
    }


STEPS = {"check": step_check, "prepare": step_prepare, "read": step_read, "cache": step_cache}


def run_step(name, *options):
    """Runs one step in a fresh interpreter and returns its JSON result (with its peak RSS)."""
    import json
    import subprocess

    repo = os.path.dirname(HERE)
    env = {**os.environ, "PYTHONPATH": repo + os.pathsep + os.environ.get("PYTHONPATH", "")}
    command = [sys.executable, os.path.abspath(__file__), "step", name, *map(str, options)]
    print("$", " ".join(command[1:]), flush=True)
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode or not lines:
        raise RuntimeError(f"step {name} failed ({done.returncode}):\n{done.stderr[-3000:]}")
    result = json.loads(lines[-1])
    print("  ", result, flush=True)
    return result


def measure(args):
    import json
    import platform

    root, prep = args.root, args.prepared
    common = ["--image-size", args.image_size, "--batch-size", args.batch_size, "--augment", args.augment]
    report = {"root": root, "prepared": prep, "image_size": args.image_size, "batch_size": args.batch_size,
              "augment": args.augment, "imagenet_train_images": IMAGENET_TRAIN_IMAGES,
              "command": "python3.11 benchmarks/scale.py " + " ".join(sys.argv[1:]),
              # 1-minute load average before and after: the machine is shared, and a loaded one is slower.
              "load_average": {"before": os.getloadavg()[0]}}
    report["check"] = run_step("check", "--root", root)
    prepare_options = ["--root", root, "--prepared", prep] + (["--shards", args.shards] if args.shards else [])
    report["prepare"] = run_step("prepare", *prepare_options)
    read = ["--batches", args.batches, "--warmup", args.warmup]
    report["read_prepared"] = run_step("read", "--source", prep, *common, *read)
    report["read_folder"] = run_step("read", "--source", root, *common, *read)
    report["cache_auto"] = run_step("cache", "--source", prep, *common, "--epochs", args.epochs)
    if args.small_budget:
        report["cache_auto_over_budget"] = run_step(
            "cache", "--source", prep, *common, "--epochs", args.epochs, "--budget", args.small_budget
        )
    report["load_average"]["after"] = os.getloadavg()[0]
    files = report["check"]["files"]
    scale = IMAGENET_TRAIN_IMAGES / files
    report["extrapolated_to_imagenet"] = {
        "list_s": report["check"]["list_s"] * scale,
        "check_s": report["check"]["check_s"] * scale,
        "prepare_s": report["prepare"]["prepare_s"] * scale,
        "epoch_s_prepared": IMAGENET_TRAIN_IMAGES / report["read_prepared"]["images_per_s"],
        "epoch_s_folder": IMAGENET_TRAIN_IMAGES / report["read_folder"]["images_per_s"],
        "decoded_224_bytes": IMAGENET_TRAIN_IMAGES * 224 * 224 * 3,
    }
    from keras_ninception.training.precision import cpu_description

    report["machine"] = {**cpu_description(), "python": platform.python_version()}
    os.makedirs(args.out_dir, exist_ok=True)
    with open(os.path.join(args.out_dir, "scale.json"), "w") as file:
        json.dump(report, file, indent=2)
    with open(os.path.join(args.out_dir, "scale.md"), "w") as file:
        file.write(markdown(report))
    print(markdown(report))


def markdown(r):
    from keras_ninception.training.precision import cpu_summary

    x = r["extrapolated_to_imagenet"]
    files = r["check"]["files"]
    rows = [
        ("list the files", f"{r['check']['list_s']:.1f} s", f"{x['list_s']:.0f} s"),
        ("check the files (first and last bytes)", f"{r['check']['check_s']:.1f} s", f"{x['check_s']:.0f} s"),
        ("prepare (TFDS record shards)", f"{r['prepare']['prepare_s']:.1f} s", f"{x['prepare_s']:.0f} s"),
        ("one epoch from the prepared shards",
         f"{files / r['read_prepared']['images_per_s']:.0f} s ({r['read_prepared']['steps_per_s']:.1f} steps/s)",
         f"{x['epoch_s_prepared']:.0f} s"),
        ("one epoch from the folder",
         f"{files / r['read_folder']['images_per_s']:.0f} s ({r['read_folder']['steps_per_s']:.1f} steps/s)",
         f"{x['epoch_s_folder']:.0f} s"),
        ("load_dataset on the folder (list + check + ImageFolder)", f"{r['read_folder']['load_dataset_s']:.1f} s",
         f"{r['read_folder']['load_dataset_s'] * r['imagenet_train_images'] / files:.0f} s"),
    ]
    lines = [
        f"# Scale simulation: {files:,} JPEGs of 16-32 px in {r['check']['classes']:,} classes",
        "",
        f"Command: `{r['command']}`",
        "",
        f"Machine: {cpu_summary(r['machine'])}; 1-minute load average {r['load_average']['before']:.1f} "
        f"before, {r['load_average']['after']:.1f} after. Pipeline: "
        f"{r['image_size']} px, batch {r['batch_size']}, augment `{r['augment']}`, no model. "
        "Extrapolation: linear in the number of files, from these tiny files.",
        "",
        "| step | measured | x 1,281,167 images |",
        "|---|---|---|",
        *(f"| {a} | {b} | {c} |" for a, b, c in rows),
        "",
    ]
    for key in ("cache_auto", "cache_auto_over_budget"):
        if key not in r:
            continue
        c = r[key]
        lines += [
            f"`cache=\"auto\"`{' with a budget of ' + format(c['budget'], ',') + ' bytes' if c['budget'] else ''}: "
            + "; ".join(c["cache_plan"].values()),
            "",
            "| epoch | images | seconds | RSS (MiB) |",
            "|---|---|---|---|",
            f"| before | | | {c['rss_before_mb']:.0f} |",
            *(f"| {i + 1} | {e['images']:,} | {e['seconds']:.1f} | {e['rss_mb']:.0f} |" for i, e in enumerate(c["epochs"])),
            f"| peak | | | {c['peak_rss_mb']:.0f} |",
            "",
        ]
    return "\n".join(lines)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="write the folder of small JPEGs (resumable)")
    gen.add_argument("--root", required=True)
    gen.add_argument("--images", type=int, default=200_000)
    gen.add_argument("--classes", type=int, default=1000)
    gen.add_argument("--seed", type=int, default=0)
    mes = commands.add_parser("measure", help="time each step on a generated folder")
    mes.add_argument("--root", required=True)
    mes.add_argument("--prepared", default=None, help="where to prepare (default: ROOT-prepared)")
    mes.add_argument("--out-dir", default=os.path.join(HERE, "results"))
    mes.add_argument("--small-budget", type=int, default=None, help="also a cache='auto' run with this budget")
    step = commands.add_parser("step", help="one measurement (used by measure)")
    step.add_argument("name", choices=sorted(STEPS))
    step.add_argument("--root")
    step.add_argument("--prepared")
    step.add_argument("--source")
    step.add_argument("--budget", type=int, default=None)
    for sub in (mes, step):
        sub.add_argument("--image-size", type=int, default=32)
        sub.add_argument("--batch-size", type=int, default=256)
        sub.add_argument("--augment", default="crop_flip")
        sub.add_argument("--batches", type=int, default=100)
        sub.add_argument("--warmup", type=int, default=10)
        sub.add_argument("--epochs", type=int, default=2)
        sub.add_argument("--shards", type=int, default=None)
    args = parser.parse_args(argv)
    if args.command == "measure" and args.prepared is None:
        args.prepared = args.root.rstrip("/") + "-prepared"
    return args


def main(argv=None):
    args = parse_args(argv)
    if args.command == "generate":
        written = generate(args.root, args.images, args.classes, args.seed)
        print(f"wrote {written} files under {args.root}")
    elif args.command == "measure":
        measure(args)
    else:
        import json

        result = STEPS[args.name](args)
        result["peak_rss_mb"] = peak_rss_mb()
        print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
