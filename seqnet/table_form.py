"""The lecture CNN's exact table form for inference: gathered rows added, not a convolution.

A ``Conv1D`` over embeddings is linear in the embedding rows. With ``E`` the
``(vocabulary, 50)`` embedding and ``W_k`` tap ``k`` of the ``(3, 50, 250)`` kernel, the
response of window ``t`` is ``Σ_k E[x_{t+k}] · W_k = Σ_k (E · W_k)[x_{t+k}]``. The
``kernel_size`` tables ``E · W_k``, ``(vocabulary, 250)`` each, are computed once per loaded
model; then a window costs ``kernel_size`` gathered rows and their sum instead of 150
multiply-adds per filter. The rest of the network (max over windows, bias, ReLU, the two dense
layers) is small.

NumPy only, so the same on every backend, with nothing to compile and none of Keras' per-call
set-up. It runs on one core while the Keras forward pass uses all, yet it is faster at every
chunk size ``Classifier`` uses, most of all for small ones such as serving a request or
``Classifier.predict`` on one text (``benchmarks/table_form.py`` measures both forms side by
side per backend); outputs equal the portable network's to float32 rounding.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from seqnet.config import INFERENCE_BATCH_SIZE, ModelConfig
from seqnet.task import output_activation

# Chunks of up to this many texts take the table form, larger ones the Keras forward pass.
# With cache-sized chunks (CHUNK_BYTES) benchmarks/table_form.py finds the tables faster on
# every backend at every chunk size up to it and at every length (1.1-6x).
TABLE_FORM_ROWS = INFERENCE_BATCH_SIZE
# Tables larger than this are not built (a vocabulary of 20,000 ids and 250 filters in three
# taps need 60 MB): the Keras forward pass serves such models.
MAX_TABLE_BYTES = 256 * 2**20
# Texts are summed and max-pooled in chunks whose (texts, windows, filters) float32 responses
# take at most this many bytes (at least one text), so that the taps' passes over them stay in
# a core's cache: one (32, 232, 250) array of 7.4 MB spills to memory on every pass.
CHUNK_BYTES = 2 * 2**20


@dataclass(frozen=True)
class TableForm:
    """The lecture CNN's forward pass at inference, from per-tap tables of embedding x kernel.

    Args:
        tables: ``(kernel_size, vocabulary, filters)`` float32, tap ``k``'s ``E · W_k``.
        convolution_bias: ``(filters,)``, added after the max (max commutes with it and ReLU).
        hidden: The hidden Dense layer's kernel ``(filters, hidden)`` and bias.
        head: The head's kernel ``(hidden, units)`` and bias.
        activation: The head's, ``"sigmoid"`` or ``"softmax"``.
        rows: The largest chunk of texts it is faster for than the Keras forward pass.

    Examples:
        >>> from seqnet.model import LectureCnn, build_network
        >>> config = ModelConfig(vocabulary_size=100, sequence_length=20)
        >>> network = build_network(config, variable_length=True)
        >>> table_form = LectureCnn().inference_form(config, network)
        >>> ids = np.arange(20, dtype=np.int32).reshape(1, 20)
        >>> bool(np.allclose(table_form(ids), network.predict_on_batch(ids), atol=1e-6))
        True
    """

    tables: np.ndarray
    convolution_bias: np.ndarray
    hidden: tuple[np.ndarray, np.ndarray]
    head: tuple[np.ndarray, np.ndarray]
    activation: str
    rows: int = 1

    @classmethod
    def of(
        cls,
        config: ModelConfig,
        *,
        embedding: np.ndarray,
        convolution: list[np.ndarray],
        hidden: list[np.ndarray],
        head: list[np.ndarray],
    ) -> TableForm | None:
        """The table form of the portable lecture CNN of ``config`` with these weights; None
        where there is none: with batch normalization (the scale after the ReLU may be
        negative, so it does not commute with the max) or tables over ``MAX_TABLE_BYTES``.

        Args:
            config: The network's config.
            embedding: The embedding matrix, ``(vocabulary, 50)``.
            convolution: The ``Conv1D``'s kernel ``(3, 50, 250)`` and bias ``(250,)``.
            hidden: The hidden ``Dense`` layer's kernel and bias.
            head: The head's kernel and bias.
        """
        table_bytes = 4 * config.kernel_size * config.vocabulary_size * config.filters
        if config.batch_normalization or table_bytes > MAX_TABLE_BYTES:
            return None
        kernel, bias = convolution
        # In float64, then rounded once: each entry is the exact dot product to float32.
        tables = np.einsum("ve,kef->kvf", embedding.astype(np.float64), kernel.astype(np.float64))
        return cls(
            tables=np.ascontiguousarray(tables, dtype=np.float32),
            convolution_bias=bias,
            hidden=tuple(hidden),
            head=tuple(head),
            activation=output_activation(config.num_classes),
            rows=TABLE_FORM_ROWS,
        )

    def __call__(self, token_ids: np.ndarray) -> np.ndarray:
        """The portable network's output for ``(texts, length)`` int token ids: ``(texts,
        units)`` float32 probabilities (one sigmoid unit, or a softmax over the classes)."""
        windows = token_ids.shape[1] - len(self.tables) + 1
        texts = max(1, CHUNK_BYTES // (4 * windows * self.tables.shape[2]))  # per chunk
        maxima = [
            self._maxima(token_ids[start : start + texts], windows)
            for start in range(0, len(token_ids), texts)
        ]
        pooled = np.maximum(np.concatenate(maxima) + self.convolution_bias, 0.0)  # (texts, 250)
        hidden = np.maximum(pooled @ self.hidden[0] + self.hidden[1], 0.0)
        logits = hidden @ self.head[0] + self.head[1]  # (texts, units)
        return _activate(logits, self.activation)

    def _maxima(self, token_ids: np.ndarray, windows: int) -> np.ndarray:
        """Each filter's largest window response, before bias and ReLU: ``(texts, filters)``."""
        responses = np.take(self.tables[0], token_ids[:, :windows], axis=0)  # (chunk, 398, 250)
        for tap in range(1, len(self.tables)):
            responses += np.take(self.tables[tap], token_ids[:, tap : tap + windows], axis=0)
        return responses.max(axis=1)


def _activate(logits: np.ndarray, activation: str) -> np.ndarray:
    """The head's activation in float32, without overflow for logits of any size."""
    if activation == "sigmoid":
        return np.exp(-np.logaddexp(np.float32(0.0), -logits)).astype(np.float32)
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (shifted / shifted.sum(axis=1, keepdims=True)).astype(np.float32)
