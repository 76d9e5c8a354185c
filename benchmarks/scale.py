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

- the time to list the files and check them (`sources.list_image_files` +
  `sources.find_bad_image_files`, the check `load_dataset` runs before building anything);
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


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    gen = commands.add_parser("generate", help="write the folder of small JPEGs (resumable)")
    gen.add_argument("--root", required=True)
    gen.add_argument("--images", type=int, default=200_000)
    gen.add_argument("--classes", type=int, default=1000)
    gen.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.command == "generate":
        written = generate(args.root, args.images, args.classes, args.seed)
        print(f"wrote {written} files under {args.root}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
