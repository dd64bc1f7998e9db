"""Sanity checks for the zoo itself, plus proof that its tricky constructs are there and matter.

Every model builds, runs, is deterministic and writes a valid spec; in-place activations, shared
modules, unseen edge pixels and data-dependent branches behave as the modules' docstrings claim.
"""

import hashlib
import tomllib
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from torch import Tensor, fx, nn
from torch.fx.proxy import TraceError

from tests.zoo import NUM_CLASSES, ZOO, ZooEntry
from tests.zoo.seeding import NORMS
from tests.zoo.specs import toml_key, toml_value, write_spec

MODEL_IDS = list(ZOO)


def random_batch(entry: ZooEntry, seed: int = 1) -> Tensor:
    """Two seeded images of the entry's input shape."""
    return torch.randn((2, *entry.input_shape), generator=torch.Generator().manual_seed(seed))


def run(model: nn.Module, images: Tensor) -> Tensor:
    with torch.no_grad():
        return model(images)


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_model_maps_a_batch_to_finite_input_dependent_logits(model_id: str) -> None:
    entry = ZOO[model_id]
    model = entry.build()
    logits = run(model, random_batch(entry))
    assert not model.training
    assert logits.shape == (2, NUM_CLASSES)
    assert torch.isfinite(logits).all()
    assert not torch.equal(logits[0], logits[1])  # the answer depends on the image


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_builds_are_deterministic_per_seed(model_id: str) -> None:
    entry = ZOO[model_id]
    first, second, other_seed = entry.build(), entry.build(), entry.build(seed=1)
    images = random_batch(entry)
    assert torch.equal(run(first, images), run(second, images))
    first_state, other_state = first.state_dict(), other_seed.state_dict()
    assert all(torch.equal(first_state[name], t) for name, t in second.state_dict().items())
    assert not all(torch.equal(first_state[name], t) for name, t in other_state.items())


def test_no_norm_is_an_identity() -> None:
    models_with_norms = set()
    for model_id, entry in ZOO.items():
        for norm in (module for module in entry.build().modules() if isinstance(module, NORMS)):
            models_with_norms.add(model_id)
            assert not torch.equal(norm.weight, torch.ones_like(norm.weight))
            assert not torch.equal(norm.bias, torch.zeros_like(norm.bias))
            if isinstance(norm, nn.BatchNorm2d):
                assert not torch.equal(norm.running_var, torch.ones_like(norm.running_var))
                assert not torch.equal(norm.running_mean, torch.zeros_like(norm.running_mean))
    assert models_with_norms == set(ZOO) - {"zoo-tutorial", "zoo-squeezenet", "zoo-vgg"}


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_traceable_flag_matches_torch_fx(model_id: str) -> None:
    entry = ZOO[model_id]
    model = entry.build()
    try:
        traced = fx.symbolic_trace(model)
    except TraceError:
        assert not entry.traceable
        return
    assert entry.traceable
    images = random_batch(entry)
    assert torch.equal(run(traced, images), run(model, images))


