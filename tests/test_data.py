"""Data loading: offline mirror, clear errors, tensor-resident batches."""

import os
from pathlib import Path

import pytest
import torch

from cnn_course import data

MIRROR = os.environ.get("CNN_COURSE_DATA_MIRROR")
needs_mirror = pytest.mark.skipif(
    not MIRROR or not (Path(MIRROR) / "MNIST" / "raw").exists(),
    reason="set CNN_COURSE_DATA_MIRROR to the offline data mirror (CI does)")


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """An empty data root, no mirror, and no network: torchvision's download must fail."""
    monkeypatch.setenv("CNN_COURSE_DATA", str(tmp_path / "root"))
    monkeypatch.delenv("CNN_COURSE_DATA_MIRROR", raising=False)

    def no_network(*args, **kwargs):
        raise OSError("network is unreachable")
    monkeypatch.setattr("urllib.request.urlopen", no_network)
    monkeypatch.setattr("urllib.request.OpenerDirector.open", no_network)
    return tmp_path


def test_data_root_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("CNN_COURSE_DATA", str(tmp_path))
    assert data.data_root() == tmp_path
    monkeypatch.delenv("CNN_COURSE_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert data.data_root() == tmp_path / "cache" / "cnn_course"


@pytest.mark.parametrize("loader,name", [(data.load_mnist, "MNIST"),
                                         (data.load_cifar10, "CIFAR-10")])
def test_missing_data_offline_gives_one_clear_paragraph(offline, loader, name):
    with pytest.raises(data.DataUnavailable) as caught:
        loader(train=False)
    message = str(caught.value)
    assert message.startswith(f"{name} is not on this machine")
    assert "CNN_COURSE_DATA_MIRROR" in message and "\n" not in message
    assert caught.value._render_traceback_() == [f"DataUnavailable: {message}"]


def test_a_mirror_without_the_dataset_is_named(offline, monkeypatch):
    monkeypatch.setenv("CNN_COURSE_DATA_MIRROR", str(offline / "empty-mirror"))
    with pytest.raises(data.DataUnavailable, match="empty-mirror has no cifar10-jpg.tar.gz"):
        data.load_cifar10()


@needs_mirror
def test_mnist_from_the_mirror(monkeypatch, tmp_path):
    monkeypatch.setenv("CNN_COURSE_DATA", str(tmp_path))  # nothing there: the mirror is used
    images, labels = data.load_mnist(train=False)
    assert images.shape == (10_000, 28, 28) and images.dtype == torch.uint8
    assert labels[0].item() == 7 and torch.bincount(labels).sum() == 10_000
    x, y = data.mnist_tensors(train=False, pad_to_32=True)
    assert x.shape == (10_000, 1, 32, 32) and x.dtype == torch.float32
    assert abs(x[:, :, 2:30, 2:30].mean().item()) < 0.1  # normalized
    assert torch.allclose(x[0, 0, 0, 0], torch.tensor(-0.1307 / 0.3081))
    assert list(os.listdir(tmp_path)) == []  # nothing downloaded or copied


@needs_mirror
def test_plain_dataloader_path_matches_the_tensor_path():
    loader = data.mnist_dataloader(train=False, batch_size=16, shuffle=False)
    xb, yb = next(iter(loader))
    x, y = data.mnist_tensors(train=False)
    assert torch.allclose(xb, x[:16], atol=1e-6) and torch.equal(yb, y[:16])


def test_tensor_batches_cover_every_sample_once_per_epoch():
    x, y = torch.arange(10).float().view(10, 1), torch.arange(10)
    batches = data.TensorBatches(x, y, batch_size=4, shuffle=True, seed=0)
    assert len(batches) == 3
    first = torch.cat([yb for _, yb in batches])
    second = torch.cat([yb for _, yb in batches])
    assert sorted(first.tolist()) == list(range(10)) and not torch.equal(first, second)
    for xb, yb in batches:
        assert torch.equal(xb[:, 0].long(), yb)
    ordered = torch.cat([yb for _, yb in data.TensorBatches(x, y, batch_size=3)])
    assert ordered.tolist() == list(range(10))
    with pytest.raises(ValueError, match="10 samples but y has 9"):
        data.TensorBatches(x, y[:9])


def test_channel_stats_and_float_conversion():
    images = torch.zeros(2, 4, 4, 3, dtype=torch.uint8)
    images[..., 0] = 255
    mean, std = data.channel_stats(images)
    assert mean == pytest.approx((1.0, 0.0, 0.0)) and std == pytest.approx((0.0, 0.0, 0.0))
    x = data.to_float_images(images, (0.5, 0.5, 0.5), (0.5, 0.5, 0.5))
    assert x.shape == (2, 3, 4, 4) and x[:, 0].eq(1).all() and x[:, 1].eq(-1).all()


def test_a_partial_mnist_download_falls_through_to_a_clear_paragraph(offline):
    raw = offline / "root" / "MNIST" / "raw"  # an interrupted download: one file of four
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte").write_bytes(b"\0" * 16)
    with pytest.raises(data.DataUnavailable, match="^MNIST is not on this machine"):
        data.load_mnist(train=False)


@needs_mirror
def test_a_partial_mnist_download_falls_through_to_the_mirror(monkeypatch, tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "train-images-idx3-ubyte").write_bytes(b"\0" * 16)
    monkeypatch.setenv("CNN_COURSE_DATA", str(tmp_path))
    images, labels = data.load_mnist(train=False)
    assert images.shape == (10_000, 28, 28) and labels[0].item() == 7


def _tiny_cifar_mirror(folder: Path) -> Path:
    """A CIFAR-10 JPEG mirror with one image per split and class."""
    import io
    import tarfile

    from PIL import Image

    folder.mkdir(parents=True)
    tar_path = folder / "cifar10-jpg.tar.gz"
    with tarfile.open(tar_path, "w:gz") as archive:
        for split in ("train", "test"):
            for index, name in enumerate(data.CIFAR10_CLASSES):
                buffer = io.BytesIO()
                Image.new("RGB", (32, 32), (index * 25, 0, 0)).save(buffer, format="JPEG")
                member = tarfile.TarInfo(f"cifar10/{split}/{name}/0.jpg")
                member.size = buffer.tell()
                buffer.seek(0)
                archive.addfile(member, buffer)
    return tar_path


def test_concurrent_builders_of_the_cifar_cache_decode_once(monkeypatch, tmp_path):
    import threading
    import time

    _tiny_cifar_mirror(tmp_path / "mirror")
    monkeypatch.setenv("CNN_COURSE_DATA", str(tmp_path / "root"))
    monkeypatch.setenv("CNN_COURSE_DATA_MIRROR", str(tmp_path / "mirror"))
    decode, calls = data._decode_cifar_mirror, []

    def slow_decode(tar_path):
        calls.append(tar_path)
        time.sleep(0.3)  # the second builder arrives while the first is still decoding
        return decode(tar_path)
    monkeypatch.setattr(data, "_decode_cifar_mirror", slow_decode)
    results, errors = [], []

    def build():
        try:
            results.append(data.load_cifar10(train=True))
        except Exception as error:  # noqa: BLE001  (reported below)
            errors.append(error)
    threads = [threading.Thread(target=build) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == [] and len(calls) == 1
    for images, labels in results:
        assert images.shape == (10, 32, 32, 3) and labels.tolist() == list(range(10))
    leftovers = [p.name for p in (tmp_path / "root").iterdir() if p.suffix == ".tmp"]
    assert leftovers == []
    test_images, test_labels = data.load_cifar10(train=False)
    assert test_images.shape == (10, 32, 32, 3) and len(calls) == 1


def test_the_cifar_cache_is_readable_by_other_users(monkeypatch, tmp_path):
    """The grader's sandboxed notebooks run as another user: the cache must not be private
    (a temporary file is created with mode 0600)."""
    import os
    import stat

    _tiny_cifar_mirror(tmp_path / "mirror")
    monkeypatch.setenv("CNN_COURSE_DATA", str(tmp_path / "root"))
    monkeypatch.setenv("CNN_COURSE_DATA_MIRROR", str(tmp_path / "mirror"))
    previous = os.umask(0o022)
    try:
        data.load_cifar10(train=True)
    finally:
        os.umask(previous)
    mode = (tmp_path / "root" / "cifar10-jpg-mirror.pt").stat().st_mode
    assert mode & stat.S_IROTH and mode & stat.S_IRGRP and not mode & stat.S_IWOTH
