"""Shared pieces of the performance benchmarks: what machine ran them, its measured matmul peak, peak RSS.

Every figure a benchmark prints sits next to the CPU model, the thread count and the load average, because
these benchmarks ran on shared machines; the matmul peak is measured, not taken from a data sheet, so a
utilisation is "achieved FLOP/s over what this machine's torch matmul reaches in the same precision".
Imported by the scripts in this folder (``python benchmarks/<script>.py`` puts the folder on ``sys.path``).
"""

from __future__ import annotations

import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import torch

BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")
"""/proc/cpuinfo flags of native bf16 matmul instructions (AVX512-BF16, AMX)."""


def _cpuinfo() -> dict[str, str]:
    """The first processor block of /proc/cpuinfo (empty where there is none)."""
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    info: dict[str, str] = {}
    for line in text.split("\n\n", 1)[0].splitlines():
        key, _, value = line.partition(":")
        info[key.strip()] = value.strip()
    return info


def cpu_model() -> str:
    """The CPU's model name (``platform.processor()`` where /proc/cpuinfo is missing)."""
    return _cpuinfo().get("model name") or platform.processor() or platform.machine()


def native_bf16(device: str) -> tuple[bool, str]:
    """Whether bf16 matmuls are native on ``device``, and the evidence (flags found or the GPU's answer)."""
    if device == "cuda":
        ok = torch.cuda.is_available() and torch.cuda.is_bf16_supported()
        return ok, "CUDA bf16 supported" if ok else "CUDA without bf16"
    flags = set(_cpuinfo().get("flags", "").split())
    found = [f for f in BF16_CPU_FLAGS if f in flags]
    return bool(found), ("cpu flags: " + ", ".join(found)) if found else "no avx512_bf16 / amx_bf16 flag: emulated"


def machine_info(device: str) -> dict[str, Any]:
    """CPU (or GPU) model, threads, torch version, native bf16 and the load average right now."""
    ok, why = native_bf16(device)
    info: dict[str, Any] = {
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "device": device,
        "native_bf16": ok,
        "native_bf16_evidence": why,
        "load_average": [round(x, 2) for x in os.getloadavg()],
    }
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name()
    return info


def describe(info: dict[str, Any]) -> str:
    """One line naming the machine, for the top of every printed table."""
    where = info.get("gpu") or info["cpu_model"]
    return (
        f"{where}; {info['cpu_count']} CPUs, torch {info['torch']} with {info['torch_threads']} threads; "
        f"native bf16: {info['native_bf16']} ({info['native_bf16_evidence']}); load average {info['load_average']}"
    )


def sync(device: str) -> None:
    """Wait for queued GPU work (no-op on the CPU), so a timer reads finished work."""
    if device == "cuda":
        torch.cuda.synchronize()


def matmul_peak(
    dtype: torch.dtype, device: str, sizes: tuple[int, ...] = (2048, 3072), seconds: float = 1.0
) -> dict[str, Any]:
    """The best FLOP/s of square ``torch.matmul`` in ``dtype`` over ``sizes``: this machine's own peak.

    Each size runs one untimed product, then repeats for about ``seconds``; FLOP = 2 n^3 per product.
    """
    per_size = {}
    for n in sizes:
        a = torch.randn(n, n, device=device).to(dtype)
        b = torch.randn(n, n, device=device).to(dtype)
        torch.matmul(a, b)
        sync(device)
        reps, start = 0, time.perf_counter()
        while True:
            torch.matmul(a, b)
            reps += 1
            sync(device)
            elapsed = time.perf_counter() - start
            if elapsed >= seconds and reps >= 2:
                break
        per_size[n] = 2.0 * n**3 * reps / elapsed
    best = max(per_size.values())
    return {
        "dtype": str(dtype).removeprefix("torch."),
        "gflops": round(best / 1e9, 1),
        "per_size_gflops": {str(n): round(v / 1e9, 1) for n, v in per_size.items()},
    }


def reset_peak_rss() -> bool:
    """Reset the kernel's peak-RSS mark of this process (``VmHWM``); False where Linux does not allow it."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _status_kib(key: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    return float("nan")


def rss_mib() -> float:
    """Resident memory of this process now, MiB."""
    return _status_kib("VmRSS") / 1024


def peak_rss_mib() -> float:
    """Peak resident memory of this process since start or the last :func:`reset_peak_rss`, MiB."""
    return _status_kib("VmHWM") / 1024


def write_json(path: Path, payload: dict[str, Any]) -> None:
    """Write ``payload`` as indented JSON (paths and other objects as strings)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    print(f"wrote {path}")


def step_context(model: Any, tok: Any, dataset: Any, max_length: int, seed: int = 0) -> Any:
    """A training context around a model the benchmark built itself, so that its steps are the trainer's own
    ``cllm4rec.training.engine.train_step`` (one process; the run config sets only ``model.max_length``)."""
    from cllm4rec.runs.checkpoint import RunRecord
    from cllm4rec.runs.config import load_config
    from cllm4rec.training.engine import Context
    from cllm4rec.training.objectives import ObjectiveModule
    from cllm4rec.training.sharding import make_accelerator

    accelerator = make_accelerator(model.device.type)
    record = RunRecord.from_dataset(load_config(overrides=[f"model.max_length={max_length}"]), dataset)
    objectives = accelerator.prepare(ObjectiveModule(model))
    return Context(accelerator, model, objectives, tok, dataset, record, seed, progress=False)
