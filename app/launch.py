"""Start and stop a real convlens server (a child process) on a free loopback port: for e2e tests and benchmarks."""

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from app.config import REPO_ROOT


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass(frozen=True)
class ServerProcess:
    """A started server: where it answers, and its process id (for /proc/<pid>/status readings)."""

    base_url: str
    pid: int


@contextmanager
def running_server(
    env: dict[str, str] | None = None,
    workers: int = 1,
    startup_timeout: float = 90.0,
    log: Path | None = None,
) -> Iterator[str]:
    """Yield the base URL of a fresh `convlens serve`; the process is always stopped afterwards."""
    with running_server_process(env, workers, startup_timeout, log) as server:
        yield server.base_url


@contextmanager
def running_server_process(
    env: dict[str, str] | None = None,
    workers: int = 1,
    startup_timeout: float = 90.0,
    log: Path | None = None,
) -> Iterator[ServerProcess]:
    """Like `running_server`, yielding the process id too (the server itself when workers == 1)."""
    port = free_port()
    command = [
        sys.executable,
        "-m",
        "app.cli",
        "serve",
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    command += ["--log-level", "warning"]
    output = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed in finally
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode} before answering")
            try:
                if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError("server did not answer /healthz in time")
            time.sleep(0.2)
        yield ServerProcess(base, process.pid)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        if log:
            output.close()
