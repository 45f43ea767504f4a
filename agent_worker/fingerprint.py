"""What a node is (hardware fingerprint) and how busy it is (metrics), from psutil."""

from __future__ import annotations

import os
import platform
import socket
import time
from typing import Any

import psutil


def hardware(docker_version: str = "") -> dict[str, Any]:
    freq = psutil.cpu_freq()
    model = ""
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "")
    except OSError:
        pass
    disks = []
    for part in psutil.disk_partitions(all=False):
        try:
            usage = psutil.disk_usage(part.mountpoint)
        except OSError:
            continue
        disks.append({"device": part.device, "mountpoint": part.mountpoint, "fstype": part.fstype,
                      "total_bytes": usage.total})
    return {
        "cpu_model": model or platform.processor(),
        "cpu_cores": psutil.cpu_count(logical=False) or psutil.cpu_count() or 1,
        "cpu_threads": psutil.cpu_count() or 1,
        "cpu_mhz": round(freq.max or freq.current) if freq else None,
        "memory_bytes": psutil.virtual_memory().total,
        "disks": disks[:16],
        "os": f"{platform.system()} {platform.release()}",
        "hostname": socket.gethostname(),
        "docker_version": docker_version,
        "gpus": gpus(),
    }


def gpus() -> list[dict[str, Any]]:
    """NVIDIA GPUs through NVML when the driver and `pynvml` are present; none otherwise."""
    try:
        import pynvml
    except ImportError:
        return []
    try:
        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001 - no driver: no GPU to report
        return []
    try:
        found = []
        for i in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(i)
            mem = pynvml.nvmlDeviceGetMemoryInfo(handle)
            found.append({"index": i, "name": str(pynvml.nvmlDeviceGetName(handle)), "memory_bytes": mem.total})
        return found
    finally:
        pynvml.nvmlShutdown()


def network() -> dict[str, Any]:
    interfaces: dict[str, list[str]] = {}
    for name, addrs in psutil.net_if_addrs().items():
        interfaces[name] = [a.address for a in addrs if a.family in (socket.AF_INET, socket.AF_INET6)]
    return {"interfaces": interfaces}


class MetricsSampler:
    """CPU, memory, disk and network throughput since the previous sample."""

    def __init__(self, disk_path: str = "/") -> None:
        self.disk_path = disk_path if os.path.exists(disk_path) else "/"
        self._net = psutil.net_io_counters()
        self._at = time.monotonic()
        psutil.cpu_percent(None)

    def sample(self, instances: int) -> dict[str, Any]:
        now = time.monotonic()
        net = psutil.net_io_counters()
        dt = max(now - self._at, 1e-3)
        vm = psutil.virtual_memory()
        disk = psutil.disk_usage(self.disk_path)
        metrics = {
            "cpu_percent": psutil.cpu_percent(None),
            "load_1m": os.getloadavg()[0],
            "memory_used_bytes": vm.total - vm.available,
            "memory_percent": vm.percent,
            "disk_used_bytes": disk.used,
            "disk_percent": disk.percent,
            "net_rx_bytes_per_s": (net.bytes_recv - self._net.bytes_recv) / dt,
            "net_tx_bytes_per_s": (net.bytes_sent - self._net.bytes_sent) / dt,
            "game_instances": instances,
        }
        self._net, self._at = net, now
        return metrics
