"""Hand-made features and one-hot targets: the book's results unchanged, more inputs accepted,
clear errors for the rest."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from cnn_course.lessons.fully_connected import ink_features, one_hot


def _zoning(images: torch.Tensor, grid: int) -> torch.Tensor:
    """The formula the book's figures and numbers were computed with."""
    n, h, w = images.shape
    return images.reshape(n, grid, h // grid, grid, w // grid).mean(dim=(2, 4)).reshape(n, -1)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_float_batches_give_the_same_features_as_before(dtype):
    images = torch.rand(5, 28, 28, generator=torch.Generator().manual_seed(0), dtype=dtype)
    for grid in (7, 4, 2, 1):
        got = ink_features(images, grid)
        assert got.dtype == dtype and torch.equal(got, _zoning(images, grid))
        pooled = F.avg_pool2d(images[:, None], 28 // grid)[:, 0].reshape(5, -1)
        assert torch.allclose(got, pooled)


def test_one_image_gives_one_row_of_features():
    images = torch.rand(3, 28, 28, generator=torch.Generator().manual_seed(1))
    single = ink_features(images[1], 7)
    assert single.shape == (49,) and torch.equal(single, ink_features(images, 7)[1])


def test_uint8_pixels_are_read_as_shares_of_255():
    pixels = torch.randint(0, 256, (4, 28, 28), dtype=torch.uint8,
                           generator=torch.Generator().manual_seed(2))
    got = ink_features(pixels, 7)
    assert got.dtype == torch.float32
    assert torch.allclose(got, ink_features(pixels.float() / 255, 7))
    assert torch.equal(ink_features(torch.ones(28, 28, dtype=torch.bool), 4), torch.ones(16))
    assert torch.equal(ink_features(np.zeros((2, 8, 8)), 2), torch.zeros(2, 4, dtype=torch.float64))


@pytest.mark.parametrize("images,grid,error,message", [
    (torch.rand(2, 1, 28, 28), 7, ValueError, r"one image \[H, W\] or a batch \[N, H, W\]"),
    (torch.rand(28), 7, ValueError, r"got shape \(28,\)"),
    (torch.rand(2, 28, 28), 5, ValueError, "does not divide 28x28"),
    (torch.rand(2, 28, 28), 0, ValueError, "grid must be a positive int"),
    (torch.rand(2, 28, 28), 7.0, TypeError, "grid must be a positive int"),
    ("an image", 7, TypeError, "images must be a tensor"),
])
def test_bad_images_or_grids_get_a_clear_message(images, grid, error, message):
    with pytest.raises(error, match=message):
        ink_features(images, grid)


def test_one_hot_is_unchanged_and_takes_lists_and_single_labels():
    labels = torch.tensor([3, 0, 9, 9])
    targets = one_hot(labels, 10)
    assert targets.dtype == torch.float32 and torch.equal(targets, F.one_hot(labels, 10).float())
    assert torch.equal(one_hot([1, 0], 2), torch.eye(2).flip(0))
    assert torch.equal(one_hot(torch.tensor(2), 3), torch.tensor([0.0, 0.0, 1.0]))
    assert one_hot(torch.tensor([], dtype=torch.long), 10).shape == (0, 10)
    assert torch.equal(one_hot(torch.tensor([1], dtype=torch.uint8), 2), torch.tensor([[0., 1.]]))


@pytest.mark.parametrize("labels,num_classes,error,message", [
    (torch.tensor([3, 10]), 10, ValueError, "label 10 is not a class index.*from 0 to 9"),
    (torch.tensor([-1, 2]), 10, ValueError, "label -1 is not a class index"),
    (torch.tensor([1.0, 2.0]), 10, TypeError, "integer class indices, got dtype torch.float32"),
    ([0.5], 10, TypeError, "integer class indices"),
    (torch.tensor([[1, 2]]), 10, ValueError, r"1-d tensor \[N\], got shape \(1, 2\)"),
    (torch.tensor([1]), 0, ValueError, "num_classes must be a positive int"),
    (torch.tensor([1]), "10", TypeError, "num_classes must be a positive int"),
    ("3", 10, TypeError, "labels must be a tensor"),
])
def test_bad_labels_get_a_clear_message(labels, num_classes, error, message):
    with pytest.raises(error, match=message):
        one_hot(labels, num_classes)
