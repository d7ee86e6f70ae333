"""Energy measured around a backend call: NVML on a GPU, RAPL on a CPU, else a documented model.

- ``nvml``: the GPU's total-energy counter (``nvmlDeviceGetTotalEnergyConsumption``, mJ), read before and
  after; on a MIG slice or shared GPU the whole device's energy × the job's share.
- ``rapl``: Linux powercap package counters (``/sys/class/powercap/intel-rapl:N/energy_uj``, wrap-around
  handled) when readable; they cover the whole CPU package, other processes included.
- ``model``: rated power (TDP) × share × utilisation × seconds, in the manner of CodeCarbon's fallback. On a
  CPU, utilisation is this process's CPU time over wall time × cores; a GPU is taken as fully busy.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

RAPL_ROOT = Path("/sys/class/powercap")


@dataclass(frozen=True)
class EnergySpec:
    """What a worker needs to measure or model one job's energy."""

    device: str
    share: float
    tdp_w: float
    gpu_index: int | None = None
    rapl_root: Path = RAPL_ROOT


class _Nvml:
    method = "nvml"

    def __init__(self, nvml: Any, handle: Any) -> None:
        self._nvml = nvml
        self._handle = handle

    def read_j(self) -> float:
        return float(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self._handle)) / 1000.0


class _Rapl:
    method = "rapl"

    def __init__(self, domains: list[Path]) -> None:
        self._domains = domains
        self._max = [int((d / "max_energy_range_uj").read_text()) for d in domains]
        self._last = [int((d / "energy_uj").read_text()) for d in domains]
        self._total_uj = 0

    def read_j(self) -> float:
        for i, d in enumerate(self._domains):
            now = int((d / "energy_uj").read_text())
            delta = now - self._last[i]
            if delta < 0:  # the counter wrapped
                delta += self._max[i] + 1
            self._total_uj += delta
            self._last[i] = now
        return self._total_uj / 1e6


def _nvml_probe(index: int) -> _Nvml | None:
    try:
        import pynvml  # type: ignore[import-untyped,import-not-found,unused-ignore]

        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(index)
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)  # Volta and newer; raises on older GPUs
        return _Nvml(pynvml, handle)
    except Exception:  # no library, no driver, no counter: fall back
        return None


def _rapl_probe(root: Path) -> _Rapl | None:
    """Package-level RAPL domains (``intel-rapl:0``, ``intel-rapl:1``, …; AMD exposes the same names)."""
    try:
        domains = sorted(p for p in root.glob("intel-rapl:*") if p.name.count(":") == 1)
        if not domains:
            return None
        return _Rapl(domains)
    except (OSError, ValueError):  # not readable (often root-only) or not numeric
        return None


class EnergyMeter:
    """Context manager: the energy of the job's share of its device while the block runs."""

    def __init__(self, spec: EnergySpec) -> None:
        self.spec = spec
        self.joules = 0.0
        self.method = "model"
        self._probe: _Nvml | _Rapl | None = None

    def __enter__(self) -> EnergyMeter:
        if self.spec.device != "cpu":
            self._probe = _nvml_probe(self.spec.gpu_index or 0)
        else:
            self._probe = _rapl_probe(self.spec.rapl_root)
        self._start_j = self._probe.read_j() if self._probe else 0.0
        self._wall = time.perf_counter()
        self._cpu = time.process_time()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        wall = time.perf_counter() - self._wall
        if self._probe is not None:
            try:
                measured = self._probe.read_j() - self._start_j
                self.joules = max(0.0, measured) * self.spec.share
                self.method = self._probe.method
                return
            except (OSError, ValueError):
                pass
        utilisation = 1.0
        if self.spec.device == "cpu":
            cores = os.cpu_count() or 1
            utilisation = (time.process_time() - self._cpu) / max(wall * cores, 1e-9)
        self.joules = self.spec.tdp_w * self.spec.share * min(max(utilisation, 0.0), 1.0) * wall
        self.method = "model"
