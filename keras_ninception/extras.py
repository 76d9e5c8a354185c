"""Optional dependencies of the deployment formats, imported only when used.

| extra | packages | needed for |
|---|---|---|
| `[onnx]` | `onnx`, `tf2onnx`, `onnxruntime` | `export --format onnx` (Keras exports ONNX through tf2onnx); predict/evaluate on a `.onnx` model |
| `[openvino]` | `openvino`, `nncf` | `export --format openvino` (and `--int8`, NNCF); predict/evaluate on an OpenVINO `.xml` model |
"""

import importlib


class MissingExtraError(ImportError):
    """An optional dependency is not installed; the message names the extra that brings it."""


def require(module, extra, purpose):
    """Imports `module`, or raises `MissingExtraError` naming `pip install 'keras-ninception[extra]'`.

    Args:
        module: the import name, e.g. `"onnxruntime"`.
        extra: the extra of `setup.cfg` that installs it, `"onnx"` or `"openvino"`.
        purpose: what needs it, for the message (e.g. `"ONNX export"`).

    Returns:
        The module.

    Raises:
        MissingExtraError: the import failed.
    """
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise MissingExtraError(
            f"{purpose} needs the Python package {module!r}, which is not installed ({error}). "
            f"Install the extra: pip install 'keras-ninception[{extra}]'"
        ) from None
