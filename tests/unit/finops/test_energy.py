"""Energy around a backend call: RAPL (a sysfs tree built here), NVML (a fake: no GPU on this machine), the model."""

from __future__ import annotations

import sys
import time
import types
from pathlib import Path

import pytest

from reelfoundry.finops.energy import EnergyMeter, EnergySpec


def _rapl(root: Path, uj: int, max_uj: int = 1_000_000_000) -> Path:
    domain = root / "intel-rapl:0"
    domain.mkdir(parents=True, exist_ok=True)
    (domain / "energy_uj").write_text(str(uj))
    (domain / "max_energy_range_uj").write_text(str(max_uj))
    (root / "intel-rapl:0:0").mkdir(exist_ok=True)  # a sub-domain (core): not counted twice
    return domain


def test_rapl_counts_the_package_counter_and_its_wrap_around(tmp_path: Path) -> None:
    domain = _rapl(tmp_path, uj=999_000_000)
    meter = EnergyMeter(EnergySpec("cpu", 1.0, 45.0, rapl_root=tmp_path))
    with meter:
        (domain / "energy_uj").write_text(str(4_000_000))  # wrapped past 1e9: 1_000_001 + 4_000_000 µJ
    assert meter.method == "rapl"
    assert meter.joules == pytest.approx(5.000001)


def test_nvml_reads_the_gpu_energy_counter_and_takes_the_share(monkeypatch: pytest.MonkeyPatch) -> None:
    # A stand-in for the NVIDIA driver's library: there is no GPU here. It counts millijoules like NVML.
    counter = iter([100_000, 100_000, 160_000])  # probe check, start, end
    fake = types.SimpleNamespace(
        nvmlInit=lambda: None,
        nvmlDeviceGetHandleByIndex=lambda i: ("gpu", i),
        nvmlDeviceGetTotalEnergyConsumption=lambda handle: next(counter),
    )
    monkeypatch.setitem(sys.modules, "pynvml", fake)
    meter = EnergyMeter(EnergySpec("H100", 0.5, 700.0))
    with meter:
        pass
    assert meter.method == "nvml" and meter.joules == pytest.approx(30.0)  # 60 J × half the GPU


def test_without_counters_the_model_uses_tdp_share_and_utilisation(tmp_path: Path) -> None:
    gpu = EnergyMeter(EnergySpec("H100", 1 / 7, 700.0, rapl_root=tmp_path))
    with gpu:
        time.sleep(0.05)
    assert gpu.method == "model"
    assert gpu.joules == pytest.approx(100.0 * 0.05, rel=0.5)  # 700 W / 7 × ~0.05 s, a GPU taken as busy
    idle_cpu = EnergyMeter(EnergySpec("cpu", 1.0, 45.0, rapl_root=tmp_path / "none"))
    with idle_cpu:
        time.sleep(0.05)  # sleeping uses no CPU time: utilisation ~0
    busy_cpu = EnergyMeter(EnergySpec("cpu", 1.0, 45.0, rapl_root=tmp_path / "none"))
    with busy_cpu:
        end = time.process_time() + 0.05
        while time.process_time() < end:
            pass
    assert idle_cpu.method == busy_cpu.method == "model"
    assert 0 <= idle_cpu.joules < busy_cpu.joules <= 45.0 * 0.2
