"""``cllm4rec serve`` as a real process on 127.0.0.1, and its argument checks."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from cllm4rec.cli.main import main

pytest.importorskip("uvicorn")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_rejects_bad_arguments(tiny_run: Path, capsys) -> None:
    assert main(["serve", "--run", str(tiny_run), "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err
    assert main(["serve", "--run", str(tiny_run), "--max-batch", "0"]) == 2
    assert "--max-batch" in capsys.readouterr().err
    assert main(["serve", "--run", str(tiny_run), "--threads", "0"]) == 2
    assert "--threads" in capsys.readouterr().err
    assert main(["serve", "--run", str(tiny_run.parent / "missing"), "--port", str(_free_port())]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_serve_process_answers_with_api_key_and_logs_each_request(tiny_run: Path) -> None:
    port = _free_port()
    env = {**os.environ, "CLLM4REC_API_KEY": "k3y", "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "cllm4rec.cli.main", "serve", "--run", str(tiny_run), "--port", str(port)]
    server = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                health = json.load(urllib.request.urlopen(url + "/health", timeout=5))
                break
            except OSError:
                assert server.poll() is None and time.monotonic() < deadline, "server did not start"
                time.sleep(0.3)
        assert health["model_loaded"] and health["run_id"] == "run"
        with pytest.raises(urllib.error.HTTPError) as denied:
            urllib.request.urlopen(url + "/v1/recommend?user=u1", timeout=30)
        assert denied.value.code == 401
        request = urllib.request.Request(url + "/v1/recommend?user=u1&k=4", headers={"X-API-Key": "k3y"})
        body = json.load(urllib.request.urlopen(request, timeout=30))
        assert len(body["items"]) == 4
    finally:
        server.send_signal(signal.SIGINT)
        output, _ = server.communicate(timeout=30)
    assert "serving" in output and "127.0.0.1" in output
    lines = [line for line in output.splitlines() if "cllm4rec.serve:" in line]
    recommend_lines = [line for line in lines if "/v1/recommend" in line]
    assert len(recommend_lines) == 2  # one line per request
    assert "GET /v1/recommend?user=u1 401" in recommend_lines[0]
    assert "GET /v1/recommend?user=u1&k=4 200" in recommend_lines[1]
    assert any("GET /health 200" in line for line in lines)
    assert "k3y" not in output
