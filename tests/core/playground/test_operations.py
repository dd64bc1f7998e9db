"""Playground operations: torch's result, and every step's arithmetic against independent sums."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from app.core import playground
from app.core.playground import PlaygroundError, convolve, im2col, pool, relu, run


def tensor(values) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.float64)


def test_conv_steps_show_window_products_sum_and_bias() -> None:
    image = tensor([[[0, 1, 2], [3, 4, 5], [6, 7, 8]]])
    kernel = tensor([[[[1, 2], [3, 4]]]])
    result = convolve(image, kernel, tensor([10]))
    # by hand: 0·1 + 1·2 + 3·3 + 4·4 + 10 = 37, then one column / one row further on
    assert result.output.tolist() == [[[37, 47], [67, 77]]]
    first = result.steps[0]
    assert (first.channel, first.y, first.x, first.origin) == (0, 0, 0, (0, 0))
    assert first.window == [[[0, 1], [3, 4]]]
    assert first.products == [[[0, 2], [9, 16]]]
    assert (first.total, first.bias, first.value) == (27, 10, 37)
    last = result.steps[-1]
    assert (last.y, last.x, last.origin, last.window) == (1, 1, (1, 1), [[[4, 5], [7, 8]]])
    assert (last.total, last.value) == (67, 77)
    assert result.input_shape == (1, 3, 3)


def test_padded_conv_windows_include_the_zero_border() -> None:
    image = tensor([[[1, 2], [3, 4]]])
    result = convolve(image, torch.ones(1, 1, 3, 3, dtype=torch.float64), padding="same")
    assert result.padded_input.tolist() == [
        [[0, 0, 0, 0], [0, 1, 2, 0], [0, 3, 4, 0], [0, 0, 0, 0]]
    ]
    assert result.output.tolist() == [[[10, 10], [10, 10]]]
    assert result.steps[0].window == [[[0, 0, 0], [0, 1, 2], [0, 3, 4]]]
    assert [fit.output for fit in result.fits] == [2, 2]


def test_multichannel_steps_run_over_filters_then_rows() -> None:
    image = tensor([[[1, 2], [3, 4]], [[5, 6], [7, 8]]])
    kernels = tensor([[[[1]], [[0]]], [[[0]], [[1]]]])  # 1×1 filters picking channel 0, then 1
    result = convolve(image, kernels)
    assert result.output.tolist() == image.tolist()
    assert [(s.channel, s.y, s.x) for s in result.steps][:5] == [
        (0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1), (1, 0, 0),
    ]  # fmt: skip
    assert result.steps[4].window == [[[1]], [[5]]] and result.steps[4].value == 5


def test_strict_fit_refuses_seven_by_seven_with_stride_three_but_floor_computes() -> None:
    image = torch.zeros(1, 7, 7, dtype=torch.float64)
    ones = torch.ones(1, 1, 3, 3, dtype=torch.float64)
    with pytest.raises(PlaygroundError, match=r"2\.33… is not a whole number") as refused:
        convolve(image, ones, stride=3)
    assert refused.value.code == "does_not_fit"
    floored = convolve(image, ones, stride=3, fit="floor")
    assert floored.output.shape == (1, 2, 2)
    assert [step.origin for step in floored.steps] == [(0, 0), (0, 3), (3, 0), (3, 3)]


def test_max_and_average_pooling_steps() -> None:
    grid = tensor([[[1, 1, 2, 4], [5, 6, 7, 8], [3, 2, 1, 0], [1, 2, 3, 4]]])
    maximum = pool(grid, "max", 2)
    assert maximum.output.tolist() == [[[6, 8], [3, 4]]]
    assert [step.argmax for step in maximum.steps] == [(1, 1), (1, 1), (0, 0), (1, 1)]
    assert maximum.steps[1].window == [[2, 4], [7, 8]]
    average = pool(grid, "avg", 2)
    assert average.output.tolist() == [[[3.25, 5.25], [2, 2]]]
    assert (average.steps[0].total, average.steps[0].count) == (13, 4)


def test_max_pool_padding_is_shown_as_empty_cells() -> None:
    result = pool(tensor([[[1, -2], [-3, -4]]]), "max", 2, stride=1, padding=1, fit="floor")
    assert result.output.tolist() == [[[1, 1, -2], [1, 1, -2], [-3, -3, -4]]]
    assert result.steps[0].window == [[None, None], [None, 1]]
    assert result.padded_input[0, 0].tolist() == [0, 0, 0, 0]  # shown as zeros, never -inf


def test_relu_steps_one_per_element() -> None:
    result = relu(tensor([[[-1.5, 0], [2, -3]]]))
    assert result.output.tolist() == [[[0, 0], [2, 0]]]
    assert [(s.window, s.value) for s in result.steps] == [
        ([[-1.5]], 0), ([[0]], 0), ([[2]], 2), ([[-3]], 0),
    ]  # fmt: skip


def test_im2col_shapes_and_equality_with_conv() -> None:
    image = torch.arange(3 * 8 * 8, dtype=torch.float64).reshape(3, 8, 8) % 7
    kernels = torch.arange(4 * 27, dtype=torch.float64).reshape(4, 3, 3, 3) % 5 - 2
    result = im2col(image, kernels, tensor([0, 1, -1, 0.5]))
    assert result.weight_rows.shape == (4, 27)  # K × F·F·D₁
    assert result.columns.shape == (27, 36)  # F·F·D₁ × W₂·H₂
    assert result.product.shape == (4, 36)
    assert result.output.shape == (4, 6, 6)
    assert torch.equal(result.output, result.conv_output)  # integers: exact in float64
    assert torch.equal(result.columns[:, 0], image[:, :3, :3].reshape(-1))


@pytest.mark.parametrize(
    ("request_body", "code"),
    [
        ({"input": [[[1, 2], [3]]], "kernels": [[[[1]]]]}, "invalid_input"),
        ({"input": [[1, 2], [3, 4]], "kernels": [[[[1]]]]}, "invalid_input"),
        ({"input": [[[float("nan")]]], "kernels": [[[[1]]]]}, "invalid_input"),
        ({"input": [[[1_000_000.5]]], "kernels": [[[[1]]]]}, "invalid_input"),
        ({"input": [[[0]]], "kernels": [[[[-1e300]]]]}, "invalid_input"),
        ({"input": [[[0] * 33]], "kernels": [[[[1]]]]}, "input_too_large"),
        ({"input": [[[0]]] * 4, "kernels": [[[[1]]] * 4]}, "input_too_large"),
        ({"input": [[[0, 0]]], "kernels": [[[[1]], [[1]]]]}, "invalid_kernels"),
        ({"input": [[[0]]], "kernels": [[[[1]]]] * 9}, "invalid_kernels"),
        ({"input": [[[0]]], "kernels": [[[[1]]]], "bias": [1, 2]}, "invalid_kernels"),
        ({"input": [[[0] * 4] * 4], "kernels": [[[[1] * 5] * 5]]}, "does_not_fit"),
    ],
)
def test_invalid_conv_requests_are_refused_with_a_code(request_body: dict, code: str) -> None:
    with pytest.raises(PlaygroundError) as refused:
        run("conv", request_body)
    assert refused.value.code == code


def test_step_limit_is_inclusive() -> None:
    image = [[[0.0] * 32] * 32] * 3
    box = [[[1.0] * 3] * 3] * 3
    at_limit = run("conv", {"input": image, "kernels": [box] * 4, "padding": "same"})
    assert len(at_limit.steps) == playground.MAX_STEPS == 4 * 32 * 32
    with pytest.raises(PlaygroundError, match="at most 4096 steps") as refused:
        run("conv", {"input": image, "kernels": [box] * 5, "padding": "same"})
    assert refused.value.code == "too_many_steps"


def test_step_values_limit() -> None:
    body = {"input": [[[0.0] * 32] * 32] * 3, "kernels": [[[[1.0] * 11] * 11] * 3] * 8}
    with pytest.raises(PlaygroundError) as refused:
        run("conv", body)  # 8 × 22 × 22 steps × 363 values
    assert refused.value.code == "too_many_steps"
    assert playground.MAX_STEP_VALUES < 8 * 22 * 22 * 363


def numpy_conv(image: np.ndarray, kernels: np.ndarray, stride, padding, dilation) -> np.ndarray:
    """Textbook loops: the independent reference for the property test."""
    padded = np.pad(image, ((0, 0), (padding[0],) * 2, (padding[1],) * 2))
    kh, kw = kernels.shape[2:]
    span_h, span_w = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    out_h = (padded.shape[1] - span_h) // stride[0] + 1
    out_w = (padded.shape[2] - span_w) // stride[1] + 1
    out = np.zeros((kernels.shape[0], out_h, out_w))
    for o in range(kernels.shape[0]):
        for y in range(out_h):
            for x in range(out_w):
                top, left = y * stride[0], x * stride[1]
                window = padded[
                    :, top : top + span_h : dilation[0], left : left + span_w : dilation[1]
                ]
                out[o, y, x] = (window * kernels[o]).sum()
    return out


pairs = st.tuples(st.integers(1, 3), st.integers(1, 3))


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    channels=st.integers(1, 3),
    height=st.integers(1, 10),
    width=st.integers(1, 10),
    filters=st.integers(1, 3),
    kernel=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    stride=pairs,
    padding=st.tuples(st.integers(0, 2), st.integers(0, 2)),
    dilation=st.tuples(st.integers(1, 2), st.integers(1, 2)),
    seed=st.integers(0, 2**16),
)
def test_conv_equals_torch_and_textbook_loops(
    channels, height, width, filters, kernel, stride, padding, dilation, seed
) -> None:
    span = [d * (k - 1) + 1 for k, d in zip(kernel, dilation, strict=True)]
    if height + 2 * padding[0] < span[0] or width + 2 * padding[1] < span[1]:
        return  # no window fits: refused, covered by the fit tests
    generator = torch.Generator().manual_seed(seed)
    image = torch.randn(channels, height, width, generator=generator, dtype=torch.float64)
    kernels = torch.randn(filters, channels, *kernel, generator=generator, dtype=torch.float64)
    bias = torch.randn(filters, generator=generator, dtype=torch.float64)
    result = convolve(image, kernels, bias, stride=stride, padding=padding, dilation=dilation,
                      fit="floor")  # fmt: skip
    expected = F.conv2d(image[None], kernels, bias, stride, padding, dilation)[0]
    assert torch.equal(result.output, expected)
    loops = numpy_conv(image.numpy(), kernels.numpy(), stride, padding, dilation)
    np.testing.assert_allclose(
        result.output.numpy() - bias.numpy()[:, None, None], loops, atol=1e-9
    )
    from_steps = torch.tensor(
        [step.total + step.bias for step in result.steps], dtype=torch.float64
    )
    torch.testing.assert_close(from_steps, expected.reshape(-1), rtol=0, atol=1e-9)
    assert len(result.steps) == expected.numel()


@settings(max_examples=60, deadline=None, derandomize=True)
@given(
    channels=st.integers(1, 3),
    height=st.integers(2, 10),
    width=st.integers(2, 10),
    kernel=st.integers(1, 3),
    stride=st.integers(1, 3),
    padding=st.integers(0, 1),
    dilation=st.integers(1, 2),
    seed=st.integers(0, 2**16),
)
def test_pooling_equals_torch(channels, height, width, kernel, stride, padding, dilation, seed):
    if 2 * padding > kernel or min(height, width) + 2 * padding < dilation * (kernel - 1) + 1:
        return  # torch's own rule, or no window fits
    generator = torch.Generator().manual_seed(seed)
    image = torch.randn(channels, height, width, generator=generator, dtype=torch.float64)
    maximum = pool(image, "max", kernel, stride=stride, padding=padding, dilation=dilation,
                   fit="floor")  # fmt: skip
    assert torch.equal(
        maximum.output, F.max_pool2d(image[None], kernel, stride, padding, dilation)[0]
    )
    step_max = [max(v for row in s.window for v in row if v is not None) for s in maximum.steps]
    assert step_max == maximum.output.reshape(-1).tolist()
    average = pool(image, "avg", kernel, stride=stride, padding=padding, fit="floor")
    assert torch.equal(average.output, F.avg_pool2d(image[None], kernel, stride, padding)[0])
    step_mean = torch.tensor([s.total / s.count for s in average.steps], dtype=torch.float64)
    torch.testing.assert_close(step_mean, average.output.reshape(-1), rtol=0, atol=1e-12)
