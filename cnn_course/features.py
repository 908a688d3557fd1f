"""Hand-made features for digit images, the way optical character readers built them before
networks learned their own: the share of ink in each cell of a coarse grid ("zoning")."""

from __future__ import annotations

import torch


def ink_features(images: torch.Tensor, grid: int) -> torch.Tensor:
    """Share of ink in each cell of a ``grid`` x ``grid`` partition of every image.

    images: [N, H, W] with values in [0, 1] (0 = paper, 1 = full ink); ``grid`` must divide H
    and W. Returns [N, grid * grid]: cell (row r, column c) at index ``r * grid + c``.
    """
    n, height, width = images.shape
    if height % grid or width % grid:
        raise ValueError(f"a {grid}x{grid} grid does not divide {height}x{width} images evenly")
    cells = images.reshape(n, grid, height // grid, grid, width // grid)
    return cells.mean(dim=(2, 4)).reshape(n, grid * grid)


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Class indices [N] -> float32 one-hot targets [N, num_classes] (one 1 per row)."""
    targets = torch.zeros(len(labels), num_classes)
    targets[torch.arange(len(labels)), labels] = 1.0
    return targets


def standardize(train: torch.Tensor, *others: torch.Tensor) -> list[torch.Tensor]:
    """Scale every feature column to mean 0 and standard deviation 1, with statistics taken
    from ``train`` only (so that the validation and test data stay unseen). Tensors [N, F]."""
    mean, std = train.mean(dim=0), train.std(dim=0).clamp_min(1e-6)
    return [(t - mean) / std for t in (train, *others)]
