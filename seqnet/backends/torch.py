"""PyTorch versions of the max-pooled convolution's index and backward functions, and dropout.

Measured on 2 CPU cores at (32, 398, 250): ``torch.max(dim=)`` yields the maximum and its
first index in one pass (the portable max-then-min pass costs about 2x more); Keras'
``ops.segment_sum`` on torch takes ~40x longer than ``index_add_``, and tensor indexing ~40x
longer than ``index_select`` for this gather (benchmarks/sparse_pooling.py).
"""

from __future__ import annotations

import torch


def max_and_first_index(responses: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The max over axis 1 of ``(batch, windows, filters)`` and the first index reaching it."""
    pooled, first = torch.max(responses, dim=1)  # ties go to the first index
    return pooled, first


def window_gradients(inputs, kernel, first, upstream):
    """Gradients w.r.t. ``inputs`` and ``kernel`` when filter f of text b saw window first[b, f].

    Args:
        inputs: ``(batch, steps, channels)``.
        kernel: ``(kernel_size, channels, filters)``.
        first: ``(batch, filters)`` int, the window each filter's maximum came from.
        upstream: ``(batch, filters)``, the gradient of the pooled output.
    """
    batch, steps, channels = inputs.shape
    width, _, filters = kernel.shape
    offsets = torch.arange(width, device=first.device) + (
        torch.arange(batch, device=first.device) * steps
    ).view(-1, 1, 1)  # (batch, 1, K)
    rows = (first.unsqueeze(-1) + offsets).reshape(-1)  # (batch * filters * K,)
    flat_inputs = inputs.reshape(-1, channels)
    windows = flat_inputs.index_select(0, rows).view(batch, filters, width * channels)
    # dW[k, c, f] = sum_b upstream[b, f] * windows[b, f, k, c]
    kernel_gradient = torch.einsum("bf,bfj->jf", upstream, windows).view(width, channels, filters)
    taps = upstream.view(batch, filters, 1, 1) * kernel.permute(2, 0, 1)  # (batch, F, K, C)
    input_gradient = torch.zeros_like(flat_inputs).index_add_(0, rows, taps.reshape(-1, channels))
    return input_gradient.view(batch, steps, channels), kernel_gradient


def dropout(inputs: torch.Tensor, rate: float) -> torch.Tensor:
    """``inputs`` with each entry zeroed when 31 random bits fall below ``rate * 2**31``, and
    the others scaled by ``1 / (1 - rate)``.

    One int64 draw from torch's global generator, as ``torch.nn.functional.dropout`` draws
    from, holds 63 random bits: two entries' worth. Half as many draws as entries, plus a
    few elementwise passes, cost well under half of ``bernoulli_``'s one draw per entry.
    """
    count = inputs.numel()
    words = torch.empty((count + 1) // 2, dtype=torch.int64, device=inputs.device).random_()
    # Each word's low half holds 32 random bits and its high half 31 (the sign bit is 0).
    bits = words.view(torch.int32)[:count].view(inputs.shape) & 0x7FFFFFFF
    keep = bits >= round(rate * 2**31)
    return inputs * keep.to(inputs.dtype).mul_(1 / (1 - rate))