@pytest.mark.parametrize("model_id", MODEL_IDS)
def test_write_spec_writes_parseable_toml_naming_the_weights_by_hash(
    model_id: str, tmp_path: Path
) -> None:
    entry = ZOO[model_id]
    spec = tomllib.loads(write_spec(model_id, tmp_path).read_text(encoding="utf-8"))
    weights = tmp_path / spec["weights"]
    channels, height, width = entry.input_shape
    assert spec["id"] == model_id
    assert spec["entry_point"] == entry.entry_point
    assert spec["kwargs"] == {"num_classes": NUM_CLASSES}
    assert spec["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    assert spec["labels"] == [f"class {index}" for index in range(NUM_CLASSES)]
    assert spec["input"] == dict(kind="photo", channels=channels, height=height, width=width)
    assert spec["preprocess"]["resize"] == height
    assert spec["preprocess"]["mean"] == spec["preprocess"]["std"] == [0.5] * channels
    reloaded = entry.build(seed=1)  # different weights until the saved ones are loaded
    reloaded.load_state_dict(load_file(weights), strict=True)
    images = random_batch(entry)
    assert torch.equal(run(reloaded, images), run(entry.build(), images))


def test_write_spec_saves_pt_weights_with_torch_save(tmp_path: Path) -> None:
    spec = tomllib.loads(write_spec("zoo-convnext", tmp_path, weights_format="pt").read_text())
    weights = tmp_path / spec["weights"]
    assert weights.name == "zoo-convnext.pt"
    assert spec["sha256"] == hashlib.sha256(weights.read_bytes()).hexdigest()
    state = torch.load(weights, weights_only=True)
    assert torch.equal(state["stages.0.0.gamma"], ZOO["zoo-convnext"].build().stages[0][0].gamma)


def test_toml_strings_and_keys_round_trip_through_tomllib() -> None:
    nasty = 'quote " backslash \\ newline \n tab \t bell \x07 delete \x7f unicode × ü 😀'
    document = f"{toml_key('plain_key-1')} = {toml_value(nasty)}\n"
    document += f"{toml_key('a key.with dots')} = {toml_value({'x': [1, 2.5, True], 'y z': 'w'})}\n"
    assert tomllib.loads(document) == {
        "plain_key-1": nasty,
        "a key.with dots": {"x": [1, 2.5, True], "y z": "w"},
    }


def test_resnet_stem_relu_overwrites_a_kept_but_uncloned_bn1_output() -> None:
    """The bug convlens must avoid: ``nn.ReLU(inplace=True)`` rewrites the tensor bn1 returned."""
    entry = ZOO["zoo-resnet"]
    model = entry.build()
    kept: dict[str, Tensor] = {}

    def keep(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
        kept["detached"] = output.detach()
        kept["cloned"] = output.detach().clone()

    handle = model.bn1.register_forward_hook(keep)
    try:
        run(model, random_batch(entry))
    finally:
        handle.remove()
    assert kept["cloned"].min() < 0  # what bn1 really produced
    assert kept["detached"].min() >= 0  # what a hook that did not clone is left holding
    assert torch.equal(kept["detached"], kept["cloned"].clamp(min=0))


@pytest.mark.parametrize(
    ("model_id", "module_name", "calls"),
    [
        ("zoo-tutorial", "pool", 2),
        ("zoo-resnet", "layer1.0.relu", 2),
        ("zoo-resnet-bottleneck", "layer3.1.relu", 3),
    ],
)
def test_shared_modules_run_more_than_once_per_forward(
    model_id: str, module_name: str, calls: int
) -> None:
    entry = ZOO[model_id]
    model = entry.build()
    shapes: list[tuple[int, ...]] = []
    handle = model.get_submodule(module_name).register_forward_hook(
        lambda module, inputs, output: shapes.append(tuple(output.shape))
    )
    try:
        run(model, random_batch(entry))
    finally:
        handle.remove()
    assert len(shapes) == calls


@pytest.mark.parametrize(("model_id", "last"), [("zoo-squeezenet", 49), ("zoo-inception", 63)])
def test_unpadded_stride_two_stem_never_sees_the_last_row_and_column(
    model_id: str, last: int
) -> None:
    entry = ZOO[model_id]
    model = entry.build()
    images = random_batch(entry)
    logits = run(model, images)
    edge_changed = images.clone()
    edge_changed[:, :, last, :] += 10.0
    edge_changed[:, :, :, last] += 10.0
    assert torch.equal(run(model, edge_changed), logits)
    inner_changed = images.clone()
    inner_changed[:, :, last - 1, :] += 10.0
    assert not torch.equal(run(model, inner_changed), logits)


def test_untraceable_model_takes_the_branch_its_input_picks() -> None:
    entry = ZOO["zoo-untraceable"]
    model = entry.build()
    ran: list[str] = []
    handles = [
        getattr(model, name).register_forward_hook(lambda *_, name=name: ran.append(name))
        for name in ("bright", "dark")
    ]
    try:
        for level in (0.5, -0.5):
            run(model, torch.full((1, *entry.input_shape), level))
    finally:
        for handle in handles:
            handle.remove()
    assert ran == ["bright", "dark"]
