"""Choosing where tensors live, and making runs repeatable."""

from __future__ import annotations

import os
import platform
import random
import re

import numpy as np
import torch

from cnn_course.messages import N_, tr

ENV_VAR = "CNN_COURSE_DEVICE"
_HOW_TO_GET = {
    "cuda": N_("this machine has no CUDA GPU that PyTorch can use (on Colab: Runtime > Change "
               "runtime type > a GPU; elsewhere a CUDA build of PyTorch and an NVIDIA driver)"),
    "mps": N_("Apple's MPS backend is not available here (it needs an Apple-silicon Mac with "
              "macOS 12.3+ and a PyTorch build with MPS)"),
}
# How describe_device names a CPU. Descriptions are recorded in English (benchmark results);
# translated_description shows a recorded one in the reader's language.
_CPU = N_("CPU: {name}, {cores} cores, {threads} torch threads")
_CPU_RECORDED = re.compile(
    r"CPU: (?P<name>.+), (?P<cores>\d+) cores, (?P<threads>\d+) torch threads")


class DeviceUnavailable(ValueError):
    """A device was asked for by name but this machine cannot provide it."""

    def _render_traceback_(self) -> list[str]:  # IPython shows this instead of a traceback
        return [f"DeviceUnavailable: {self}"]


def _mps_available() -> bool:
    return getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available()


def get_device(prefer: str | torch.device | None = None) -> torch.device:
    """The best device available: CUDA, then Apple MPS, then CPU.

    ``prefer`` (or else the environment variable ``CNN_COURSE_DEVICE``) forces one, e.g.
    ``"cpu"``, ``"cuda"``, ``"cuda:1"`` or ``"mps"``. A forced device that this machine does
    not have raises :class:`DeviceUnavailable` at once, saying how to get it or to drop the
    request: falling back to the CPU silently would make a run many times slower than asked
    for, and its timings would be reported under the wrong device.
    """
    source = "get_device()"
    choice = prefer
    if choice is None or choice == "":
        choice = os.environ.get(ENV_VAR) or None
        source = f"${ENV_VAR}"
    if choice is None:
        if torch.cuda.is_available():
            return torch.device("cuda")
        if _mps_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(choice)
    except (RuntimeError, TypeError):
        raise ValueError(tr("{source} got {choice!r}, which is not a device name: use 'cpu', "
                            "'cuda' (an NVIDIA GPU; 'cuda:1' for the second) or 'mps' "
                            "(Apple silicon)", source=source, choice=choice)) from None
    _require_available(device, tr("{source} asked for {device!r}", source=source,
                                  device=str(device)))
    return device


def _require_available(device: torch.device, request: str) -> None:
    if device.type == "cuda":
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            problem = tr(_HOW_TO_GET["cuda"])
        elif device.index is not None and device.index >= count:
            problem = tr("this machine has {count} CUDA device(s), numbered from 0", count=count)
        else:
            return
    elif device.type == "mps":
        if _mps_available():
            return
        problem = tr(_HOW_TO_GET["mps"])
    else:
        return
    raise DeviceUnavailable(tr("{request}, but {problem}; call get_device() with no argument "
                               "(and ${variable} unset) to take the best device available.",
                               request=request, problem=problem, variable=ENV_VAR))


def describe_device(device: torch.device | None = None) -> str:
    """A one-line description of the hardware, for benchmark reports and the book."""
    device = device or get_device()
    if device.type == "cuda":
        return f"CUDA: {torch.cuda.get_device_name(device)}"
    if device.type == "mps":
        return f"Apple MPS ({platform.machine()})"
    cores = os.cpu_count() or 1
    return _CPU.format(name=_cpu_name(), cores=cores, threads=torch.get_num_threads())


def is_recorded_description(text: str) -> bool:
    """Whether ``text`` is a CPU description made by :func:`describe_device`."""
    return _CPU_RECORDED.fullmatch(text) is not None


def translated_description(description: str) -> str:
    """A CPU description that :func:`describe_device` recorded, in the current language (other
    descriptions are names only, the same in every language)."""
    match = _CPU_RECORDED.fullmatch(description)
    return tr(_CPU, **match.groupdict()) if match else description


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
