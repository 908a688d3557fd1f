"""Datasets: MNIST and CIFAR-10, offline-capable, as whole tensors or as a plain DataLoader.

Where the data come from, in order:

1. the data root, ``$CNN_COURSE_DATA`` (default: ``~/.cache/cnn_course``), where torchvision's
   own files live after a normal download;
2. an offline mirror folder, ``$CNN_COURSE_DATA_MIRROR``, if set: MNIST in torchvision's raw
   layout (``MNIST/raw/*-ubyte``) and/or CIFAR-10 as ``cifar10-jpg.tar.gz`` holding
   ``train/<class>/*.jpg`` and ``test/<class>/*.jpg``;
3. torchvision's download into the data root.

If all three fail, :class:`DataUnavailable` says in one paragraph what is missing and how to
get it.
"""

from __future__ import annotations

import io
import os
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from cnn_course.messages import N_, tr, translated

MNIST_MEAN, MNIST_STD = (0.1307,), (0.3081,)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer",
                   "dog", "frog", "horse", "ship", "truck")
_CIFAR_TAR = "cifar10-jpg.tar.gz"
_MNIST_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")


class DataUnavailable(RuntimeError):
    """The dataset is neither on disk nor downloadable; the message says what to do."""

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of a traceback
        return [f"DataUnavailable: {self}"]


def data_root() -> Path:
    """Folder for downloads and caches: ``$CNN_COURSE_DATA`` or ``~/.cache/cnn_course``."""
    configured = os.environ.get("CNN_COURSE_DATA")
    if configured:
        return Path(configured).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "cnn_course"


def mirror_root() -> Path | None:
    """The offline mirror folder named by ``$CNN_COURSE_DATA_MIRROR``, if any."""
    configured = os.environ.get("CNN_COURSE_DATA_MIRROR")
    return Path(configured).expanduser() if configured else None


def _unavailable(name: str, error: BaseException, mirror_hint: str) -> DataUnavailable:
    """``mirror_hint`` names what the mirror should hold (an English text marked with ``N_``,
    or a file name); it is shown translated."""
    mirror = mirror_root()
    files = translated(mirror_hint)
    mirror_text = (tr("the mirror folder {mirror} has no {files}", mirror=mirror, files=files)
                   if mirror else tr("no offline mirror is configured ($CNN_COURSE_DATA_MIRROR)"))
    detail = str(error).splitlines()[0] if str(error) else tr("no detail")
    return DataUnavailable(tr(
        "{name} is not on this machine and could not be downloaded ({error_type}: {detail}). "
        "Looked in the data root {root} (set $CNN_COURSE_DATA to change it), and "
        "{mirror_text}. Fix it by running once on a machine with internet access (torchvision "
        "downloads {name} into the data root), or by copying the dataset files there, or by "
        "pointing $CNN_COURSE_DATA_MIRROR at a folder that holds {files}.",
        name=name, error_type=type(error).__name__, detail=detail, root=data_root(),
        mirror_text=mirror_text, files=files))


# ---- MNIST ----------------------------------------------------------------------------------

def _has_mnist(root: Path) -> bool:
    """Whether ``root`` holds all four raw MNIST files (an interrupted download may not)."""
    raw = root / "MNIST" / "raw"
    return all((raw / name).is_file() and (raw / name).stat().st_size > 0
               for name in _MNIST_FILES)


def _mnist_dataset(train: bool, transform: Callable | None = None):
    from torchvision.datasets import MNIST

    candidates = [data_root()] + ([mirror_root()] if mirror_root() else [])
    for root in candidates:
        if _has_mnist(root):
            try:
                return MNIST(str(root), train=train, transform=transform, download=False)
            except Exception:  # unreadable files: try the next place, then the download
                continue
    try:
        data_root().mkdir(parents=True, exist_ok=True)
        return MNIST(str(data_root()), train=train, transform=transform, download=True)
    except Exception as error:  # urllib, HTTP and checksum errors all mean "not available"
        raise _unavailable("MNIST", error, N_("MNIST/raw/*-ubyte files")) from None


