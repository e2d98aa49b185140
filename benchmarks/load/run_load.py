"""Load check of ``cllm4rec serve`` with locust (headless), loopback only, bounded in count and time.

Starts the server on 127.0.0.1 for a run folder, warms it up, then runs locust at each concurrency level for a
fixed duration (closed loop: every simulated client sends its next request as soon as it has an answer) and
records requests/s, p50/p99 latency, errors and the server's RSS before and after. Writes ``load.json`` and
``load.md`` (a markdown table) into ``--out``.

    python benchmarks/load/run_load.py --run RUN --out DIR [--users 1,8,32] [--duration 60]
        [--max-requests 20000] [--port 8765] [--server-arg=--max-batch=32 ...]
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
import urllib.request
from pathlib import Path
from typing import Any

from server import start_server, stop_server

HERE = Path(__file__).resolve().parent


def rss_mib(pid: int) -> float:
    """Resident set size of a process, in MiB (Linux /proc)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for pid {pid}")


def wait_healthy(url: str, proc: subprocess.Popen, timeout: float) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with status {proc.returncode}")
        try:
            with urllib.request.urlopen(url + "/health", timeout=2) as response:
                return json.load(response)
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"server not healthy after {timeout:.0f}s")


def warm_up(url: str, n: int) -> None:
    with urllib.request.urlopen(url + "/v1/users?limit=1000", timeout=30) as response:
        users = json.load(response)["users"]
    for user in users[:n]:
        urllib.request.urlopen(f"{url}/v1/recommend?user={user}&k=10", timeout=60).read()


def run_locust(url: str, clients: int, duration: int, max_requests: int, prefix: Path) -> dict[str, Any]:
    cmd = [
        sys.executable, "-m", "locust", "-f", str(HERE / "locustfile.py"), "--headless",
        "-u", str(clients), "-r", str(clients), "--run-time", f"{duration}s", "--host", url,
        "--csv", str(prefix), "--only-summary", "--stop-timeout", "10", "--loglevel", "WARNING",
    ]  # fmt: skip
    env = {**os.environ, "LOAD_MAX_REQUESTS": str(max_requests)}
    with open(f"{prefix}.log", "w") as log:
        subprocess.run(cmd, check=False, env=env, timeout=duration + 120, stdout=log, stderr=subprocess.STDOUT)
    with open(f"{prefix}_stats.csv", newline="") as handle:
        rows = {row["Name"]: row for row in csv.DictReader(handle)}
    row = rows["/v1/recommend?user=[id]"]
    return {
        "clients": clients,
        "requests": int(row["Request Count"]),
        "errors": int(row["Failure Count"]),
        "rps": float(row["Requests/s"]),
        "p50_ms": float(row["50%"]),
        "p99_ms": float(row["99%"]),
        "mean_ms": float(row["Average Response Time"]),
    }


def batch_sizes(url: str) -> tuple[float, float]:
    """(sum, count) of the server's micro-batch size histogram."""
    with urllib.request.urlopen(url + "/metrics", timeout=30) as response:
        text = response.read().decode()
    values = {}
    for line in text.splitlines():
        for name in ("cllm4rec_batch_size_sum", "cllm4rec_batch_size_count"):
            if line.startswith(name + " "):
                values[name] = float(line.split()[-1])
    return values["cllm4rec_batch_size_sum"], values["cllm4rec_batch_size_count"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--run", required=True, help="run folder to serve")
    parser.add_argument("--out", required=True, help="folder for load.json, load.md and locust's CSV files")
    parser.add_argument("--users", default="1,8,32", help="concurrency levels (default 1,8,32)")
    parser.add_argument("--duration", type=int, default=60, help="seconds per level (default 60)")
    parser.add_argument("--max-requests", type=int, default=20000, help="request cap per level (default 20000)")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--warmup", type=int, default=20, help="requests sent before measuring (default 20)")
    parser.add_argument(
        "--warmup-seconds",
        type=int,
        default=15,
        help="then this long at the highest concurrency, so allocator pools reach their working size (default 15)",
    )
    parser.add_argument("--server-arg", action="append", default=[], help="extra argument for cllm4rec serve")
    args = parser.parse_args()
    if args.duration > 600 or args.warmup_seconds > 120 or args.max_requests > 100000:
        parser.error("keep the load check bounded: --duration <= 600 and --max-requests <= 100000")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    url = f"http://127.0.0.1:{args.port}"
    server = start_server(args.run, args.port, args.server_arg, out)
    try:
        health = wait_healthy(url, server, timeout=300)
        warm_up(url, args.warmup)
        levels = [int(c) for c in args.users.split(",")]
        rss_start = rss_mib(server.pid)
        if args.warmup_seconds > 0:
            run_locust(url, max(levels), args.warmup_seconds, args.max_requests, out / "warmup")
        rss_warm = rss_mib(server.pid)
        results = []
        for clients in levels:
            before_sum, before_count = batch_sizes(url)
            rss_before = rss_mib(server.pid)
            result = run_locust(url, clients, args.duration, args.max_requests, out / f"c{clients}")
            after_sum, after_count = batch_sizes(url)
            n_batches = max(1.0, after_count - before_count)
            result.update(
                rss_before_mib=round(rss_before, 1),
                rss_after_mib=round(rss_mib(server.pid), 1),
                mean_batch=round((after_sum - before_sum) / n_batches, 2),
                load_avg_1m=round(os.getloadavg()[0], 2),
            )
            results.append(result)
            print(json.dumps(result), flush=True)
    finally:
        stop_server(server)
    base = results[0]["rps"] or float("nan")
    report = {
        "run": args.run,
        "health": health,
        "duration_s": args.duration,
        "server_args": args.server_arg,
        "rss_start_mib": round(rss_start, 1),
        "rss_after_warmup_mib": round(rss_warm, 1),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "results": results,
    }
    (out / "load.json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [
        "| clients | requests | errors | requests/s | x 1 client | p50 ms | p99 ms | mean batch "
        "| RSS before MiB | RSS after MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        lines.append(
            f"| {r['clients']} | {r['requests']} | {r['errors']} | {r['rps']:.2f} | {r['rps'] / base:.2f} | "
            f"{r['p50_ms']:.0f} | {r['p99_ms']:.0f} | {r['mean_batch']:.1f} | {r['rss_before_mib']:.0f} | "
            f"{r['rss_after_mib']:.0f} |"
        )
    (out / "load.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
