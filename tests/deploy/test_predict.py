"""`predict`: image files of any size and channel count, with a run folder or any export."""

import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf
from sklearn.datasets import load_digits

from keras_ninception.cli.main import main
from keras_ninception.data.files import NOT_AN_IMAGE
from keras_ninception.deploy import export_run, predict_files
from keras_ninception.deploy.export import inference_model, preprocess
from keras_ninception.deploy.predict import expand_image_paths, load_predictor, read_images
from keras_ninception.training.evaluate import load_run
from tests.data.images import write_image
from tests.deploy.conftest import ninception

pytestmark = pytest.mark.xdist_group("deploy-runs")  # one pytest-xdist worker: the shared fixtures



def digit_image(index, height, width):
    """UCI digit `index` (8x8, values 0-16) as `uint8` `(height, width)`, nearest upscaling."""
    digit = load_digits().images[index] * (255 / 16)
    rows = np.arange(height) * 8 // height
    cols = np.arange(width) * 8 // width
    return np.round(digit[rows][:, cols]).astype(np.uint8)


def probabilities_of(result, class_names):
    by_name = {p["class_name"]: p["probability"] for p in result["predictions"]}
    return np.array([by_name[name] for name in class_names])


def keras_reference(run_dir, image):
    """The run's inference model on one `uint8` `(h, w, c)` image, training preprocessing."""
    model, _ = load_run(run_dir)
    model = inference_model(model)
    return model(preprocess(tf.constant(image[None]), model.input_shape[1:3]), training=False).numpy()[0]


@pytest.fixture(scope="module")
def digit_files(tmp_path_factory):
    """Digits 0, 3 and 7 as files: gray PNG 40x32, RGB PNG 9x13 (equal channels), RGB JPEG 50x50.

    Returns `{name: (path, uint8 array the gray model must see, or None for the JPEG)}`.
    """
    root = tmp_path_factory.mktemp("digit_files")
    gray = digit_image(0, 40, 32)[..., None]
    rgb = np.repeat(digit_image(3, 9, 13)[..., None], 3, axis=-1)
    files = {
        "gray.png": (gray, "png"),
        "rgb.png": (rgb, "png"),
        "rgb.jpg": (np.repeat(digit_image(7, 50, 50)[..., None], 3, axis=-1), "jpeg"),
    }
    out = {}
    for name, (image, fmt) in files.items():
        write_image(str(root / name), image, fmt)
        out[name] = (str(root / name), rgb[..., :1] if name == "rgb.png" else (gray if name == "gray.png" else None))
    return out


@pytest.fixture(scope="module")
def digits_model_paths(digits_run, tmp_path_factory):
    """Every kind of model path `predict` takes, for the digits run."""
    root = tmp_path_factory.mktemp("digits_exports")
    exports = {fmt: export_run(digits_run, fmt, output=str(root / fmt)) for fmt in ("keras", "saved_model", "litert")}
    return {
        "run": digits_run,
        "inference.keras": os.path.join(digits_run, "inference.keras"),
        "keras export": exports["keras"],
        "keras file": os.path.join(exports["keras"], "model.keras"),
        "saved_model export": exports["saved_model"],
        "litert export": exports["litert"],
        "tflite file": os.path.join(exports["litert"], "model.tflite"),
    }


KINDS = ["run", "inference.keras", "keras export", "keras file", "saved_model export", "litert export", "tflite file"]


@pytest.mark.slow
@pytest.mark.parametrize("kind", KINDS)
def test_every_model_path_predicts_what_the_keras_model_predicts(kind, digits_run, digits_model_paths, digit_files):
    class_names = [str(i) for i in range(10)]
    paths = [path for path, _ in digit_files.values()]
    results = predict_files(digits_model_paths[kind], paths, top_k=10)
    assert [r["file"] for r in results] == paths
    for result, (path, seen) in zip(results, digit_files.values()):
        assert len(result["predictions"]) == 10
        probabilities = [p["probability"] for p in result["predictions"]]
        assert probabilities == sorted(probabilities, reverse=True)
        if seen is None:  # the JPEG: decoded by TF's JPEG decoder, gray from its luminance
            seen = tf.io.decode_jpeg(tf.io.read_file(path), channels=1).numpy()
        np.testing.assert_allclose(
            probabilities_of(result, class_names), keras_reference(digits_run, seen), atol=1e-5
        )
    # The trained run reads the digits: a wrong preprocessing or channel conversion would not.
    assert [r["predictions"][0]["class_name"] for r in results] == ["0", "3", "7"]


