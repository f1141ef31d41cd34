"""Length bucketing: train each batch on only as many positions as its longest review needs.

Reviews are padded with id 0 in front to ``sequence_length`` tokens, yet most are far shorter
(IMDB: mean 209 of 400). A batch of similar-length reviews, trimmed on the left to a bucket
length, convolves fewer positions with the same layers and weights.

Exact semantics. Every batch keeps at least ``kernel_size`` padding tokens in front of its
longest review (or all ``sequence_length`` tokens), so each review keeps every convolution
window that touches one of its tokens, and at least one all-padding window whenever the
untrimmed review had one. All-padding windows are identical, so without dropout the trimmed
batch's outputs equal the untrimmed ones (up to float rounding). In training, dropout draws
its masks over fewer padding positions, as with any other batch shape. Batch normalization is
the exception ([`buckets_exactly`][seqnet.buckets.buckets_exactly]): such networks train on
untrimmed batches.

NumPy and Keras utilities only: importing this module never imports a backend's framework.
"""

from __future__ import annotations

import keras
import numpy as np

from seqnet.config import PADDING_ID, ModelConfig

# Bucket lengths are multiples of this, up to the sequence length: 8 shapes for 400 tokens,
# so JAX and TensorFlow compile a handful of programs, each reused hundreds of times.
BUCKET_STEP = 50


def buckets_exactly(config: ModelConfig) -> bool:
    """Whether trimmed training batches train ``config``'s network as untrimmed ones would.

    The architecture says
    ([`Architecture.trains_trimmed`][seqnet.model.Architecture.trains_trimmed]).
    The lecture's CNN does, but not with batch normalization: in training, the
    BatchNormalization after the convolution takes its mean and variance over every step of
    the batch, padding windows included, so a trimmed batch (fewer padding windows) is
    normalized with other statistics than the same batch untrimmed, and trains another
    network. Its moving statistics make inference exact at any trimmed length, so only
    training is refused.
    """
    from seqnet.model import architecture_of  # keras layers: only when asked

    architecture = architecture_of(config)
    return architecture.trim_window(config) is not None and architecture.trains_trimmed(config)


def review_lengths(x: np.ndarray) -> np.ndarray:
    """Tokens after the leading padding of each row of ``x`` (reviews, length): int vector."""
    content = x != PADDING_ID
    first = np.where(content.any(axis=1), content.argmax(axis=1), x.shape[1])
    return x.shape[1] - first


def bucket_lengths(
    lengths: np.ndarray, *, kernel_size: int, sequence_length: int, step: int = BUCKET_STEP
) -> np.ndarray:
    """The length each review's bucket trims to: its length plus ``kernel_size`` padding
    tokens, rounded up to a multiple of ``step``, at most ``sequence_length``."""
    needed = np.asarray(lengths) + kernel_size
    return np.minimum(-(-needed // step) * step, sequence_length)


def trimmed_length(x: np.ndarray, *, kernel_size: int, step: int = BUCKET_STEP) -> int:
    """The length all rows of ``x`` can be trimmed to together: their longest review's bucket."""
    if not len(x):
        return x.shape[1]
    longest = review_lengths(x).max(keepdims=True)
    length = bucket_lengths(longest, kernel_size=kernel_size, sequence_length=x.shape[1], step=step)
    return int(length[0])


def bucket_sizes(sequence_length: int, step: int = BUCKET_STEP) -> list[int]:
    """Every length a batch can be trimmed to: multiples of ``step``, then the full length."""
    return [*range(step, sequence_length, step), sequence_length]


def bucketed_batches(
    x: np.ndarray,
    batch_size: int,
    *,
    kernel_size: int,
    rng: np.random.Generator | None = None,
    step: int = BUCKET_STEP,
) -> list[tuple[np.ndarray, int]]:
    """Split the rows of ``x`` into batches of similar length, each with its trimmed length.

    With ``rng``, reviews are shuffled within each bucket and the batches then shuffled, so
    the order depends only on the generator's seed; without, the batches go from short to
    long, for evaluation. Every row lands in exactly one batch; only the last batch of the
    sorted order can be smaller than ``batch_size``.

    Returns:
        ``(row indices, length)`` per batch; ``x[indices, -length:]`` is the trimmed batch.
    """
    buckets = bucket_lengths(
        review_lengths(x), kernel_size=kernel_size, sequence_length=x.shape[1], step=step
    )
    order = rng.permutation(len(x)) if rng is not None else np.arange(len(x))
    order = order[np.argsort(buckets[order], kind="stable")]  # by bucket, random within
    batches = [order[start : start + batch_size] for start in range(0, len(x), batch_size)]
    if rng is not None:
        batches = [batches[i] for i in rng.permutation(len(batches))]
    # A batch that straddles two buckets takes the longer one.
    return [(rows, int(buckets[rows].max())) for rows in batches]


class BucketedBatches(keras.utils.PyDataset):
    """``(x, y)`` in [`bucketed_batches`][seqnet.buckets.bucketed_batches]' batches, trimmed.

    Each item is ``(x[rows, -length:], y[rows])``: int32 of shape (batch, length) and (batch,).
    """

    def __init__(self, x: np.ndarray, y: np.ndarray, batches: list[tuple[np.ndarray, int]]):
        super().__init__()
        self.x, self.y, self.batches = x, y, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        rows, length = self.batches[index]
        return self.x[rows, -length:], self.y[rows]


def fit_input(batches: BucketedBatches):
    """``batches`` as ``Model.fit`` takes them on the current backend.

    Keras infers a ``tf.data`` signature from a PyDataset's first two batches, which fixes the
    length whenever those two happen to share one; TensorFlow gets a dataset whose signature
    leaves the length open. The other backends take the PyDataset as it is.
    """
    if keras.backend.backend() != "tensorflow":
        return batches
    import tensorflow as tf

    # Gathered by TensorFlow ops, not a Python generator: a `from_generator` dataset stalled
    # every `fit` for seconds after its last epoch.
    rows = tf.RaggedTensor.from_row_lengths(
        np.concatenate([rows for rows, _ in batches.batches]).astype("int64"),
        [len(rows) for rows, _ in batches.batches],
    )  # (batches, reviews in the batch)
    lengths = np.array([length for _, length in batches.batches], dtype="int32")
    x, y = tf.constant(batches.x), tf.constant(batches.y)

    def trimmed_batch(rows, length):
        return tf.gather(x, rows)[:, -length:], tf.gather(y, rows)  # (batch, length), (batch,)

    # Without autotuning: deleting an autotuned iterator waited for its tuning thread, which
    # stalled the end of some `fit` calls by seconds.
    options = tf.data.Options()
    options.autotune.enabled = False
    dataset = tf.data.Dataset.from_tensor_slices((rows, lengths))
    return dataset.map(trimmed_batch).prefetch(2).with_options(options)
