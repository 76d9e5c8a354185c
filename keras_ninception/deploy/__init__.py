"""Deployment: export a run's inference model (`.keras`, SavedModel, LiteRT, ONNX, OpenVINO) and predict.

- `export`: `export_run`, `export_keras`, `export_saved_model`, `export_litert`.
- `runtimes`: `export_onnx`, `export_openvino` (the `[onnx]` and `[openvino]` extras).
- `quantize`: int8 (`export_litert_int8`, NNCF for OpenVINO), calibrated on a run's train split.
- `evaluate`: `evaluate_export`, an export's accuracy on its run's split.
- `predict`: `load_predictor`, `predict_files`, `read_images`.
"""

from keras_ninception.deploy.export import (
    FORMATS,
    export_keras,
    export_litert,
    export_saved_model,
)
from keras_ninception.deploy.run_export import export_run
from keras_ninception.deploy.predict import load_predictor, predict_files, read_images
from keras_ninception.deploy.runtimes import export_onnx, export_openvino
