"""latentlab: reproducible dataset-to-model runs for autoencoders, VAEs and GANs."""

import sys

__version__ = "0.1.0"


class _UnusedIntegrations:
    """Keeps optional integrations out of Keras' import when they are installed: Keras'
    scikit-learn wrappers (scikit-learn and SciPy), and under the TensorFlow backend jax, which
    Keras' Orbax checkpoint callback and TensorFlow Lite's jax converter import. Nothing here uses
    them, and they were a quarter of a stage process's Keras import (~2.6 of 9.6 s). Only those
    importers are refused: latentlab's own scikit-learn imports, and the jax backend (which has
    imported jax before any of them runs), are not affected."""

    REFUSED = {"sklearn": ("keras.src.wrappers.",),
               "jax": ("keras.src.callbacks.orbax_checkpoint", "tensorflow.")}

    def find_spec(self, name, path=None, target=None):
        importer = self.REFUSED.get(name.partition(".")[0])
        if importer is None:
            return None
        frame = sys._getframe(1)
        while frame is not None and frame.f_globals.get("__name__", "").startswith(
                ("importlib", "_frozen_importlib")):
            frame = frame.f_back
        if frame is not None and frame.f_globals.get("__name__", "").startswith(importer):
            raise ModuleNotFoundError(f"{name} is not imported for {importer}*", name=name)
        return None


sys.meta_path.insert(0, _UnusedIntegrations())
