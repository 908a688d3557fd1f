"""Feature maps and measurements for Chapter 3 (pooling): the book page, the notebook and the
pooling explorer share them, so that they all show the same numbers."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from cnn_course.messages import tr

SOBEL = torch.tensor([[1.0, 0.0, -1.0],
                      [2.0, 0.0, -2.0],
                      [1.0, 0.0, -1.0]])


def edge_features(images: torch.Tensor) -> torch.Tensor:
    """A conv layer with two hand-set kernels (vertical and horizontal Sobel) and a ReLU.

    images: [N, 1, H, W]. Returns [N, 2, H-2, W-2]: channel 0 fires on vertical edges,
    channel 1 on horizontal ones (no padding, so no border artefacts).
    """
    kernels = torch.stack([SOBEL, SOBEL.T])[:, None]        # [2, 1, 3, 3]
    return F.relu(F.conv2d(images, kernels.to(images)))


def edge_strength(images: torch.Tensor) -> torch.Tensor:
    """Edge magnitude sqrt(gx^2 + gy^2) of gray images: [N, 1, H, W] -> [N, 1, H-2, W-2]."""
    kernels = torch.stack([SOBEL, SOBEL.T])[:, None].to(images)
    gradients = F.conv2d(images, kernels)
    return gradients.pow(2).sum(dim=1, keepdim=True).sqrt()


def shifted_pair(images: torch.Tensor, pixels: int = 1, margin: int = 4
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Two crops of the same images, the second with the content moved ``pixels`` to the right.

    Cropping (rather than rolling) keeps the wrapped-around edge out of the comparison.
    images: [N, C, H, W]. Returns two [N, C, H - 2*margin, W - 2*margin] tensors.
    """
    if not 0 <= pixels <= margin:
        raise ValueError(tr("the shift ({pixels}) must be between 0 and the margin ({margin})",
                            pixels=pixels, margin=margin))
    width = images.shape[-1]
    base = images[..., margin:-margin, margin:width - margin]
    moved = images[..., margin:-margin, margin - pixels:width - margin - pixels]
    return base, moved


def detections_kept(before: torch.Tensor, after: torch.Tensor, level: float = 0.3) -> float:
    """Share of the strong responses of ``before`` that are still strong at the same position
    in ``after``. "Strong" means above ``level`` times the largest value of that image's map.

    before, after: [N, C, H, W] feature maps of the same shape.
    """
    threshold = level * before.amax(dim=(1, 2, 3), keepdim=True)
    strong = before > threshold
    return float((strong & (after > threshold)).sum() / strong.sum().clamp(min=1))


def relative_change(before: torch.Tensor, after: torch.Tensor) -> float:
    """||after - before|| / ||before||: 0 when nothing changed, sqrt(2) for two equally strong
    maps that never fire at the same place."""
    return float((after - before).norm() / before.norm())
