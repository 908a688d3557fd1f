"""Choosing where tensors live, and making runs repeatable."""

from __future__ import annotations

import os
import platform
import random

import numpy as np
import torch


def get_device(prefer: str | None = None) -> torch.device:
    """The best device available: CUDA, then Apple MPS, then CPU.

    ``prefer`` (or the environment variable ``CNN_COURSE_DEVICE``) forces one, e.g. ``"cpu"``.
    """
    choice = prefer or os.environ.get("CNN_COURSE_DEVICE")
    if choice:
        return torch.device(choice)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def describe_device(device: torch.device | None = None) -> str:
    """A one-line description of the hardware, for benchmark reports and the book."""
    device = device or get_device()
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return f"Apple MPS ({platform.machine()})"
    cores = os.cpu_count() or 1
    return f"CPU: {_cpu_name()}, {cores} cores, {torch.get_num_threads()} torch threads"


def _cpu_name() -> str:
    try:  # Linux names the model here; platform.processor() is often empty there
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def seed_everything(seed: int = 0) -> torch.Generator:
    """Seed Python, NumPy and PyTorch (all devices); return a CPU generator with the same seed."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
