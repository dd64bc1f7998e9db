"""Start and stop real convlens servers and a throwaway Redis on loopback (tests, benchmarks)."""

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

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


def child_processes(pid: int) -> list[tuple[int, bytes]]:
    """The processes `pid` started, with their command lines (Linux: from /proc)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            children = (task / "children").read_text(encoding="ascii").split()
        except OSError:  # the thread ended while we looked
            continue
        for child in children:
            try:
                found.append((int(child), Path(f"/proc/{child}/cmdline").read_bytes()))
            except OSError:  # the process ended while we looked
                continue
    return found


def decode_workers(pid: int) -> int:
    """How many decode worker processes the server process `pid` runs."""
    return sum(b"app.services.decode_worker" in command for _, command in child_processes(pid))


def status_mib(pid: int, field: str) -> int:
    """A memory field of /proc/<pid>/status (``VmRSS``, ``VmHWM``) in MiB; 0 when it has none."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) // 1024
    return 0


def _spawn(
    env: dict[str, str] | None, workers: int, log: Path | None
) -> tuple[subprocess.Popen[bytes], str, IO[bytes] | int]:
    port = free_port()
    command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]
    command += ["--workers", str(workers), "--log-level", "warning"]
    output = open(log, "wb") if log else subprocess.DEVNULL  # noqa: SIM115 - closed by _stop
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, **(env or {})},
        stdout=output,
        stderr=subprocess.STDOUT,
    )
    return process, f"http://127.0.0.1:{port}", output


def _await_ready(process: subprocess.Popen[bytes], base: str, deadline: float) -> None:
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode} before answering")
        try:
            if httpx.get(f"{base}/healthz", timeout=1.0).status_code == 200:
                return
        except httpx.TransportError:
            pass
        if time.monotonic() > deadline:
            raise TimeoutError("server did not answer /healthz in time")
        time.sleep(0.2)


def _stop(process: subprocess.Popen[bytes], output: IO[bytes] | int) -> None:
    process.terminate()
    try:
        process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
    if not isinstance(output, int):
        output.close()


@contextmanager
def running_server_process(
    env: dict[str, str] | None = None,
    workers: int = 1,
    startup_timeout: float = 90.0,
    log: Path | None = None,
) -> Iterator[ServerProcess]:
    """Like `running_server`, yielding the process id too (the server itself when workers == 1)."""
    process, base, output = _spawn(env, workers, log)
    try:
        _await_ready(process, base, time.monotonic() + startup_timeout)
        yield ServerProcess(base, process.pid)
    finally:
        _stop(process, output)


@contextmanager
def running_servers(
    env: dict[str, str] | None = None,
    workers: Sequence[int] = (1, 1),
    startup_timeout: float = 120.0,
) -> Iterator[list[str]]:
    """One server per entry of `workers`, started side by side; yields their base URLs."""
    started = []
    try:
        for count in workers:
            started.append(_spawn(env, count, None))
        deadline = time.monotonic() + startup_timeout
        for process, base, _ in started:
            _await_ready(process, base, deadline)
        yield [base for _, base, _ in started]
    finally:
        for process, _, output in started:
            _stop(process, output)


@contextmanager
def running_redis(startup_timeout: float = 10.0) -> Iterator[str]:
    """Yield the URL of a throwaway `redis-server` (loopback, free port, no persistence).

    Raises:
        FileNotFoundError: redis-server is not installed (scripts/install-test-deps.sh installs it).
    """
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="convlens-redis-") as workdir:
        process = subprocess.Popen(
            [
                shutil.which("redis-server") or "redis-server",
                *("--port", str(port), "--bind", "127.0.0.1", "--dir", workdir),
                *("--save", "", "--appendonly", "no", "--protected-mode", "yes"),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            deadline = time.monotonic() + startup_timeout
            while True:
                if process.poll() is not None:
                    raise RuntimeError(f"redis-server exited with {process.returncode}")
                try:
                    with socket.create_connection(("127.0.0.1", port), timeout=0.5) as sock:
                        sock.sendall(b"PING\r\n")
                        if sock.recv(16).startswith(b"+PONG"):
                            break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    raise TimeoutError("redis-server did not answer PING in time")
                time.sleep(0.05)
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
