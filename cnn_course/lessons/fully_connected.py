"""Hand-made features for digit images, the way optical character readers built them before
networks learned their own: the share of ink in each cell of a coarse grid ("zoning")."""

from __future__ import annotations

from numbers import Integral

import torch

from cnn_course.messages import tr


def _positive_int(value: object, name: str) -> int:
    if not isinstance(value, Integral) or isinstance(value, bool):
        raise TypeError(tr("{name} must be a positive int, got {value!r} ({type_name})",
                           name=name, value=value, type_name=type(value).__name__))
    if value < 1:
        raise ValueError(tr("{name} must be a positive int, got {value}", name=name,
                            value=value))
    return int(value)


def _as_tensor(values: object, name: str) -> torch.Tensor:
    if isinstance(values, torch.Tensor):
        return values
    try:
        return torch.as_tensor(values)
    except (TypeError, ValueError, RuntimeError):
        raise TypeError(tr("{name} must be a tensor (or an array of numbers), got {type_name}",
                           name=name, type_name=type(values).__name__)) from None


def ink_features(images: torch.Tensor, grid: int) -> torch.Tensor:
    """Share of ink in each cell of a ``grid`` x ``grid`` partition of every image.

    images: a batch [N, H, W] or one image [H, W], with values in [0, 1] (0 = paper, 1 = full
    ink); uint8 pixels (0-255, as ``load_mnist`` returns them) are divided by 255 first, other
    integer or bool images are taken as they are. ``grid`` must divide H and W. Returns
    [N, grid * grid] (or [grid * grid] for one image): cell (row r, column c) at index
    ``r * grid + c``.
    """
    images = _as_tensor(images, "images")
    grid = _positive_int(grid, "grid")
    if images.dim() not in (2, 3):
        raise ValueError(tr("images must be one image [H, W] or a batch [N, H, W], got shape "
                            "{shape}", shape=tuple(images.shape)))
    if images.dtype == torch.uint8:
        images = images.float() / 255
    elif not (images.is_floating_point() or images.is_complex()):
        images = images.float()
    single = images.dim() == 2
    batch = images.unsqueeze(0) if single else images
    n, height, width = batch.shape
    if height % grid or width % grid:
        raise ValueError(tr("a {grid}x{grid} grid does not divide {height}x{width} images "
                            "evenly", grid=grid, height=height, width=width))
    cells = batch.reshape(n, grid, height // grid, grid, width // grid)
    features = cells.mean(dim=(2, 4)).reshape(n, grid * grid)
    return features[0] if single else features


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class indices [N] -> float32 one-hot targets [N, num_classes] (one 1 per row).

    ``labels`` holds integers from 0 to ``num_classes - 1`` (a tensor, array or list); one
    label (a 0-d tensor) gives one row [num_classes].
    """
    labels = _as_tensor(labels, "labels")
    num_classes = _positive_int(num_classes, "num_classes")
    if labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise TypeError(tr("labels must be integer class indices, got dtype {dtype} (convert "
                           "them with labels.long())", dtype=labels.dtype))
    if labels.dim() > 1:
        raise ValueError(tr("labels must be a 1-d tensor [N], got shape {shape}",
                            shape=tuple(labels.shape)))
    if labels.numel() and (labels.min() < 0 or labels.max() >= num_classes):
        bad = labels[(labels < 0) | (labels >= num_classes)][0].item()
        raise ValueError(tr("label {bad} is not a class index: with num_classes={num_classes} "
                            "labels go from 0 to {last}", bad=bad, num_classes=num_classes,
                            last=num_classes - 1))
    flat = labels.reshape(-1).long()
    targets = torch.zeros(len(flat), num_classes, device=labels.device)
    targets[torch.arange(len(flat), device=labels.device), flat] = 1.0
    return targets[0] if labels.dim() == 0 else targets


def standardize(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Scale every feature column to mean 0 and standard deviation 1, with statistics taken
    from ``train`` only (so that the validation and test data stay unseen). Tensors [N, F]."""
    mean, std = train.mean(dim=0), train.std(dim=0).clamp_min(1e-6)
    return [(t - mean) / std for t in (train, *others)]
