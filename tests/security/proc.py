"""Resident memory of a process from /proc: its peak since a reset (Linux only)."""

from pathlib import Path

MIB = 1024 * 1024


def status_kib(pid: int, field: str) -> int:
    """One `kB` field of /proc/<pid>/status (VmRSS, VmHWM, VmSize…) in KiB."""
    for line in Path(f"/proc/{pid}/status").read_text(encoding="ascii").splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def reset_peak(pid: int) -> int:
    """Reset VmHWM to the current RSS (writing 5 to clear_refs); returns that RSS in bytes."""
    Path(f"/proc/{pid}/clear_refs").write_text("5", encoding="ascii")
    return status_kib(pid, "VmRSS") * 1024


def peak_rise(pid: int, since: int) -> int:
    """How far the peak RSS rose above `since` bytes (as returned by `reset_peak`)."""
    return status_kib(pid, "VmHWM") * 1024 - since


def address_space_limit(pid: int) -> int | None:
    """The process's RLIMIT_AS soft limit in bytes (None when unlimited)."""
    for line in Path(f"/proc/{pid}/limits").read_text(encoding="ascii").splitlines():
        if line.startswith("Max address space"):
            soft = line.split()[3]
            return None if soft == "unlimited" else int(soft)
    raise KeyError("Max address space")