def load_mnist(train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """All of one MNIST split as ``(images uint8 [N, 28, 28], labels int64 [N])``."""
    dataset = _mnist_dataset(train)
    return dataset.data.clone(), dataset.targets.clone()


def mnist_dataloader(train: bool = True, batch_size: int = 64, shuffle: bool | None = None,
                     num_workers: int = 0, pad_to_32: bool = False):
    """The usual per-image pipeline: ``torchvision.datasets.MNIST`` + transforms + DataLoader."""
    from torch.utils.data import DataLoader
    from torchvision import transforms

    steps = [transforms.ToTensor(), transforms.Normalize(MNIST_MEAN, MNIST_STD)]
    if pad_to_32:
        steps.insert(0, transforms.Pad(2))
    dataset = _mnist_dataset(train, transforms.Compose(steps))
    return DataLoader(dataset, batch_size=batch_size,
                      shuffle=train if shuffle is None else shuffle, num_workers=num_workers)


# ---- CIFAR-10 -------------------------------------------------------------------------------

def _decode_cifar_mirror(tar_path: Path) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """Decode the JPEG mirror once into uint8 tensors [N, 32, 32, 3] per split."""
    splits: dict[str, tuple[list[np.ndarray], list[int]]] = {"train": ([], []), "test": ([], [])}
    class_index = {name: i for i, name in enumerate(CIFAR10_CLASSES)}
    with tarfile.open(tar_path) as archive:
        members = sorted((m for m in archive.getmembers() if m.isfile()
                          and m.name.endswith(".jpg")), key=lambda m: m.name)
        for member in members:
            split, class_name, _ = Path(member.name).parts[-3:]
            with Image.open(io.BytesIO(archive.extractfile(member).read())) as image:
                splits[split][0].append(np.asarray(image.convert("RGB")))
            splits[split][1].append(class_index[class_name])
    return {split: (torch.from_numpy(np.stack(images)), torch.tensor(labels))
            for split, (images, labels) in splits.items()}


@contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (created if needed); other processes wait for it.

    Without ``fcntl`` (Windows) nothing is locked: the atomic rename in
    :func:`_build_cifar_cache` still keeps readers from ever seeing half a file.
    """
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _build_cifar_cache(tar_path: Path, cache: Path) -> None:
    """Decode the JPEG mirror into ``cache``, once, even with several processes at a time.

    The first process to take the lock decodes; the others wait and then find the cache. The
    file is written under a unique temporary name in the same folder and renamed into place.
    """
    cache.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(cache.with_name(cache.name + ".lock")):
        if cache.exists():
            return
        decoded = _decode_cifar_mirror(tar_path)
        handle = tempfile.NamedTemporaryFile(dir=cache.parent, prefix=f"{cache.name}.",
                                             suffix=".tmp", delete=False)
        try:
            with handle:
                torch.save(decoded, handle)
            # Readable like any file the user creates (a temporary file is private), so that a
            # grader's sandboxed notebooks, which run as another user, can read it.
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(handle.name, 0o666 & ~umask)
            os.replace(handle.name, cache)  # atomic: a reader never sees half a file
        except BaseException:
            Path(handle.name).unlink(missing_ok=True)
            raise


def load_cifar10(train: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """All of one CIFAR-10 split as ``(images uint8 [N, 32, 32, 3], labels int64 [N])``.

    Uses torchvision's official files if present, else the JPEG mirror (decoded once and
    cached in the data root), else downloads.
    """
    from torchvision.datasets import CIFAR10

    root = data_root()
    if (root / "cifar-10-batches-py").exists():
        dataset = CIFAR10(str(root), train=train, download=False)
        return torch.from_numpy(dataset.data), torch.tensor(dataset.targets)
    cache = root / "cifar10-jpg-mirror.pt"
    mirror = mirror_root()
    if not cache.exists() and mirror and (mirror / _CIFAR_TAR).exists():
        _build_cifar_cache(mirror / _CIFAR_TAR, cache)
    if cache.exists():
        images, labels = torch.load(cache)["train" if train else "test"]
        return images, labels
    try:
        root.mkdir(parents=True, exist_ok=True)
        dataset = CIFAR10(str(root), train=train, download=True)
    except Exception as error:
        raise _unavailable("CIFAR-10", error, _CIFAR_TAR) from None
    return torch.from_numpy(dataset.data), torch.tensor(dataset.targets)


class ImageTensorDataset(torch.utils.data.Dataset):
    """Per-image access to uint8 images, as torchvision datasets do it (PIL + transform)."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor,
                 transform: Callable | None = None) -> None:
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int):
        image = Image.fromarray(self.images[index].numpy())
        if self.transform is not None:
            image = self.transform(image)
        return image, int(self.labels[index])


