"""Every seed example run through the playground gives exactly the seed's numbers."""

import pytest
import torch

from app.core.lessons import seed_data
from app.core.lessons.presets import PRESET_INDEX, PRESETS
from app.core.playground import PlaygroundError, PlaygroundResult, run


def result_of(slug: str) -> PlaygroundResult:
    preset = PRESET_INDEX[slug]
    return run(preset.operation, preset.request)


def output_of(slug: str) -> list:
    return result_of(slug).output.tolist()


def test_curve_detector_on_its_receptive_field_is_6600() -> None:
    result = result_of("curve-detector")
    assert result.output.tolist() == [[[6600.0]]]
    step = result.steps[0]
    nonzero = sorted(v for row in step.products[0] for v in row if v)
    assert nonzero == [600.0, 1500.0, 1500.0, 1500.0, 1500.0]  # 20×30 and four 50×30
    assert len(step.products[0]) * len(step.products[0][0]) == 49


def test_curve_detector_over_an_image_is_6600_top_left_and_0_top_right() -> None:
    result = result_of("curve-detector-image")
    output = result.output[0]
    assert output.shape == (26, 26)  # (32 − 7)/1 + 1; the seed's 28 is its 5×5 example's size
    assert output[0, 0].item() == 6600
    assert output[0, 25].item() == 0
    # the seed's patch matches even better one row lower: the seed only claims the corner
    assert output[1, 0].item() == output.max().item() == 9000
    highlights = PRESET_INDEX["curve-detector-image"].highlights
    assert [(h.y, h.x) for h in highlights] == [(0, 0), (0, 25)]


def test_the_second_printing_of_the_curve_filter_would_not_give_6600() -> None:
    second = [row[:] for row in seed_data.CURVE_FILTER]
    second[6][3] = 30  # the seed prints the filter twice; the second copy has this extra 30
    field = torch.tensor(seed_data.CURVE_RECEPTIVE_FIELD)
    assert (field * torch.tensor(seed_data.CURVE_FILTER)).sum().item() == 6600
    assert (field * torch.tensor(second)).sum().item() == 8100


def test_edge_detection_8x8_gives_6x6_bright_on_the_edge() -> None:
    assert output_of("edge-detection") == [[[0.0, 0.0, 30.0, 30.0, 0.0, 0.0]] * 6]
    horizontal = output_of("edge-detection-horizontal")[0]
    assert horizontal == [[0.0] * 6] * 2 + [[30.0] * 6] * 2 + [[0.0] * 6] * 2


def test_same_padding_and_stride_two_on_8x8() -> None:
    same = result_of("edge-same-padding")
    assert same.output.shape == (1, 8, 8) and same.padded_input.shape == (1, 10, 10)
    assert result_of("edge-stride-2").output.shape == (1, 3, 3)


@pytest.mark.parametrize(
    ("slug", "shape", "top_left", "second"),
    [
        ("stride-1", (1, 5, 5), 72, 81),  # 0+1+2+7+8+9+14+15+16, then the window one step right
        ("stride-2", (1, 3, 3), 72, 90),  # two steps right: 2+3+4+9+10+11+16+17+18
        ("stride-1-same", (1, 7, 7), 16, 27),  # 0+1+7+8 inside the zero border; 0+1+2+7+8+9
    ],
)
def test_seven_by_seven_strides(slug: str, shape: tuple, top_left: int, second: int) -> None:
    result = result_of(slug)
    assert result.output.shape == shape
    assert result.output[0, 0, :2].tolist() == [top_left, second]


def test_seven_by_seven_stride_three_is_refused() -> None:
    preset = PRESET_INDEX["stride-3"]
    with pytest.raises(PlaygroundError, match=r"4/3 \+ 1 = 2\.33…") as refused:
        run(preset.operation, preset.request)
    assert refused.value.code == "does_not_fit"


