"""Numpy reference implementations of the linear NIR operators (used to compose chains of
operators between two neuron nodes into one projection, and to compute constant bias
inputs). Batched: every function maps ``(B, *in_shape)`` to ``(B, *out_shape)``.

Cost: a convolution is ``O(B * C_out * C_in/groups * kh * kw * H_out * W_out)``.
"""

from __future__ import annotations

import numpy as np


def same_padding(kernel: int, dilation: int) -> tuple[int, int]:
    """PyTorch's ``padding='same'`` for stride 1: (before, after), extra goes after."""
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def conv_out_size(n: int, before: int, after: int, kernel: int, stride: int, dil: int) -> int:
    """Output length of a convolution along one axis (PyTorch formula)."""
    return (n + before + after - dil * (kernel - 1) - 1) // stride + 1


def conv2d(
    x: np.ndarray,
    weight: np.ndarray,
    stride: tuple[int, int],
    pad: tuple[int, int, int, int],
    dilation: tuple[int, int],
    groups: int,
) -> np.ndarray:
    """Cross-correlation as in ``torch.nn.functional.conv2d`` (no bias).

    ``x``: (B, C_in, H, W); ``weight``: (C_out, C_in/groups, kh, kw);
    ``pad``: (top, bottom, left, right). Returns (B, C_out, H_out, W_out).
    """
    b, _c_in, h, w = x.shape
    c_out, cpg, kh, kw = weight.shape
    top, bottom, left, right = pad
    sh, sw = stride
    dh, dw = dilation
    xp = np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))
    ho = conv_out_size(h, top, bottom, kh, sh, dh)
    wo = conv_out_size(w, left, right, kw, sw, dw)
    opg = c_out // groups
    out = np.zeros((b, c_out, ho, wo))
    for g in range(groups):
        xg = xp[:, g * cpg : (g + 1) * cpg]
        wg = weight[g * opg : (g + 1) * opg]
        for i in range(kh):
            for j in range(kw):
                patch = xg[
                    :,
                    :,
                    i * dh : i * dh + sh * (ho - 1) + 1 : sh,
                    j * dw : j * dw + sw * (wo - 1) + 1 : sw,
                ]
                out[:, g * opg : (g + 1) * opg] += np.einsum("bchw,oc->bohw", patch, wg[:, :, i, j])
    return out
