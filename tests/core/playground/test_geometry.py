"""O = (W − K + 2P)/S + 1 per axis, 'valid'/'same' padding, and the fit explanations."""

import pytest

from app.core.playground import AxisFit, PlaygroundError, resolve_geometry


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "padding", "dilation", "output", "fits"),
    [
        (7, 3, 1, 0, 1, 5, True),  # seed 003: 7×7, 3×3, stride 1
        (7, 3, 2, 0, 1, 3, True),  # stride 2
        (7, 3, 3, 0, 1, 2, False),  # stride 3: 4/3 + 1 = 2.33…, torch floors to 2
        (7, 3, 1, 1, 1, 7, True),  # padding (K − 1)/2 keeps the size
        (32, 5, 1, 0, 1, 28, True),  # seed 003: 5×5 over 32×32
        (32, 5, 1, 2, 1, 32, True),  # zero padding 2: 36 → 32
        (8, 3, 1, 0, 1, 6, True),  # seed 002: edge detection
        (8, 3, 2, 0, 1, 3, False),  # seed 002: "除不断就向下取整" → 3
        (4, 3, 1, 1, 1, 4, True),  # seed 003: (4 + 2 − 3)/1 + 1 = 4
        (9, 3, 1, 0, 2, 5, True),  # dilation 2: effective kernel 5
        (224, 11, 4, 2, 1, 55, False),  # AlexNet conv1: 55.25 floors to 55
    ],
)
def test_output_size_formula(
    size: int, kernel: int, stride: int, padding: int, dilation: int, output: int, fits: bool
) -> None:
    fit = AxisFit("width", size, kernel, stride, padding, dilation)
    assert fit.output == output
    assert fit.fits is fits
    assert fit.exact_output == (size - (dilation * (kernel - 1) + 1) + 2 * padding) / stride + 1


def test_seven_by_seven_stride_three_explains_why_it_does_not_fit() -> None:
    fit = AxisFit("width", 7, 3, 3, 0, 1)
    assert fit.formula() == "O = (7 − 3 + 2·0)/3 + 1 = 4/3 + 1 = 2.33…"
    english, chinese = fit.explanation()["en"], fit.explanation()["zh"]
    assert "not a whole number" in english
    assert "starts at 0, 3," in english  # the third window would start at 6 and need pixels 6–8
    assert "last 1 pixel(s) never covered" in english
    assert "Strides that fit: 1, 2, 4." in english
    assert "Padding 1 would fit." in english  # (7 − 3 + 2)/3 + 1 = 3
    assert "PyTorch floors to 2." in english
    assert "不是整数" in chinese and "能整除的步幅：1、2、4" in chinese


def test_fitting_and_oversized_windows_are_explained() -> None:
    assert AxisFit("height", 32, 5, 1, 2, 1).explanation()["en"] == (
        "height: O = (32 − 5 + 2·2)/1 + 1 = 31/1 + 1 = 32. The window fits exactly 32 times."
    )
    too_big = AxisFit("width", 3, 5, 1, 0, 1)
    assert too_big.output == 0 and not too_big.fits
    assert "larger than the 3 (padded) pixels" in too_big.explanation()["en"]


def test_same_padding_is_half_the_dilated_kernel() -> None:
    geometry = resolve_geometry((5, 3), 1, "same", (1, 2))
    assert geometry.padding == (2, 2)  # (5 − 1)/2 and 2·(3 − 1)/2
    assert resolve_geometry(3, 2, "valid").padding == (0, 0)
    assert resolve_geometry(3, (1, 2), (1, 0)).stride == (1, 2)


@pytest.mark.parametrize(
    ("kernel", "stride", "padding", "message"),
    [
        (2, 1, "same", "odd kernel"),
        (3, 2, "same", "stride 1"),
        (0, 1, "valid", "kernel must be"),
        (12, 1, "valid", "kernel must be"),
        (3, 0, "valid", "stride must be"),
        (3, 1, -1, "padding must be"),
        (3, 1, (1, 2, 3), "padding must be"),
        (3, True, "valid", "stride must be"),  # a bool is an int in Python, not in the API
    ],
)
def test_invalid_geometry_is_refused(kernel: int, stride: int, padding, message: str) -> None:
    with pytest.raises(PlaygroundError, match=message) as raised:
        resolve_geometry(kernel, stride, padding)
    assert raised.value.code == "invalid_parameter"
