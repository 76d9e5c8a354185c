"""One eager forward pass for tests that compare outputs: `model.predict` first traces a
`tf.function` (about 1.2 s for a 224-px GoogLeNet on 2 cores, more than the pass itself)."""

import keras


def forward(model, x):
    """`model`'s inference outputs for the batch `x`, as NumPy arrays: one array for a
    single-output model, a list (the model's output order) otherwise, as `predict` gives."""
    outputs = model(x, training=False)
    if isinstance(outputs, (list, tuple)):
        return [keras.ops.convert_to_numpy(output) for output in outputs]
    return keras.ops.convert_to_numpy(outputs)
