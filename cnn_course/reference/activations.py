"""Chapter 2: activation functions, their derivatives, softmax and a vanishing-gradient probe.

All functions work elementwise on tensors of any shape (softmax along ``dim``) and never
change their input.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import nn


def relu(x: torch.Tensor) -> torch.Tensor:
    """max(0, x), elementwise."""
    return x.clamp(min=0)


def relu_grad(x: torch.Tensor) -> torch.Tensor:
    """1 where x > 0, else 0 (at x = 0 the subgradient 0, as PyTorch's autograd uses)."""
    return (x > 0).to(x.dtype)


def sigmoid(x: torch.Tensor) -> torch.Tensor:
    """1 / (1 + exp(-x)). In floating point exp(-x) overflows to inf for very negative x,
    and 1 / inf = 0 is the right limit, so this form needs no special case."""
    return 1.0 / (1.0 + torch.exp(-x))


def sigmoid_grad(x: torch.Tensor) -> torch.Tensor:
    """σ(x)·(1 − σ(x))."""
    s = sigmoid(x)
    return s * (1.0 - s)


def tanh(x: torch.Tensor) -> torch.Tensor:
    """tanh(x) = 2·σ(2x) − 1, which stays finite where (eˣ − e⁻ˣ)/(eˣ + e⁻ˣ) gives inf/inf."""
    return 2.0 * sigmoid(2.0 * x) - 1.0


def tanh_grad(x: torch.Tensor) -> torch.Tensor:
    """1 − tanh(x)²."""
    return 1.0 - tanh(x) ** 2


def leaky_relu(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    """x for x > 0, negative_slope · x otherwise."""
    return torch.where(x > 0, x, negative_slope * x)


def leaky_relu_grad(x: torch.Tensor, negative_slope: float = 0.01) -> torch.Tensor:
    """1 where x > 0, negative_slope otherwise (at x = 0 too, as PyTorch's autograd)."""
    return torch.where(x > 0, torch.ones_like(x), torch.full_like(x, negative_slope))


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """exp(x) / sum(exp(x)) along ``dim``, computed after subtracting the maximum along ``dim``
    so that no exponential overflows (the result is unchanged by the shift)."""
    shifted = x - x.amax(dim=dim, keepdim=True)
    exps = torch.exp(shifted)
    return exps / exps.sum(dim=dim, keepdim=True)


def first_layer_grad_norm(layers: Sequence[nn.Linear],
                          activation: Callable[[torch.Tensor], torch.Tensor],
                          x: torch.Tensor) -> float:
    """Norm of d(loss)/d(layers[0].weight) for the stack ``activation(layer(...))``.

    The activation follows every layer, the last one included; the loss is the sum of the
    final outputs. x: [batch, layers[0].in_features]. Gradients already stored in the layers
    are ignored (``torch.autograd.grad`` does not touch ``.grad``).
    """
    h = x
    for layer in layers:
        h = activation(layer(h))
    (grad,) = torch.autograd.grad(h.sum(), layers[0].weight)
    return grad.norm().item()
