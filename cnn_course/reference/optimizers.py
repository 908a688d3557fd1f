"""Chapter 6: optimizer updates from scratch, written as PyTorch's ``torch.optim`` computes them.

Every function takes the same four things:

- ``params``: a list of tensors, updated **in place** (any shapes);
- ``grads``: a list of tensors of the same shapes, the gradients for this step;
- ``state``: a dict the function owns; it starts empty and is passed back unchanged at every
  call, so it can hold momentum buffers, running averages and the step count;
- the hyperparameters, named as in ``torch.optim``.

Only the default options are covered (no ``dampening``, ``maximize``, ``amsgrad``,
``centered`` or ``lr_decay``). The module also holds the small LeNet-5 the chapter trains.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from cnn_course.models import lenet5_for_mnist

Tensors = list[torch.Tensor]


def sgd_step(params: Tensors, grads: Tensors, state: dict, lr: float, momentum: float = 0.0,
             nesterov: bool = False, weight_decay: float = 0.0) -> None:
    """One step of ``torch.optim.SGD`` (``dampening=0``).

    g <- g + weight_decay * p;  b <- momentum * b + g (b = g at the first step);
    p <- p - lr * (g + momentum * b if nesterov else b).
    """
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        if weight_decay:
            g = g + weight_decay * p
        if momentum:
            if i in state:
                state[i] = momentum * state[i] + g
            else:
                state[i] = g.clone()
            g = g + momentum * state[i] if nesterov else state[i]
        p -= lr * g


def adagrad_step(params: Tensors, grads: Tensors, state: dict, lr: float = 0.01,
                 eps: float = 1e-10, weight_decay: float = 0.0) -> None:
    """One step of ``torch.optim.Adagrad``: s <- s + g^2;  p <- p - lr * g / (sqrt(s) + eps)."""
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        if weight_decay:
            g = g + weight_decay * p
        state[i] = state.get(i, torch.zeros_like(p)) + g * g
        p -= lr * g / (state[i].sqrt() + eps)


def rmsprop_step(params: Tensors, grads: Tensors, state: dict, lr: float = 0.01,
                 alpha: float = 0.99, eps: float = 1e-8, weight_decay: float = 0.0) -> None:
    """One step of ``torch.optim.RMSprop``: v <- alpha v + (1 - alpha) g^2;
    p <- p - lr * g / (sqrt(v) + eps)."""
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        if weight_decay:
            g = g + weight_decay * p
        state[i] = alpha * state.get(i, torch.zeros_like(p)) + (1 - alpha) * g * g
        p -= lr * g / (state[i].sqrt() + eps)


def _adam_update(params: Tensors, grads: Tensors, state: dict, lr: float,
                 betas: tuple[float, float], eps: float) -> None:
    beta1, beta2 = betas
    state["step"] = t = state.get("step", 0) + 1
    for i, (p, g) in enumerate(zip(params, grads, strict=True)):
        m, v = state.get(("m", i), torch.zeros_like(p)), state.get(("v", i), torch.zeros_like(p))
        m = beta1 * m + (1 - beta1) * g
        v = beta2 * v + (1 - beta2) * g * g
        state["m", i], state["v", i] = m, v
        m_hat = m / (1 - beta1 ** t)
        v_hat = v / (1 - beta2 ** t)
        p -= lr * m_hat / (v_hat.sqrt() + eps)


def adam_step(params: Tensors, grads: Tensors, state: dict, lr: float = 0.001,
              betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
              weight_decay: float = 0.0) -> None:
    """One step of ``torch.optim.Adam``; its weight decay is L2, added to the gradient."""
    if weight_decay:
        grads = [g + weight_decay * p for p, g in zip(params, grads, strict=True)]
    _adam_update(params, grads, state, lr, betas, eps)


def adamw_step(params: Tensors, grads: Tensors, state: dict, lr: float = 0.001,
               betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
               weight_decay: float = 0.01) -> None:
    """One step of ``torch.optim.AdamW``: p <- p (1 - lr * weight_decay), then Adam's step
    on the unchanged gradient (decoupled weight decay)."""
    for p in params:
        p *= 1 - lr * weight_decay
    _adam_update(params, grads, state, lr, betas, eps)


# ---- the network the chapter trains ----------------------------------------------------------

def lenet5() -> nn.Sequential:
    """The course's LeNet-5 for 28x28 MNIST digits (:func:`cnn_course.models.lenet5_for_mnist`),
    with ReLU and max pooling, as a plain ``nn.Sequential`` of the same named layers.

    conv 1->6 5x5 padding 2 -> [6, 28, 28], pool -> 14x14, conv 6->16 5x5 -> [16, 10, 10],
    pool -> 5x5, then 400 -> 120 -> 84 -> 10. Input [N, 1, 28, 28], output logits [N, 10].
    """
    # The layers are registered in the order the forward pass runs them, so a Sequential of
    # them computes the same function; the chapter prints the network as that Sequential.
    return nn.Sequential(OrderedDict(lenet5_for_mnist().named_children()))
