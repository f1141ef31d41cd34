"""Keep Keras from importing TensorFlow under the JAX and PyTorch backends.

Keras asks ``tensorflow.available`` (which imports TensorFlow when it is installed) in places
that need no TensorFlow unless it is in use. ``keras.utils.set_random_seed`` seeds TensorFlow
too, for ``tf.data`` pipelines; when it serializes a model, Keras checks whether a value is a
``tf.TensorShape``, ``tf.DType`` or ``tf.TypeSpec``. Under another backend that import costs
seconds and prints TensorFlow's start-up notices, for work that cannot matter: no value is a
TensorFlow type, and no TensorFlow generator is drawn from, while TensorFlow is not imported.
Answering "unavailable" there leaves every other effect of Keras' own code as it is: the
Python, NumPy, Keras and torch seeds are set exactly as ``set_random_seed`` sets them.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def tensorflow_left_unimported() -> Iterator[None]:
    """Within the block, Keras sees TensorFlow as unavailable unless it is already imported.

    Nothing changes under the TensorFlow backend, once TensorFlow is imported, or once Keras
    has already looked for it. Afterwards Keras looks again on its next question, so code
    that does use TensorFlow later (e.g. a SavedModel export under JAX) finds it.
    """
    import keras

    try:  # Keras' private lazy module: a Keras without it simply gets no guard
        from keras.src.utils.module_utils import tensorflow as lazy
    except ImportError:
        lazy = None
    # _available is None until Keras first asks; only then is the answer still ours to give.
    untouched = getattr(lazy, "_available", False) is None and "tensorflow" not in sys.modules
    if keras.backend.backend() == "tensorflow" or not untouched:
        yield
        return
    lazy._available = False
    try:
        yield
    finally:
        if lazy.module is None:  # nothing imported TensorFlow through Keras meanwhile
            lazy._available = None