# ---- whole datasets as tensors --------------------------------------------------------------

def to_float_images(images: torch.Tensor, mean: tuple[float, ...], std: tuple[float, ...],
                    device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 [N, H, W] or [N, H, W, C] -> normalized float32 [N, C, H, W] on ``device``."""
    if images.dim() == 3:
        images = images.unsqueeze(-1)
    x = images.to(device).permute(0, 3, 1, 2).float().div_(255)
    mean_t = torch.tensor(mean, device=x.device).view(1, -1, 1, 1)
    std_t = torch.tensor(std, device=x.device).view(1, -1, 1, 1)
    return x.sub_(mean_t).div_(std_t).contiguous()


def mnist_tensors(train: bool = True, device: torch.device | str = "cpu",
                  pad_to_32: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """MNIST as normalized float tensors ``x [N, 1, 28, 28]`` (or 32x32) and labels, on device."""
    images, labels = load_mnist(train)
    x = to_float_images(images, MNIST_MEAN, MNIST_STD, device)
    if pad_to_32:  # pad with the normalized value of a black pixel, as Pad(2) before Normalize
        x = torch.nn.functional.pad(x, (2, 2, 2, 2), value=-MNIST_MEAN[0] / MNIST_STD[0])
    return x, labels.to(device)


def channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and std of uint8 images [N, H, W, C], on the 0-1 scale."""
    x = images.float().div(255).reshape(-1, images.shape[-1])
    return tuple(x.mean(0).tolist()), tuple(x.std(0).tolist())


class TensorBatches:
    """Mini-batches sliced from tensors that already sit on the training device.

    The cheap alternative to a DataLoader when the whole dataset fits in memory: no per-image
    Python work, one random permutation per epoch.
    """

    def __init__(self, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256,
                 shuffle: bool = False, seed: int | None = None,
                 transform: Callable[[torch.Tensor], torch.Tensor] | None = None) -> None:
        if len(x) != len(y):
            raise ValueError(tr("x has {x} samples but y has {y}", x=len(x), y=len(y)))
        self.x, self.y, self.batch_size, self.shuffle = x, y, batch_size, shuffle
        self.transform = transform
        self.generator = torch.Generator(device="cpu")
        if seed is not None:
            self.generator.manual_seed(seed)

    def __len__(self) -> int:
        return (len(self.x) + self.batch_size - 1) // self.batch_size

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        n = len(self.x)
        order = (torch.randperm(n, generator=self.generator).to(self.x.device)
                 if self.shuffle else None)
        for start in range(0, n, self.batch_size):
            if order is None:
                xb = self.x[start:start + self.batch_size]
                yb = self.y[start:start + self.batch_size]
            else:
                index = order[start:start + self.batch_size]
                xb, yb = self.x[index], self.y[index]
            yield (self.transform(xb) if self.transform else xb), yb
