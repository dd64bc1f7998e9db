"""Atlas encoding: grid arithmetic, per-channel scaling, tile placement and the PNG bytes."""

import io
import warnings

import numpy as np
import pytest
from PIL import Image

from app.core.encode import (
    AtlasLayout,
    feature_map_atlas,
    grid_layout,
    png_bytes,
    scale_per_channel,
    tile,
)
from tests.helpers import decode_png


@pytest.mark.parametrize(
    ("count", "tile_h", "tile_w", "cols", "rows"),
    [
        (1, 5, 5, 1, 1),
        (10, 3, 3, 4, 3),  # ceil(sqrt(10)) = 4 columns, ceil(10 / 4) = 3 rows
        (16, 3, 3, 4, 4),
        (17, 3, 3, 5, 4),  # ceil(sqrt(17)) = 5, ceil(17 / 5) = 4
        (8, 4, 8, 2, 4),  # wide tiles: ceil(sqrt(8 * 0.5)) = 2 columns
        (6, 2, 3, 2, 3),  # ceil(sqrt(6 * 2/3)) = 2
        (3, 10, 1, 3, 1),  # tall tiles: ceil(sqrt(30)) = 6, capped at the count
        (2, 1, 1, 2, 1),
    ],
)
def test_grid_layout_columns_and_rows(
    count: int, tile_h: int, tile_w: int, cols: int, rows: int
) -> None:
    layout = grid_layout(count, tile_h, tile_w)
    assert (layout.count, layout.cols, layout.rows) == (count, cols, rows)
    assert (layout.tile_h, layout.tile_w, layout.gap) == (tile_h, tile_w, 1)


def test_layout_size_origins_and_json() -> None:
    layout = grid_layout(12, 4, 6)  # ceil(sqrt(12 * 4/6)) = 3 columns, 4 rows
    assert (layout.cols, layout.rows) == (3, 4)
    assert (layout.height, layout.width) == (4 * 4 + 3, 3 * 6 + 2)
    assert layout.tile_origin(0) == (0, 0)
    assert layout.tile_origin(2) == (0, 2 * 7)
    assert layout.tile_origin(4) == (5, 7)
    assert layout.tile_origin(11) == (15, 14)
    assert layout.to_json() == {
        "count": 12,
        "cols": 3,
        "rows": 4,
        "tile_height": 4,
        "tile_width": 6,
        "gap": 1,
        "height": 19,
        "width": 20,
    }
    without_gap = grid_layout(12, 4, 6, gap=0)
    assert (without_gap.height, without_gap.width) == (16, 18)
    assert without_gap.tile_origin(11) == (12, 12)


def test_scale_per_channel_exact_values() -> None:
    maps = np.array(
        [
            [[-2.0, 0.0], [1.0, 2.0]],  # span 4: (x + 2) * 63.75
            [[3.5, 3.5], [3.5, 3.5]],  # constant → 0
            [[0.0, 1.0], [3.0, 5.0]],  # span 5: x * 51
            [[-4.0, -3.0], [-1.0, 0.0]],  # all negative, span 4
        ],
        dtype=np.float32,
    )
    scaled, lo, hi = scale_per_channel(maps)
    assert scaled.dtype == np.uint8
    assert scaled.shape == (4, 2, 2)
    expected = [
        [[0, 128], [191, 255]],  # 127.5 rounds half to even → 128, 191.25 → 191
        [[0, 0], [0, 0]],
        [[0, 51], [153, 255]],
        [[0, 64], [191, 255]],  # 63.75 → 64
    ]
    np.testing.assert_array_equal(scaled, np.array(expected, dtype=np.uint8))
    assert lo.tolist() == [-2.0, 3.5, 0.0, -4.0]
    assert hi.tolist() == [2.0, 3.5, 5.0, 0.0]


