"""Chapter 5: backpropagation, as forward/backward pairs.

Every ``*_forward`` returns ``(out, cache)``, where ``cache`` is the tuple of extra arguments
its ``*_backward`` needs, so that ``dx = relu_backward(dout, *cache)`` always works. Every
``*_backward`` receives ``dout``, the gradient of the loss with respect to the layer's output
(same shape as ``out``), and returns the gradients with respect to the layer's inputs and
parameters, each with the shape of the tensor it belongs to.

Weights follow PyTorch's layout: a linear layer's ``w`` is ``[out_features, in_features]``
(``y = x @ w.T + b``), a convolution's ``w`` is ``[C_out, C_in, kH, kW]``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F

# The tiny CNN that cnn_train_step trains is the chapter's lesson network, not an exercise
# answer; it is re-exported here for the notebook's training cells.
from cnn_course.lessons.backprop import init_tiny_cnn, tiny_cnn_logits

__all__ = [
    "cnn_train_step", "conv2d_backward", "conv2d_forward", "init_tiny_cnn", "linear_backward",
    "linear_forward", "max_pool2d_backward", "max_pool2d_forward", "numerical_gradient",
    "relative_error", "relu_backward", "relu_forward", "sigmoid_backward", "sigmoid_forward",
    "softmax", "softmax_cross_entropy", "tiny_cnn_logits",
]

Params = dict[str, torch.Tensor]


# ---- linear ---------------------------------------------------------------------------------

def linear_forward(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor
                   ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
    """``out = x @ w.T + b``.

    x: [N, in]; w: [out, in]; b: [out]. Returns out [N, out] and cache ``(x, w)``.
    """
    return x @ w.T + b, (x, w)


def linear_backward(dout: torch.Tensor, x: torch.Tensor, w: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of a linear layer.

    dout: [N, out]; x: [N, in]; w: [out, in].
    Returns dx [N, in], dw [out, in], db [out] (the bias is added to every example, so its
    gradient sums over the batch).
    """
    return dout @ w, dout.T @ x, dout.sum(dim=0)


# ---- activations ----------------------------------------------------------------------------

def relu_forward(x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor]]:
    """``out = max(x, 0)`` elementwise. x: any shape. Returns out (x's shape), cache ``(x,)``."""
    return x.clamp(min=0), (x,)


