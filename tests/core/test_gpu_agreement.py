"""Where CUDA exists: statistics are computed on the GPU and agree with the CPU's; maps reach
the host only when asked for. Skipped, saying why, on machines without a GPU."""

import pytest
import torch

from app.config import REPO_ROOT
from app.core.analysis import analyze, recompute_activations
from app.core.model_spec import read_spec
from app.core.registry import load_model

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device on this machine: CPU/GPU check skipped"
)


def test_gpu_statistics_and_maps_agree_with_the_cpu() -> None:
    spec = read_spec(REPO_ROOT / "models" / "efficientnet-lite0.toml")
    cpu = load_model(spec, torch.device("cpu"))
    gpu = load_model(spec, torch.device("cuda"))
    inputs = torch.randn((3, 224, 224), generator=torch.Generator().manual_seed(0))
    on_cpu, on_gpu = analyze(cpu, inputs), analyze(gpu, inputs)
    assert [p.index for p in on_gpu.predictions] == [p.index for p in on_cpu.predictions]
    for a, b in zip(on_cpu.layers, on_gpu.layers, strict=True):
        assert a.name == b.name and a.shape == b.shape
        assert b.min == pytest.approx(a.min, abs=1e-3) and b.max == pytest.approx(a.max, abs=1e-3)
        assert b.mean == pytest.approx(a.mean, abs=1e-3)
        assert b.zero_fraction == pytest.approx(a.zero_fraction, abs=1e-3)
    maps = recompute_activations(gpu, inputs, ["_blocks.3"])
    assert maps["_blocks.3"].device.type == "cpu"  # copied to the host for the client
    expected = recompute_activations(cpu, inputs, ["_blocks.3"])["_blocks.3"]
    torch.testing.assert_close(maps["_blocks.3"], expected, rtol=1e-3, atol=1e-3)