def test_scale_per_channel_extreme_ranges_stay_finite() -> None:
    tiny = np.float32(1e-45)  # subnormal: its reciprocal overflows float32
    maps = np.array(
        [[[0.0, tiny]], [[-3e38, 3e38]]],  # the second span overflows float32
        dtype=np.float32,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        scaled, lo, hi = scale_per_channel(maps)
    np.testing.assert_array_equal(scaled, [[[0, 255]], [[0, 255]]])
    assert lo.tolist() == [0.0, float(np.float32(-3e38))]
    assert hi.tolist() == [float(tiny), float(np.float32(3e38))]


def test_tile_places_grey_tiles_and_fills_gaps() -> None:
    tiles = np.array([[[1, 2], [3, 4]], [[5, 6], [7, 8]], [[9, 10], [11, 12]]], dtype=np.uint8)
    layout = grid_layout(3, 2, 2)  # 2 × 2 grid, last slot empty
    expected = np.array(
        [
            [1, 2, 99, 5, 6],
            [3, 4, 99, 7, 8],
            [99, 99, 99, 99, 99],
            [9, 10, 99, 99, 99],
            [11, 12, 99, 99, 99],
        ],
        dtype=np.uint8,
    )
    np.testing.assert_array_equal(tile(tiles, layout, fill=99), expected)
    np.testing.assert_array_equal(tile(tiles, layout), np.where(expected == 99, 0, expected))


def test_tile_places_rgb_tiles() -> None:
    red = np.full((1, 2, 3), (255, 0, 0), dtype=np.uint8)
    blue = np.full((1, 2, 3), (0, 0, 255), dtype=np.uint8)
    layout = AtlasLayout(count=2, cols=1, rows=2, tile_h=1, tile_w=2, gap=1)
    canvas = tile(np.stack([red, blue]), layout, fill=7)
    assert canvas.shape == (3, 2, 3)
    np.testing.assert_array_equal(canvas[0], red[0])
    np.testing.assert_array_equal(canvas[1], np.full((2, 3), 7))
    np.testing.assert_array_equal(canvas[2], blue[0])


@pytest.mark.parametrize(
    ("shape", "mode"),
    [((3, 5), "L"), ((4, 2, 3), "RGB"), ((3, 2, 4), "RGBA"), ((1, 1), "L"), ((257, 300, 3), "RGB")],
)
def test_png_bytes_round_trip(shape: tuple[int, ...], mode: str) -> None:
    pixels = np.random.default_rng(3).integers(0, 256, size=shape, dtype=np.uint8)
    data = png_bytes(pixels)
    image = decode_png(data)
    assert image.mode == mode and image.size == (shape[1], shape[0])
    np.testing.assert_array_equal(np.asarray(image), pixels)
    Image.open(io.BytesIO(data)).verify()  # every chunk's CRC and the stream's end


def test_png_bytes_of_a_non_contiguous_view() -> None:
    pixels = np.arange(48, dtype=np.uint8).reshape(6, 8)[::2, 1::3]
    np.testing.assert_array_equal(np.asarray(decode_png(png_bytes(pixels))), pixels)


@pytest.mark.parametrize("pixels", [np.zeros((2, 2), np.float32), np.zeros((2, 2, 2), np.uint8)])
def test_png_bytes_refuses_what_it_cannot_write(pixels: np.ndarray) -> None:
    with pytest.raises(ValueError, match="png_bytes takes"):
        png_bytes(pixels)


def test_feature_map_atlas_of_spatial_maps() -> None:
    activation = np.array(
        [
            [[0.0, 1.0], [3.0, 5.0]],
            [[7.0, 7.0], [7.0, 7.0]],
            [[-2.0, 0.0], [1.0, 2.0]],
        ],
        dtype=np.float32,
    )
    atlas = feature_map_atlas(activation)
    assert atlas.scaling == "channel"
    assert atlas.layout == AtlasLayout(count=3, cols=2, rows=2, tile_h=2, tile_w=2, gap=1)
    assert atlas.minimums == [0.0, 7.0, -2.0]
    assert atlas.maximums == [5.0, 7.0, 2.0]
    image = decode_png(atlas.png)
    assert image.mode == "L"
    expected = [
        [0, 51, 0, 0, 0],
        [153, 255, 0, 0, 0],
        [0, 0, 0, 0, 0],
        [0, 128, 0, 0, 0],
        [191, 255, 0, 0, 0],
    ]
    np.testing.assert_array_equal(np.asarray(image), np.array(expected, dtype=np.uint8))


def test_feature_map_atlas_of_a_vector_is_one_layer_scaled_tile() -> None:
    vector = np.array([3, -1, 7, 1, 5, -1, 0, 2, 4, 6], dtype=np.float32)
    atlas = feature_map_atlas(vector)
    assert atlas.scaling == "layer"
    # 10 values: ceil(sqrt(10)) = 4 columns, 3 rows, row-major; padding is scaled as the minimum.
    assert atlas.layout == AtlasLayout(count=1, cols=1, rows=1, tile_h=3, tile_w=4, gap=0)
    assert (atlas.minimums, atlas.maximums) == ([-1.0], [7.0])
    # (x + 1) * 255 / 8: 3 → 127.5 → 128, 1 → 63.75 → 64, 5 → 191.25 → 191, 0 → 31.875 → 32, …
    expected = [[128, 0, 255, 64], [191, 0, 32, 96], [159, 223, 0, 0]]
    np.testing.assert_array_equal(np.asarray(decode_png(atlas.png)), np.array(expected, np.uint8))


def test_feature_map_atlas_of_a_square_vector_has_no_padding() -> None:
    atlas = feature_map_atlas(np.array([0.0, 2.0, 4.0, 8.0], dtype=np.float32))
    assert (atlas.layout.tile_h, atlas.layout.tile_w) == (2, 2)
    expected = np.array([[0, 64], [128, 255]], dtype=np.uint8)  # 63.75 → 64, 127.5 → 128
    np.testing.assert_array_equal(np.asarray(decode_png(atlas.png)), expected)