def relu_backward(dout: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """dout, x: the same shape. Returns dx: dout where x > 0, else 0 (slope 0 at x == 0 too,
    as PyTorch does)."""
    return dout * (x > 0)


def sigmoid_forward(x: torch.Tensor) -> tuple[torch.Tensor, tuple[torch.Tensor]]:
    """``out = 1 / (1 + exp(-x))``. x: any shape. Returns out and cache ``(out,)``: the
    derivative is cheapest to compute from the output."""
    out = torch.sigmoid(x)
    return out, (out,)


def sigmoid_backward(dout: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """dout, out (the sigmoid's output): the same shape. Returns dx = dout * out * (1 - out)."""
    return dout * out * (1 - out)


# ---- the loss -------------------------------------------------------------------------------

def softmax(logits: torch.Tensor) -> torch.Tensor:
    """Softmax over the last axis, shifted by the row maximum so that exp cannot overflow."""
    shifted = logits - logits.max(dim=-1, keepdim=True).values
    exp = shifted.exp()
    return exp / exp.sum(dim=-1, keepdim=True)


def softmax_cross_entropy(logits: torch.Tensor, y: torch.Tensor
                          ) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean cross-entropy of softmax(logits) against class labels, and its gradient.

    logits: [N, K]; y: [N] integer labels in [0, K). Returns loss (a 0-dim tensor, as
    ``F.cross_entropy``) and dlogits [N, K] = (softmax(logits) - onehot(y)) / N.
    """
    n = logits.shape[0]
    shifted = logits - logits.max(dim=1, keepdim=True).values
    log_probs = shifted - shifted.exp().sum(dim=1, keepdim=True).log()
    loss = -log_probs[torch.arange(n), y].mean()
    onehot = F.one_hot(y, logits.shape[1]).to(logits.dtype)
    return loss, (log_probs.exp() - onehot) / n


# ---- max pooling ----------------------------------------------------------------------------

def max_pool2d_forward(x: torch.Tensor, kernel_size: int = 2, stride: int | None = None
                       ) -> tuple[torch.Tensor, tuple[torch.Tensor, int, int | None]]:
    """Max over each ``kernel_size`` window, windows ``stride`` apart (default: kernel_size).

    x: [N, C, H, W]. Returns out [N, C, H_out, W_out] and cache ``(x, kernel_size, stride)``.
    """
    return F.max_pool2d(x, kernel_size, stride), (x, kernel_size, stride)


def max_pool2d_backward(dout: torch.Tensor, x: torch.Tensor, kernel_size: int = 2,
                        stride: int | None = None) -> torch.Tensor:
    """Route each window's gradient to the position of its maximum.

    dout: [N, C, H_out, W_out]; x: [N, C, H, W]. Returns dx [N, C, H, W]. Where windows
    overlap, a pixel that is the maximum of several windows receives the sum of their
    gradients; pixels no window covers get 0.
    """
    stride = stride or kernel_size
    n, c, height, width = x.shape
    windows = F.unfold(x, kernel_size, stride=stride)           # [N, C*k*k, L]
    windows = windows.view(n, c, kernel_size * kernel_size, -1)  # [N, C, k*k, L]
    winner = F.one_hot(windows.argmax(dim=2), kernel_size * kernel_size)  # [N, C, L, k*k]
    routed = winner.transpose(2, 3).to(dout.dtype) * dout.reshape(n, c, 1, -1)
    # fold adds the values of overlapping windows, which is exactly the sum we need
    return F.fold(routed.reshape(n, -1, routed.shape[-1]), (height, width), kernel_size,
                  stride=stride)


# ---- convolution ----------------------------------------------------------------------------

def conv2d_forward(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor, stride: int = 1,
                   padding: int = 0) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor,
                                                                   int, int]]:
    """Cross-correlation as ``F.conv2d`` (Chapter 1 built it by hand).

    x: [N, C_in, H, W]; w: [C_out, C_in, kH, kW]; b: [C_out]. Returns out
    [N, C_out, H_out, W_out] and cache ``(x, w, stride, padding)``.
    """
    return F.conv2d(x, w, b, stride=stride, padding=padding), (x, w, stride, padding)


def conv2d_backward(dout: torch.Tensor, x: torch.Tensor, w: torch.Tensor, stride: int = 1,
                    padding: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of a convolution layer.

    dout: [N, C_out, H_out, W_out]; x: [N, C_in, H, W]; w: [C_out, C_in, kH, kW].
    Returns dx [N, C_in, H, W], dw [C_out, C_in, kH, kW], db [C_out].

    dx is a transposed convolution of dout with w (at stride 1: a full convolution with the
    flipped kernel); dw correlates the padded input with dout, whose taps sit ``stride``
    pixels apart.
    """
    kh, kw = w.shape[-2:]
    height, width = x.shape[-2:]
    reached_h = (dout.shape[-2] - 1) * stride - 2 * padding + kh
    reached_w = (dout.shape[-1] - 1) * stride - 2 * padding + kw
    # rows and columns that no window reached (stride does not divide evenly) get zeros
    dx = F.conv_transpose2d(dout, w, stride=stride, padding=padding,
                            output_padding=(height - reached_h, width - reached_w))
    x_padded = F.pad(x, (padding, padding, padding, padding))
    # batch plays the role of channels here, so that the sum over examples is the channel sum
    dw = F.conv2d(x_padded.transpose(0, 1), dout.transpose(0, 1), dilation=stride)
    dw = dw[:, :, :kh, :kw].transpose(0, 1)
    return dx, dw, dout.sum(dim=(0, 2, 3))


# ---- checking gradients numerically ---------------------------------------------------------

@torch.no_grad()
def numerical_gradient(f: Callable[[torch.Tensor], object], x: torch.Tensor,
                       h: float = 1e-5) -> torch.Tensor:
    """Central differences ``(f(x + h e_i) - f(x - h e_i)) / 2h`` for every entry i of x.

    f: a function of x returning a scalar (float or 0-dim tensor); x: any shape, ideally
    float64. x is perturbed in place, one entry at a time, and restored. Returns x's shape.
    """
    grad = torch.zeros_like(x)
    flat_x, flat_grad = x.view(-1), grad.view(-1)
    for i in range(flat_x.numel()):
        original = flat_x[i].item()
        flat_x[i] = original + h
        above = float(f(x))
        flat_x[i] = original - h
        below = float(f(x))
        flat_x[i] = original
        flat_grad[i] = (above - below) / (2 * h)
    return grad


def relative_error(a: torch.Tensor | float, b: torch.Tensor | float) -> float:
    """``max |a - b| / max(|a| + |b|, 1e-12)`` over all elements, as a float.

    About 1e-7 or less means two gradients agree (in float64); 1e-2 or more means a bug.
    """
    a, b = torch.as_tensor(a, dtype=torch.float64), torch.as_tensor(b, dtype=torch.float64)
    return float(((a - b).abs() / (a.abs() + b.abs()).clamp(min=1e-12)).max())


# ---- a tiny CNN trained by hand -------------------------------------------------------------

def cnn_train_step(params: Params, x: torch.Tensor, y: torch.Tensor, lr: float
                   ) -> tuple[float, Params]:
    """One SGD step of conv 3x3 (padding 1) -> ReLU -> flatten -> linear -> softmax
    cross-entropy, with every gradient computed by hand.

    params: see :func:`init_tiny_cnn`; x: [N, C_in, H, W]; y: [N] labels; lr: step size.
    Returns the loss before the step (a float) and new parameters ``p - lr * dL/dp``.
    """
    # forward, keeping what the backward pass needs
    conv_out, conv_cache = conv2d_forward(x, params["conv_w"], params["conv_b"], 1, 1)
    hidden, relu_cache = relu_forward(conv_out)
    flat = hidden.flatten(1)
    logits, fc_cache = linear_forward(flat, params["fc_w"], params["fc_b"])
    loss, dlogits = softmax_cross_entropy(logits, y)
    # backward, in the reverse order
    dflat, grads_fc_w, grads_fc_b = linear_backward(dlogits, *fc_cache)
    dconv_out = relu_backward(dflat.view_as(hidden), *relu_cache)
    _, grads_conv_w, grads_conv_b = conv2d_backward(dconv_out, *conv_cache)
    grads = {"conv_w": grads_conv_w, "conv_b": grads_conv_b,
             "fc_w": grads_fc_w, "fc_b": grads_fc_b}
    return float(loss), {name: params[name] - lr * grads[name] for name in params}