def test_rgb_32x32_with_5x5x3_filters() -> None:
    one = result_of("rgb-one-filter")
    assert one.output.shape == (1, 28, 28)
    assert len(one.steps) == 784  # 28 × 28 positions
    assert len(one.steps[0].products) * 25 == 75  # 3 channels × 5 × 5 products each
    assert result_of("rgb-two-filters").output.shape == (2, 28, 28)
    padded = result_of("rgb-padding-2")
    assert padded.padded_input.shape == (3, 36, 36)
    assert padded.output.shape == (3, 32, 32)


def test_multichannel_8x8x3_four_filters_is_6x6x4() -> None:
    result = result_of("multichannel")
    assert result.output.shape == (4, 6, 6)
    assert all(len(step.products) * 9 == 27 for step in result.steps)
    assert torch.tensor(PRESET_INDEX["multichannel"].request["kernels"]).shape == (4, 3, 3, 3)


def test_local_connection_y0() -> None:
    assert output_of("local-connection") == [[[35.0, 45.0, 55.0], [75.0, 85.0, 95.0],
                                              [115.0, 125.0, 135.0]]]  # fmt: skip
    rgb = result_of("local-connection-rgb")
    assert rgb.output.shape == (1, 3, 3)
    assert sum(len(ch) * len(ch[0]) for ch in rgb.steps[0].window) == 12


def test_zero_padding_4x4_stays_4x4() -> None:
    result = result_of("zero-padding")
    assert result.output.shape == (1, 4, 4)
    assert result.output[0, 0, 0].item() == 0 + 1 + 4 + 5  # the window's zero border adds 0


def test_hengzhe_detector_scores_3_wherever_the_stroke_is() -> None:
    centre = output_of("hengzhe")
    assert centre == [seed_data.HENGZHE_FEATURE_MAP]
    assert max(max(row) for row in centre[0]) == 3 and centre[0][1][1] == 3
    corner = output_of("hengzhe-corner")[0]
    assert corner[2][2] == 3 and max(max(row) for row in corner) == 3
    assert output_of("hengzhe-max-pool") == [[[3.0]]]


def test_pooling_and_relu_presets() -> None:
    assert output_of("max-pool") == [[[6.0, 8.0], [3.0, 4.0]]]
    assert output_of("avg-pool") == [[[3.25, 5.25], [2.0, 2.0]]]
    assert output_of("relu") == [
        [[0, 0, 30, 30, 0, 0], [0, 0, 30, 30, 0, 0], [0, 5, 25, 0, 0, 15], [0, 10, 20, 0, 0, 0]]
    ]


def test_one_by_one_convolution_changes_the_depth_from_3_to_2() -> None:
    result = result_of("one-by-one")
    assert result.output.shape == (2, 4, 4)
    assert result.output[0, 0, 0].item() == 0 - 32  # channel 0 minus channel 2 at pixel 0
    assert result.output[1, 0, 0].item() == 0.5 * (0 + 16 + 32)


def test_im2col_preset_shapes() -> None:
    preset = PRESET_INDEX["im2col"]
    result = run(preset.operation, preset.request)
    assert result.weight_rows.shape == (4, 27)
    assert result.columns.shape == (27, 36)
    assert result.product.shape == (4, 36)
    assert torch.equal(result.output, result.conv_output)
    assert torch.equal(result.output, result_of("multichannel").output)


def test_every_preset_is_bilingual_sourced_and_says_when_it_is_equivalent() -> None:
    assert len({p.slug for p in PRESETS}) == len(PRESETS)
    for preset in PRESETS:
        assert preset.title.en and preset.title.zh and preset.description.zh
        assert preset.source[:3] in {"000", "002", "003", "004"}
        if preset.equivalent is not None:
            assert preset.equivalent.en.startswith("Equivalent example")
            assert preset.equivalent.zh.startswith("等价例子")
    transcribed = [p.slug for p in PRESETS if p.equivalent is None]
    assert transcribed == ["curve-detector"]  # the only example the seeds give number by number
