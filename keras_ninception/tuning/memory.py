"""Bounded memory over many trials in one process.

Every traced Keras train step leaves one entry behind in TensorFlow's global gradient
registry. Keras' TF optimizer all-reduces the gradients through the replica context (also
under the default, non-distributed strategy), and `all_reduce` is a `tf.custom_gradient`.
In graph mode each `tf.custom_gradient` call registers its gradient closure as
`CustomGradient-<uid>` with `ops.RegisterGradient`, and nothing ever removes it. The closure
holds tensors of the traced `FuncGraph`, so the whole training graph of every trial stays in
memory after `keras.backend.clear_session()`: about 28 MiB per NIN trial here, 4.4 MiB for a
one-layer model, linear in the number of trials (TF 2.21 / Keras 3.15). Reported upstream as
tensorflow/tensorflow#97697 and keras-team/keras#17458; tf-keras PR #898 proposes the same
purge inside `clear_session`.

`CustomGradientScope` records the registry's entries when a trial begins and, when it ends,
removes the `CustomGradient-*` entries added since. Those belong to the trial's own traced
functions, which are gone with its model; gradients registered before the scope (by the
caller's own live functions) are kept. With it the per-trial growth drops to the noise
(tests/tuning/test_memory.py).

The registry is TensorFlow's private `ops._gradient_registry`; when a TensorFlow release no
longer has it, the scope does nothing (and the memory test says so).
"""

CUSTOM_GRADIENT_PREFIX = "CustomGradient-"


def gradient_registry():
    """TensorFlow's registry dict of gradient functions, or None if this TF has none."""
    try:
        from tensorflow.python.framework import ops
    except ImportError:  # pragma: no cover - a TF without the private module
        return None
    registry = getattr(getattr(ops, "_gradient_registry", None), "_registry", None)
    return registry if isinstance(registry, dict) else None


class CustomGradientScope:
    """Removes the custom-gradient registrations made between `begin()` and `end()`.

    Usage (what the tuners of `keras_ninception.tuning` do around each trial):

        scope = CustomGradientScope()
        scope.begin()
        ...  # build, compile and fit a model; drop it
        removed = scope.end()

    `end()` returns the number of entries removed (0 when the registry is not available
    or `begin()` was not called).
    """

    def __init__(self):
        self._before = None

    def begin(self):
        registry = gradient_registry()
        self._before = None if registry is None else set(registry)

    def end(self):
        registry = gradient_registry()
        if registry is None or self._before is None:
            return 0
        added = [
            key
            for key in list(registry)
            if key not in self._before and str(key).startswith(CUSTOM_GRADIENT_PREFIX)
        ]
        for key in added:
            registry.pop(key, None)
        self._before = None
        return len(added)


def releasing_tuner_class(tuner_class):
    """A subclass of a KerasTuner tuner class whose trials release their traced graphs.

    Each trial runs inside a `CustomGradientScope`: it begins in `on_trial_begin` and ends
    after `on_trial_end`, once KerasTuner has saved the trial and dropped its model.
    """

    class ReleasingTuner(tuner_class):
        def on_trial_begin(self, trial):
            self._custom_gradients = CustomGradientScope()
            self._custom_gradients.begin()
            super().on_trial_begin(trial)

        def on_trial_end(self, trial):
            super().on_trial_end(trial)
            scope = getattr(self, "_custom_gradients", None)
            if scope is not None:
                import gc

                import keras

                keras.backend.clear_session()
                scope.end()
                gc.collect()

    ReleasingTuner.__name__ = ReleasingTuner.__qualname__ = tuner_class.__name__
    ReleasingTuner.__doc__ = tuner_class.__doc__
    return ReleasingTuner
