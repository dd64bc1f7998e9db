"""One decode worker process: upload bytes in, the model's pixels out, nothing else.

`DecodePool` (app/services/decoding.py) starts each worker as a fresh interpreter running this
module: it imports Pillow and numpy, never torch, so it starts in ~0.2 s and its idle size is
tens of MB. A worker caps its own address space at its idle size plus the request budget, and
speaks plain bytes and JSON over its socket: the server never unpickles what a worker sends.
(The pool lowers a worker's priority when a decode runs long, and kills it at the deadline.)

Protocol, per job: the server sends a JSON header (limits and the model's preprocessing) and the
upload's bytes; the worker answers a JSON header, then for pixels their bytes (`model_pixels`).
"""

import json
import resource
import sys
from multiprocessing.connection import Connection
from typing import Any

from PIL import Image

from app.core.decode import ImageError, ImageTooLargeError, decode_image
from app.core.pixels import PreprocessSpec, model_pixels
from app.services.inference import fix_mmap_threshold

MMAP_THRESHOLD_BYTES = 256 * 1024
"""Blocks this large are mapped and unmapped by themselves, so a large decode's memory leaves the
worker with the job instead of staying in its heap against the next job's address-space limit."""

MIB = 1024 * 1024


def address_space_bytes() -> int:
    """This process's virtual memory size now (what RLIMIT_AS counts)."""
    with open("/proc/self/statm", encoding="ascii") as statm:
        return int(statm.read().split()[0]) * resource.getpagesize()


def limit_address_space(budget: int) -> None:
    """Let this process map at most `budget` bytes more than it has mapped now."""
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    limit = address_space_bytes() + budget
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (limit, hard))


def decode_job(header: dict[str, Any], data: bytes) -> tuple[dict[str, Any], bytes]:
    """One job's answer: a JSON-able header and the pixel bytes (empty when refused)."""
    spec = PreprocessSpec.from_json(header["spec"])
    try:
        image = decode_image(
            data,
            header["max_pixels"],
            max_bytes=header["max_bytes"],
            max_jpeg_scans=header["max_jpeg_scans"],
        )
        pixels = model_pixels(image, spec)
    except ImageError as error:
        return {"refused": error.code, "message": str(error)}, b""
    except MemoryError:
        message = (
            f"decoding this image needs more than {header['max_bytes'] / MIB:.0f} MiB of memory"
        )
        return {"refused": ImageTooLargeError.code, "message": message, "exit": True}, b""
    except Exception as error:  # a bug, not the upload's fault: the server answers 500 and logs it
        return {"failed": f"{type(error).__name__}: {error}"}, b""
    return {"shape": list(pixels.shape), "dtype": pixels.dtype.str}, pixels.tobytes()


def serve(connection: Connection, budget: int) -> None:
    """The worker's main: set itself up, say "ready", then answer jobs until the pipe closes.

    A worker that ran out of memory answers, then exits (the pool starts a fresh one): whatever
    the failed allocation left behind is not worth keeping.
    """
    fix_mmap_threshold(MMAP_THRESHOLD_BYTES)
    Image.init()  # every format plugin imported now, not during the first upload (~80 ms)
    limit_address_space(budget)
    connection.send_bytes(b"ready")
    while True:
        try:
            header = json.loads(connection.recv_bytes())
            data = connection.recv_bytes()
        except (EOFError, OSError):  # the server closed the socket: nothing left to do
            return
        reply, pixels = decode_job(header, data)
        connection.send_bytes(json.dumps(reply).encode())
        if pixels:
            connection.send_bytes(pixels)
        if reply.get("exit"):
            return


if __name__ == "__main__":
    # `python -m app.services.decode_worker SOCKET_FD BUDGET_BYTES`, as `DecodePool` starts it.
    serve(Connection(int(sys.argv[1])), int(sys.argv[2]))
