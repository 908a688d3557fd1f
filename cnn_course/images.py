"""A real photograph to convolve, shipped with matplotlib so it works offline.

The photo is the portrait of Rear Admiral Grace Hopper (U.S. Navy, public domain) that
matplotlib includes as sample data.
"""

from __future__ import annotations

import numpy as np
import torch
from matplotlib import cbook
from PIL import Image


def sample_photo(size: int = 128, gray: bool = True) -> torch.Tensor:
    """The photo as a float tensor in [0, 1]: [1, size, size] (gray) or [3, size, size]."""
    with cbook.get_sample_data("grace_hopper.jpg") as file:
        image = Image.open(file).convert("L" if gray else "RGB")
        side = min(image.size)
        left = (image.width - side) // 2
        image = image.crop((left, 0, left + side, side)).resize((size, size), Image.BILINEAR)
        pixels = np.asarray(image, dtype=np.float32) / 255.0
    tensor = torch.from_numpy(pixels.copy())
    return tensor.unsqueeze(0) if gray else tensor.permute(2, 0, 1).contiguous()
