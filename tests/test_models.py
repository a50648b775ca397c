"""Which device runs the models."""

from __future__ import annotations

import pytest

from rag import models
from rag.models import gpu_present, pick_device


def test_gpu_detection_follows_the_device_setting() -> None:
    assert not gpu_present("cpu")
    assert gpu_present("cuda") and gpu_present("mps")
    # "auto" agrees with torch's own view of the machine (without a GPU device file it
    # answers without importing torch at all).
    assert gpu_present("auto") == (pick_device("auto") != "cpu")


def test_auto_device_needs_a_gpu_driver_and_a_torch_that_sees_the_gpu(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    asked: list[str] = []

    def torch_picks(device: str) -> None:
        def pick(setting: str) -> str:
            asked.append(setting)
            return device

        monkeypatch.setattr(models, "pick_device", pick)

    monkeypatch.setattr(models, "gpu_driver_present", lambda: True)
    for device in ("cuda", "mps"):
        torch_picks(device)
        assert gpu_present("auto")
    torch_picks("cpu")  # a driver, but a CPU-only torch build
    assert not gpu_present("auto")
    assert asked == ["auto"] * 3
    monkeypatch.setattr(models, "gpu_driver_present", lambda: False)
    torch_picks("cuda")
    assert not gpu_present("auto")
    assert asked == ["auto"] * 3  # no driver: torch is not even asked
