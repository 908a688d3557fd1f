"""Chapter 1: convolution from scratch."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnn_course.arith import conv_output_size, conv_params  # noqa: F401  (re-exported)


def conv2d_loops(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                 stride: int = 1, padding: int = 0) -> torch.Tensor:
    """Cross-correlation with explicit loops, as ``F.conv2d`` computes it.

    x: [N, C_in, H, W]; weight: [C_out, C_in, kH, kW]; bias: [C_out] or None.
    Returns [N, C_out, H_out, W_out].
    """
    x = F.pad(x, (padding, padding, padding, padding))
    n, _, height, width = x.shape
    c_out, _, kh, kw = weight.shape
    h_out = (height - kh) // stride + 1
    w_out = (width - kw) // stride + 1
    out = torch.zeros(n, c_out, h_out, w_out, dtype=x.dtype)
    for i in range(h_out):
        for j in range(w_out):
            patch = x[:, :, i * stride:i * stride + kh, j * stride:j * stride + kw]
            # [N, 1, C_in, kH, kW] * [1, C_out, C_in, kH, kW], summed over C_in, kH, kW
            out[:, :, i, j] = (patch.unsqueeze(1) * weight.unsqueeze(0)).sum(dim=(2, 3, 4))
    if bias is not None:
        out += bias.view(1, -1, 1, 1)
    return out


def conv2d_im2col(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None,
                  stride: int = 1, padding: int = 0) -> torch.Tensor:
    """The same convolution as one matrix product over unfolded patches (im2col).

    x: [N, C_in, H, W]; weight: [C_out, C_in, kH, kW]. Returns [N, C_out, H_out, W_out].
    """
    n, _, height, width = x.shape
    c_out, c_in, kh, kw = weight.shape
    h_out = (height + 2 * padding - kh) // stride + 1
    w_out = (width + 2 * padding - kw) // stride + 1
    columns = F.unfold(x, (kh, kw), padding=padding, stride=stride)  # [N, C_in*kH*kW, L]
    out = weight.reshape(c_out, -1) @ columns                        # [N, C_out, L]
    if bias is not None:
        out = out + bias.view(1, -1, 1)
    return out.reshape(n, c_out, h_out, w_out)


def vertical_edge_kernel() -> torch.Tensor:
    """A 3x3 Sobel kernel, a float32 tensor of shape [3, 3]: positive where brightness falls
    from left to right."""
    return torch.tensor([[1.0, 0.0, -1.0],
                         [2.0, 0.0, -2.0],
                         [1.0, 0.0, -1.0]])
