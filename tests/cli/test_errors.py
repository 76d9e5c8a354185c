"""Bad input to the `ninception` command gets the package's own error, exit status 2, and
nothing written (in-process: `main` is what the console script runs)."""

import pytest

from keras_ninception.cli.main import main


def run_main(args):
    """`main(args)`'s exit status; argparse's own errors exit through SystemExit."""
    try:
        return main(args)
    except SystemExit as exit_info:
        return exit_info.code


@pytest.mark.parametrize(
    "args, message",
    [
        (["train", "--model", "resnet"], "invalid choice"),
        (["train", "--dataset", "no_such_dataset_xyz"], "no_such_dataset_xyz"),
        (["train", "--epochs", "0"], "epochs"),
        (["train", "--profile-batch", "20,10"], "Received: profile_batch='20,10'"),
        (["train", "--num-summary-images", "100"], "Received: num_summary_images=100"),
        (["train", "--precision", "fp16"], "invalid choice"),
        (["evaluate", "/nonexistent/run"], "not a completed run"),
        (["train", "--fine-tune", "head"], "needs `weights`"),
        (["train", "--weights", "no/such/run"], "Received: weights='no/such/run'"),
        (["train", "--weights", "imagenet", "--model", "nin"], "ImageNet weights are GoogLeNet's"),
        (["train", "--eval-crop", "1.5"], "Received: eval_crop=1.5"),
        (["train", "--augment", "crop", "--color-distortion"], "Received: augment='crop', color_distortion=True"),
        (["prepare", "/nonexistent/folder", "--out", "prepared"], "Received: folder='/nonexistent/folder'"),
        (["prepare", "/nonexistent/folder", "--out", "prepared", "--check-images", "all"], "invalid choice"),
    ],
)
def test_bad_input_gets_a_clear_error(tmp_path, monkeypatch, capsys, args, message):
    monkeypatch.chdir(tmp_path)  # where saved_models/ would be written
    assert run_main(args) == 2
    stderr = capsys.readouterr().err
    assert message in stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "saved_models").exists() or not any((tmp_path / "saved_models").iterdir())
