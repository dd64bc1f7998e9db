"""Filter atlases: exact pixels for hand-made weights, layouts, and exact filter values."""

import numpy as np
import torch
from torch import nn

from app.core.encode import AtlasLayout
from app.core.filters import (
    conv_modules,
    diverging_filter_atlas,
    filter_bank,
    filter_values,
    rgb_filter_atlas,
)
from tests.helpers import decode_png, tiny_cnn

WHITE = (255, 255, 255)


def two_rgb_filters() -> np.ndarray:
    """(2, 3, 2, 2): filter 0 spans 0…51 (pixels = 5·w); filter 1 is R −1, G +1, B 0."""
    first = [[[0, 5], [10, 15]], [[20, 25], [30, 35]], [[40, 45], [50, 51]]]
    second = [[[-1, -1], [-1, -1]], [[1, 1], [1, 1]], [[0, 0], [0, 0]]]
    return np.array([first, second], dtype=np.float32)


def test_rgb_filter_atlas_exact_pixels() -> None:
    atlas = rgb_filter_atlas(two_rgb_filters())
    assert atlas.scaling == "filter"
    assert atlas.layout == AtlasLayout(count=2, cols=2, rows=1, tile_h=2, tile_w=2, gap=1)
    assert (atlas.minimums, atlas.maximums) == ([0.0, -1.0], [51.0, 1.0])
    image = decode_png(atlas.png)
    assert image.mode == "RGB"
    # Filter 1: (w + 1) · 127.5 → R 0, G 255, B 127.5 → 128 (round half to even).
    expected = [
        [(0, 100, 200), (25, 125, 225), WHITE, (0, 255, 128), (0, 255, 128)],
        [(50, 150, 250), (75, 175, 255), WHITE, (0, 255, 128), (0, 255, 128)],
    ]
    np.testing.assert_array_equal(np.asarray(image), np.array(expected, dtype=np.uint8))


def test_rgb_filter_atlas_constant_filter_is_black() -> None:
    atlas = rgb_filter_atlas(np.full((1, 3, 1, 1), 0.25, dtype=np.float32))
    assert (atlas.minimums, atlas.maximums) == ([0.25], [0.25])
    np.testing.assert_array_equal(np.asarray(decode_png(atlas.png)), [[[0, 0, 0]]])


def test_diverging_filter_atlas_exact_pixels() -> None:
    weight = np.array(
        [
            [[[4, -4], [2, 0]], [[1, -2], [3, -1]]],  # |w| max 4: 127.5 + 127.5 · w / 4
            [[[0, 0], [0, 0]], [[0, 0], [0, 0]]],  # all zero → mid-grey
        ],
        dtype=np.float32,
    )
    atlas = diverging_filter_atlas(weight)
    assert atlas.layout == AtlasLayout(count=4, cols=2, rows=2, tile_h=2, tile_w=2, gap=1)
    assert (atlas.minimums, atlas.maximums) == ([-4.0, 0.0], [4.0, 0.0])
    # 2 → 191.25 → 191, 1 → 159.375 → 159, −2 → 63.75 → 64, 3 → 223.125 → 223, −1 → 95.625 → 96
    expected = [
        [255, 0, 255, 159, 64],
        [191, 128, 255, 223, 96],
        [255, 255, 255, 255, 255],
        [128, 128, 255, 128, 128],
        [128, 128, 255, 128, 128],
    ]
    image = decode_png(atlas.png)
    assert image.mode == "L"
    np.testing.assert_array_equal(np.asarray(image), np.array(expected, dtype=np.uint8))


def test_depthwise_bank_is_a_near_square_grid() -> None:
    weight = np.zeros((5, 1, 3, 3), dtype=np.float32)
    for channel in range(5):
        weight[channel, 0, 1, 1] = channel + 1  # centre tap = |max| → 255, the rest 0 → 128
        weight[channel, 0, 0, 0] = -(channel + 1)  # top-left tap → 0
    atlas = diverging_filter_atlas(weight)
    assert atlas.layout == AtlasLayout(count=5, cols=3, rows=2, tile_h=3, tile_w=3, gap=1)
    pixels = np.asarray(decode_png(atlas.png))
    assert pixels.shape == (7, 11)
    single = np.array([[0, 128, 128], [128, 255, 128], [128, 128, 128]], dtype=np.uint8)
    expected = np.full((7, 11), 255, dtype=np.uint8)
    for index in range(5):
        y, x = divmod(index, 3)
        expected[4 * y : 4 * y + 3, 4 * x : 4 * x + 3] = single
    np.testing.assert_array_equal(pixels, expected)
    assert atlas.maximums == [1.0, 2.0, 3.0, 4.0, 5.0]


def test_pointwise_bank_has_no_gaps() -> None:
    weight = np.array([[1, -1, 0, 0.5], [0, 0, -2, 2]], dtype=np.float32).reshape(2, 4, 1, 1)
    atlas = diverging_filter_atlas(weight)
    assert atlas.layout == AtlasLayout(count=8, cols=4, rows=2, tile_h=1, tile_w=1, gap=0)
    # 0.5 / 1 → 191.25 → 191
    expected = np.array([[255, 0, 128, 191], [128, 128, 0, 255]], dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(decode_png(atlas.png)), expected)


def test_filter_bank_picks_the_drawing_and_keeps_hyper_parameters() -> None:
    torch.manual_seed(0)
    rgb = nn.Conv2d(3, 2, kernel_size=2, stride=2, padding=1)
    with torch.no_grad():
        rgb.weight.copy_(torch.from_numpy(two_rgb_filters()))
    bank = filter_bank("stem", rgb)
    assert bank.rgb and not bank.depthwise
    assert (bank.stride, bank.padding, bank.dilation, bank.groups) == ((2, 2), (1, 1), (1, 1), 1)
    np.testing.assert_array_equal(bank.weight, two_rgb_filters())
    np.testing.assert_array_equal(bank.bias, rgb.bias.detach().numpy())
    assert bank.atlas == rgb_filter_atlas(two_rgb_filters())

    depthwise = nn.Conv2d(4, 4, kernel_size=3, groups=4, bias=False, padding="same", dilation=2)
    bank = filter_bank("dw", depthwise)
    assert bank.depthwise and not bank.rgb
    assert bank.bias is None
    assert (bank.padding, bank.dilation, bank.groups) == ("same", (2, 2), 4)
    assert bank.atlas.layout.cols == 2  # near-square grid, not one column
    assert bank.atlas == diverging_filter_atlas(depthwise.weight.detach().numpy())

    grouped_rgb_width = nn.Conv2d(6, 4, kernel_size=1, groups=2)  # 3 inputs per group, not colour
    assert not filter_bank("g", grouped_rgb_width).rgb


def test_filter_values_are_the_exact_weights() -> None:
    torch.manual_seed(1)
    conv = nn.Conv2d(4, 6, kernel_size=3, groups=2)
    weight, bias = filter_values(conv, 5)
    assert weight.shape == (2, 3, 3)
    assert weight.dtype == np.float32
    np.testing.assert_array_equal(weight, conv.weight.detach()[5].numpy())
    assert bias == float(conv.bias.detach()[5])
    _, no_bias = filter_values(nn.Conv2d(1, 1, 1, bias=False), 0)
    assert no_bias is None


def test_conv_modules_lists_every_conv_by_name() -> None:
    model = tiny_cnn()
    convs = conv_modules(model)
    assert list(convs) == ["features.0", "block.conv"]
    assert convs["block.conv"] is model.block.conv
