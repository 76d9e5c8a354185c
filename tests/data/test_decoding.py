"""Odd image files (CMYK JPEG, gray JPEG, RGBA/LA/palette/16-bit PNG, GIF, BMP): the check,
the pipeline and `predict`'s reader accept the same files and give the same pixels."""

import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_ninception.data import files
from keras_ninception.data import load_dataset

pytestmark = pytest.mark.xdist_group("odd-files")  # one pytest-xdist worker: the shared fixtures

HEIGHT, WIDTH = 24, 32


def gradient():
    """A smooth `uint8` RGB image (JPEG keeps it within a few levels)."""
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    return np.stack([x * 8, y * 10, (x + y) * 4], -1).clip(0, 255).astype(np.uint8)


def write_odd_files(folder):
    """Writes one file of each odd kind; returns `{name: (path, the RGB image it holds)}`."""
    folder.mkdir(parents=True, exist_ok=True)
    rgb = gradient()
    gray = np.asarray(Image.fromarray(rgb).convert("L"))
    alpha = np.arange(WIDTH, dtype=np.uint8)[None, :].repeat(HEIGHT, 0) * 8
    out = {}

    def save(name, image, fmt, holds, **kwargs):
        path = folder / name
        image.save(path, fmt, **kwargs)
        out[name] = (str(path), holds)

    save("cmyk.jpg", Image.fromarray(rgb).convert("CMYK"), "JPEG", rgb, quality=95)
    save("gray.jpg", Image.fromarray(gray), "JPEG", np.dstack([gray] * 3), quality=95)
    save("rgba.png", Image.fromarray(np.dstack([rgb, alpha])), "PNG", rgb)
    save("la.png", Image.fromarray(np.dstack([gray, alpha]), "LA"), "PNG", np.dstack([gray] * 3))
    palette = Image.fromarray(rgb).convert("P")
    save("palette.png", palette, "PNG", np.asarray(palette.convert("RGB")))
    save("gray16.png", Image.fromarray(gray.astype(np.uint16) * 257), "PNG", np.dstack([gray] * 3))
    path = folder / "rgb16.png"
    tf.io.write_file(str(path), tf.io.encode_png(tf.constant(rgb.astype(np.uint16) * 257)))
    out["rgb16.png"] = (str(path), rgb)
    gif = Image.fromarray(rgb).convert("P")  # a GIF named .jpg
    save("gif_named.jpg", gif, "GIF", np.asarray(gif.convert("RGB")))
    save("bmp_named.png", Image.fromarray(rgb), "BMP", rgb)
    return out


@pytest.fixture(scope="module")
def odd_files(tmp_path_factory):
    return write_odd_files(tmp_path_factory.mktemp("odd"))


def expected(holds, channels):
    if channels == 3:
        return holds
    return tf.image.rgb_to_grayscale(tf.constant(holds)).numpy()


@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize(
    "name",
    ["cmyk.jpg", "gray.jpg", "rgba.png", "la.png", "palette.png", "gray16.png", "rgb16.png", "gif_named.jpg",
     "bmp_named.png"],
)
def test_odd_files_pass_both_checks_and_decode_within_a_few_levels(odd_files, name, channels):
    path, holds = odd_files[name]
    assert files.image_file_problem(path, "header", channels) is None
    assert files.image_file_problem(path, "full", channels) is None
    image = files.read_image_file(path, channels)
    assert image.shape == (HEIGHT, WIDTH, channels) and image.dtype == np.uint8
    difference = np.abs(image.astype(int) - expected(holds, channels))
    assert difference.max() <= 3, (name, channels, difference.max())


def test_a_cmyk_jpeg_is_gray_through_rgb(odd_files):
    path, _ = odd_files["cmyk.jpg"]
    contents = tf.io.read_file(path)
    assert tf.io.extract_jpeg_shape(contents).numpy().tolist() == [HEIGHT, WIDTH, 4]
    with pytest.raises(tf.errors.InvalidArgumentError):  # what TF does alone
        tf.io.decode_jpeg(contents, channels=1)
    np.testing.assert_array_equal(
        files.read_image_file(path, 1),
        tf.image.rgb_to_grayscale(tf.io.decode_jpeg(contents, channels=3)).numpy(),
    )


@pytest.mark.parametrize("channels", [1, 3])
def test_the_pipeline_gives_what_predict_reads(odd_files, tmp_path, channels):
    """Every odd file in a folder: the up-front check passes (both modes) and one epoch
    yields exactly the pixels of `read_image_file` (the reader of `predict`)."""
    root = tmp_path / "images"
    for class_name in ("a", "b"):
        write_odd_files(root / "train" / class_name)
    reference = sorted(files.read_image_file(path, channels).tobytes() for path, _ in odd_files.values()) * 2
    for mode in ("header", "full"):
        splits = load_dataset(
            str(root), channels=channels, image_size=(HEIGHT, WIDTH), augment="none",
            check_images=mode, batch_size=5,
        )
        assert splits.num_examples["train"] + splits.num_examples["validation"] == 2 * len(odd_files)
        images = np.concatenate([x.numpy() for split in (splits.train, splits.validation) for x, _ in split])
        pixels = np.round((images + 1.0) * 127.5).astype(np.uint8)
        assert sorted(image.tobytes() for image in pixels) == sorted(reference)
