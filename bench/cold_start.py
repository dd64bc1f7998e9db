"""Cold start: how long a fresh `convlens serve` takes to answer /healthz, and its first uploads.

Each run spawns a server (default settings; layer tables cached by a first run that is not
counted), polls /healthz every 10 ms from the spawn, counts the decode workers already running
when it first answers, then sends one 64×64 PNG to the photo model, and a second after it: the
first pays for whatever start-up work is left (the decode workers, when nothing started them),
the second is the warm cost. Prints the median and range of each over `--runs`.

Run: `.venv/bin/python bench/cold_start.py [--runs 5]`.
"""

import argparse
import io
import os
import statistics
import subprocess
import sys
import tempfile
import time

import httpx
import numpy as np
from PIL import Image

from app.config import REPO_ROOT
from app.launch import decode_workers, free_port

ANALYZE = "/api/v1/models/efficientnet-lite0/analyze"


def png(seed: int) -> bytes:
    pixels = np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


def one_run(data_dir: str, seed: int) -> dict[str, float]:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "app.cli",
        "serve",
        "--port",
        str(port),
        "--log-level",
        "warning",
    ]
    env = {**os.environ, "CONVLENS_DATA_DIR": data_dir}
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL)
    try:
        with httpx.Client(base_url=base, timeout=60) as client:
            while True:
                try:
                    if client.get("/healthz", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.01)
            healthz = time.perf_counter() - started
            workers = decode_workers(process.pid)
            timings = {"healthz_s": healthz, "workers_at_healthz": workers}
            for name, offset in (("first_upload_s", 0), ("second_upload_s", 1)):
                sent = time.perf_counter()
                files = {"image": ("x.png", png(seed * 2 + offset), "image/png")}
                response = client.post(ANALYZE, files=files)
                assert response.status_code == 200, response.text
                timings[name] = time.perf_counter() - sent
            return timings
    finally:
        process.terminate()
        process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as data_dir:
        one_run(data_dir, 0)  # caches the layer tables, as any server after the first has them
        runs = [one_run(data_dir, seed) for seed in range(1, args.runs + 1)]
    print(f"load average {os.getloadavg()[0]:.2f}; {args.runs} runs; median (min–max)")
    for key in runs[0]:
        values = [run[key] for run in runs]
        print(f"{key:>20}: {statistics.median(values):.3f} ({min(values):.3f}–{max(values):.3f})")


if __name__ == "__main__":
    main()
