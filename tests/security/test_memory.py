"""The optional glibc mmap threshold (off by default since analyses keep no maps: measured in
bench/analyze.py); this checks the libc call itself works here for those who set it."""

import platform

import pytest

from app.config import Settings
from app.services.inference import fix_mmap_threshold


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="mallopt is glibc's")
def test_glibc_accepts_the_threshold() -> None:
    assert Settings().mmap_threshold_bytes == 0
    assert fix_mmap_threshold(64 * 1024) is True