@pytest.mark.slow
def test_gray_files_are_repeated_into_rgb_for_an_rgb_model(rgb_run, tmp_path):
    rng = np.random.default_rng(0)
    gray = np.clip(128 + rng.integers(-40, 41, (23, 31, 1)), 0, 255).astype(np.uint8)
    write_image(str(tmp_path / "gray.png"), gray)
    black = np.zeros((50, 20, 3), np.uint8)
    write_image(str(tmp_path / "black.jpg"), black, "jpeg")
    predictor = load_predictor(rgb_run)
    assert (predictor.kind, predictor.channels, predictor.class_names) == ("run", 3, ["cat", "dog", "frog"])
    results = predict_files(rgb_run, [str(tmp_path / "gray.png"), str(tmp_path / "black.jpg")], top_k=3)
    np.testing.assert_allclose(
        probabilities_of(results[0], predictor.class_names),
        keras_reference(rgb_run, np.repeat(gray, 3, axis=-1)),
        atol=1e-6,
    )
    # Classes are constant colours: cat 0 (black), dog 128 (gray), frog 255.
    assert [r["predictions"][0]["class_name"] for r in results] == ["dog", "cat"]


@pytest.mark.slow
def test_cli_prints_the_top_k_of_every_image(digits_run, digit_files, capsys):
    paths = [path for path, _ in digit_files.values()]
    assert main(["predict", digits_run, *paths, "--top-k", "3"]) == 0
    lines = capsys.readouterr().out.splitlines()
    expected = predict_files(digits_run, paths, top_k=3)
    assert len(lines) == 4 * len(paths)
    for i, result in enumerate(expected):
        assert lines[4 * i] == result["file"]
        for rank, prediction in enumerate(result["predictions"], 1):
            match = re.fullmatch(r"  (\d)\. (\S+)  (\d\.\d{4})", lines[4 * i + rank])
            assert match, lines[4 * i + rank]
            assert (int(match[1]), match[2]) == (rank, prediction["class_name"])
            assert float(match[3]) == pytest.approx(prediction["probability"], abs=5e-5)

    assert main(["predict", digits_run, paths[0], "--json"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert [p["class_name"] for p in printed[0]["predictions"]] == [
        p["class_name"] for p in predict_files(digits_run, paths[:1])[0]["predictions"]
    ]
    assert len(printed[0]["predictions"]) == 5  # the default top-k


def test_folders_and_glob_patterns_expand_to_their_image_files_sorted(tmp_path):
    for name in ("b.png", "a.JPG", "c.jpeg", ".hidden.png", "notes.txt", "sub/d.png"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    folder = str(tmp_path)
    expected = [os.path.join(folder, name) for name in ("a.JPG", "b.png", "c.jpeg")]
    assert expand_image_paths([folder]) == expected
    assert expand_image_paths([os.path.join(folder, "*.png"), os.path.join(folder, "notes.txt")]) == [
        os.path.join(folder, "b.png"), os.path.join(folder, "notes.txt")  # a file is kept as given
    ]
    assert expand_image_paths([os.path.join(folder, "sub"), os.path.join(folder, "[ab].*")]) == [
        os.path.join(folder, "sub", "d.png"), *expected[:2]
    ]
    assert expand_image_paths(["missing.jpg"]) == ["missing.jpg"]  # read_images names it
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="holds no image file"):
        expand_image_paths([os.path.join(folder, "empty")])
    with pytest.raises(ValueError, match=r"No file matches the pattern '.*\*\.gif'"):
        expand_image_paths([os.path.join(folder, "*.gif")])


@pytest.mark.slow
def test_a_folder_predicts_what_its_files_predict(digits_run, digit_files):
    paths = sorted(path for path, _ in digit_files.values())
    by_folder = predict_files(digits_run, [os.path.dirname(paths[0])], top_k=3)
    assert [r["file"] for r in by_folder] == paths
    assert by_folder == predict_files(digits_run, paths, top_k=3)


def bad_image_files(digit_files, tmp_path):
    """A good PNG and five bad files; returns `(paths, {bad name: reason})`."""
    good = digit_files["gray.png"][0]
    (tmp_path / "notes.jpg").write_text("not an image")
    (tmp_path / "empty.png").write_bytes(b"")
    (tmp_path / "folder.png").mkdir()
    png = open(good, "rb").read()
    (tmp_path / "cut.png").write_bytes(png[: len(png) // 2])
    bad = {
        "notes.jpg": NOT_AN_IMAGE,
        "empty.png": "empty file",
        "folder.png": "a directory",
        "missing.jpg": "cannot be read",
        "cut.png": "damaged or truncated: ",
    }
    return [good] + [str(tmp_path / name) for name in bad], bad


def test_read_images_names_every_bad_file(digit_files, tmp_path):
    paths, bad = bad_image_files(digit_files, tmp_path)
    with pytest.raises(ValueError, match="Cannot read 5 of 6 image files") as error:
        read_images(paths, channels=1)
    for name, reason in bad.items():
        assert f"{tmp_path / name} ({reason}" in str(error.value)
    assert paths[0] not in str(error.value)


@pytest.mark.slow
def test_bad_files_are_all_named_before_anything_is_predicted(digits_run, digit_files, tmp_path, capsys):
    paths, _ = bad_image_files(digit_files, tmp_path)
    # On the command line a folder is a folder of images (its files are predicted), so the
    # directory named like an image is left out here; read_images still names it (above).
    paths = [path for path in paths if not path.endswith("folder.png")]
    assert main(["predict", digits_run, *paths]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("ninception predict: error: Cannot read 4 of 5 image files (nothing was predicted)")


@pytest.mark.slow
def test_odd_jpegs_predict_as_training_decodes_them(digits_run, tmp_path):
    """A gray model: a CMYK JPEG (gray through RGB, as the pipeline does) and a JPEG with 63
    zero bytes after its end marker are predicted, not refused."""
    from PIL import Image

    rgb = np.repeat(digit_image(5, 40, 40)[..., None], 3, axis=-1)
    Image.fromarray(rgb).convert("CMYK").save(tmp_path / "cmyk.jpg", "JPEG", quality=95)
    write_image(str(tmp_path / "padded.jpg"), rgb, "jpeg")
    padded = (tmp_path / "padded.jpg").read_bytes()
    (tmp_path / "padded.jpg").write_bytes(padded + bytes(63))
    results = predict_files(digits_run, [str(tmp_path / "cmyk.jpg"), str(tmp_path / "padded.jpg")], top_k=10)
    cmyk_gray = tf.image.rgb_to_grayscale(tf.io.decode_jpeg(tf.io.read_file(str(tmp_path / "cmyk.jpg")), 3)).numpy()
    # Hard digit edges: JPEG's own error reaches 17 levels at a few pixels, 1 on average.
    assert np.abs(cmyk_gray.astype(int) - tf.image.rgb_to_grayscale(rgb).numpy()).mean() < 2
    padded_gray = tf.io.decode_jpeg(padded, channels=1).numpy()
    class_names = [str(i) for i in range(10)]
    for result, seen in zip(results, (cmyk_gray, padded_gray), strict=True):
        np.testing.assert_allclose(
            probabilities_of(result, class_names), keras_reference(digits_run, seen), atol=1e-5
        )
    assert [r["predictions"][0]["class_name"] for r in results] == ["5", "5"]


@pytest.mark.slow
def test_bad_arguments_get_clear_errors(digits_run, digit_files):
    image = digit_files["gray.png"][0]
    with pytest.raises(ValueError, match=r"Received: top_k=11"):
        predict_files(digits_run, [image], top_k=11)
    with pytest.raises(ValueError, match=r"Received: top_k=0"):
        predict_files(digits_run, [image], top_k=0)


def test_bad_model_paths_get_clear_errors(digit_files, tmp_path):
    image = digit_files["gray.png"][0]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_predictor(str(tmp_path / "nothing"))
    with pytest.raises(ValueError, match="neither a run folder"):
        load_predictor(str(tmp_path))
    with pytest.raises(ValueError, match="is not a model"):
        load_predictor(image)
    (tmp_path / "junk.keras").write_text("junk")
    with pytest.raises(ValueError, match="not a readable .keras model file"):
        load_predictor(str(tmp_path / "junk.keras"))
    (tmp_path / "junk.tflite").write_text("junk")
    with pytest.raises(ValueError, match="not a readable LiteRT model"):
        load_predictor(str(tmp_path / "junk.tflite"))


@pytest.mark.slow
def test_the_predict_command(digits_model_paths, digit_files):
    """The installed-command path, once, in a subprocess (with the LiteRT export)."""
    path = digit_files["rgb.png"][0]
    result = ninception("predict", digits_model_paths["litert export"], path, "--top-k", "2")
    assert result.returncode == 0, result.stderr[-2000:]
    lines = result.stdout.splitlines()
    assert lines[0] == path and len(lines) == 3 and lines[1].startswith("  1. 3  ")
    result = ninception("predict", digits_model_paths["litert export"], path + ".missing")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert f"{path}.missing (cannot be read" in result.stderr
