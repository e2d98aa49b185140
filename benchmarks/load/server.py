"""The served process of the load and soak checks: ``cllm4rec serve`` on 127.0.0.1, without an API key."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path


def start_server(run: str, port: int, extra: list[str], out: Path) -> subprocess.Popen:
    """Start ``cllm4rec serve --run RUN`` on 127.0.0.1:``port``, its output in ``out/server.log``."""
    cmd = [sys.executable, "-m", "cllm4rec.cli.main", "serve", "--run", run, "--host", "127.0.0.1"]
    cmd += ["--port", str(port), "--log-level", "warning", *extra]
    env = {k: v for k, v in os.environ.items() if k != "CLLM4REC_API_KEY"}
    with open(out / "server.log", "w") as log:
        return subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)


def stop_server(server: subprocess.Popen) -> None:
    """Ask the server to shut down (SIGINT, as Ctrl-C would), kill it after 30 s."""
    server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=30)
    except subprocess.TimeoutExpired:
        server.kill()
