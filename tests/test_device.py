"""Choosing the device: an explicit request this machine cannot meet fails at once, clearly."""

import pytest
import torch

from cnn_course import device as device_module
from cnn_course.device import DeviceUnavailable, get_device


@pytest.fixture
def cpu_only(monkeypatch):
    """A machine with neither CUDA nor MPS, and no device named in the environment."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 0)
    monkeypatch.setattr(device_module, "_mps_available", lambda: False)
    monkeypatch.delenv("CNN_COURSE_DEVICE", raising=False)


def test_the_best_device_is_the_cpu_without_accelerators(cpu_only):
    assert get_device() == torch.device("cpu")
    assert get_device("cpu") == get_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("name,words", [("cuda", "no CUDA GPU"), ("cuda:0", "no CUDA GPU"),
                                        ("mps", "MPS backend is not available")])
def test_an_unavailable_device_asked_by_name_is_refused_clearly(cpu_only, name, words):
    with pytest.raises(DeviceUnavailable, match=f"asked for '{name}', but .*{words}") as caught:
        get_device(name)
    message = str(caught.value)
    assert "get_device() with no argument" in message and "\n" not in message
    assert isinstance(caught.value, ValueError)
    assert caught.value._render_traceback_() == [f"DeviceUnavailable: {message}"]


def test_an_unavailable_device_in_the_environment_names_the_variable(cpu_only, monkeypatch):
    monkeypatch.setenv("CNN_COURSE_DEVICE", "cuda")
    with pytest.raises(DeviceUnavailable, match=r"^\$CNN_COURSE_DEVICE asked for 'cuda'"):
        get_device()
    assert get_device("cpu") == torch.device("cpu")  # an argument wins over the environment


def test_a_gpu_index_beyond_the_machine_is_refused(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert get_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(DeviceUnavailable, match="has 1 CUDA device"):
        get_device("cuda:1")


@pytest.mark.parametrize("bad", ["gpu", "cuda:x", 3.5])
def test_a_name_that_is_no_device_gets_the_choices(cpu_only, bad):
    with pytest.raises(ValueError, match="not a device name: use 'cpu', 'cuda'"):
        get_device(bad)
