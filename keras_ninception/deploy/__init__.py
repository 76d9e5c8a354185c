"""Deployment: export a run's inference model (`.keras`, SavedModel, LiteRT) and predict.

- `export`: `export_run`, `export_keras`, `export_saved_model`, `export_litert`.
- `predict`: `load_predictor`, `predict_files`, `read_images`.
"""

from keras_ninception.deploy.export import (
    FORMATS,
    export_keras,
    export_litert,
    export_run,
    export_saved_model,
)
from keras_ninception.deploy.predict import load_predictor, predict_files, read_images
