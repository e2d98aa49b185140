"""Soak of ``cllm4rec serve`` with locust (headless), loopback only: mixed routes for a long, bounded time.

Starts the server on 127.0.0.1, warms it up, then runs ``soak_locustfile.py`` with a fixed number of clients
for ``--duration`` seconds, printing the server's RSS and the load average every minute. Writes ``soak.json``
and ``soak.md`` (per-route requests, errors, p50/p99 latency; RSS per minute) into ``--out``.

    python benchmarks/load/run_soak.py --run RUN --out DIR [--clients 32] [--duration 600]
        [--warmup-seconds 60] [--port 8766] [--server-arg=--threads=1 ...]
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run_load import rss_mib, wait_healthy, warm_up  # noqa: E402
from server import start_server, stop_server  # noqa: E402


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def locust(url: str, clients: int, duration: int, prefix: Path) -> subprocess.Popen:
    cmd = [
        sys.executable, "-m", "locust", "-f", str(HERE / "soak_locustfile.py"), "--headless",
        "-u", str(clients), "-r", str(clients), "--run-time", f"{duration}s", "--host", url,
        "--csv", str(prefix), "--only-summary", "--stop-timeout", "30", "--loglevel", "WARNING",
    ]  # fmt: skip
    log = open(f"{prefix}.log", "w")  # noqa: SIM115 (closed with the process)
    return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)


def routes(prefix: Path) -> list[dict[str, Any]]:
    with open(f"{prefix}_stats.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    return [
        {
            "route": row["Name"] if row["Name"] != "Aggregated" else "all",
            "requests": int(row["Request Count"]),
            "errors": int(row["Failure Count"]),
            "rps": float(row["Requests/s"]),
            "p50_ms": float(row["50%"]),
            "p99_ms": float(row["99%"]),
        }
        for row in rows
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--clients", type=int, default=32)
    parser.add_argument("--duration", type=int, default=600)
    parser.add_argument("--warmup-seconds", type=int, default=60)
    parser.add_argument("--port", type=int, default=8766)
    parser.add_argument("--server-arg", action="append", default=[])
    args = parser.parse_args()
    if args.duration > 3600 or args.clients > 256:
        parser.error("keep the soak bounded: --duration <= 3600 and --clients <= 256")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{args.port}"
    server = start_server(args.run, args.port, args.server_arg, out)
    samples = []
    try:
        health = wait_healthy(url, server, timeout=300)
        warm_up(url, 20)
        rss_start = rss_mib(server.pid)
        if args.warmup_seconds:
            locust(url, args.clients, args.warmup_seconds, out / "warmup").wait(timeout=args.warmup_seconds + 180)
        started = time.monotonic()
        proc = locust(url, args.clients, args.duration, out / "soak")
        minute = 0
        while proc.poll() is None:
            if time.monotonic() - started >= 60 * minute:
                sample = {
                    "minute": minute,
                    "rss_mib": round(rss_mib(server.pid), 1),
                    "load_avg_1m": round(os.getloadavg()[0], 2),
                }
                samples.append(sample)
                print(json.dumps(sample), flush=True)
                minute += 1
            time.sleep(1)
        samples.append(
            {
                "minute": round((time.monotonic() - started) / 60, 1),
                "rss_mib": round(rss_mib(server.pid), 1),
                "load_avg_1m": round(os.getloadavg()[0], 2),
            }
        )
        print(json.dumps(samples[-1]), flush=True)
    finally:
        stop_server(server)
    per_route = routes(out / "soak")
    report = {
        "run": args.run,
        "health": health,
        "clients": args.clients,
        "duration_s": args.duration,
        "server_args": args.server_arg,
        "rss_start_mib": round(rss_start, 1),
        "samples": samples,
        "routes": per_route,
        "machine": {"cpus": os.cpu_count(), "cpu": cpu_model(), "python": platform.python_version()},
    }
    (out / "soak.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = ["| route | requests | errors | requests/s | p50 ms | p99 ms |", "|---|---:|---:|---:|---:|---:|"]
    for r in per_route:
        cells = (r["route"], r["requests"], r["errors"], f"{r['rps']:.2f}", f"{r['p50_ms']:.0f}", f"{r['p99_ms']:.0f}")
        lines.append("| " + " | ".join(map(str, cells)) + " |")
    lines += ["", "| minute | RSS MiB | load average (1 min) |", "|---:|---:|---:|"]
    lines += [f"| {s['minute']} | {s['rss_mib']:.0f} | {s['load_avg_1m']:.2f} |" for s in samples]
    (out / "soak.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
