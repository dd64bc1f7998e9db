"""Saliency against torch.autograd.grad; SmoothGrad against hand-computed noisy gradients."""

import pytest
import torch

from app.core.attribution.saliency import SmoothGradOptions, saliency
from tests.core.attribution.model_state import assert_unchanged, snapshot
from tests.helpers import tiny_cnn, tiny_inputs


def reference_gradient(model: torch.nn.Module, image: torch.Tensor, target: int) -> torch.Tensor:
    leaf = image.clone().requires_grad_(True)
    (gradient,) = torch.autograd.grad(model(leaf[None])[0, target], leaf)
    return gradient


def test_vanilla_gradient_equals_autograd() -> None:
    model = tiny_cnn().double()
    image = tiny_inputs(1, seed=2)[0].double()
    with torch.no_grad():
        top = int(model(image[None]).argmax())

    result = saliency(model, image)

    expected = reference_gradient(model, image, top)
    assert result.class_index == top
    assert result.samples == 0
    torch.testing.assert_close(result.gradient, expected, rtol=0, atol=0)
    torch.testing.assert_close(result.map, expected.abs().amax(dim=0), rtol=0, atol=0)


def test_smoothgrad_is_the_mean_of_the_seeded_noisy_gradients() -> None:
    model = tiny_cnn().double()
    image = tiny_inputs(1, seed=3)[0].double()
    options = SmoothGradOptions(samples=7, noise_level=0.2, seed=11, batch_size=3)

    result = saliency(model, image, class_index=1, smoothgrad=options)

    sigma = 0.2 * float(image.max() - image.min())
    noise = torch.randn(
        (7, 3, 8, 8), generator=torch.Generator().manual_seed(11), dtype=image.dtype
    )
    expected = torch.stack([reference_gradient(model, image + sigma * n, 1) for n in noise]).mean(0)
    assert result.noise_std == pytest.approx(sigma, abs=1e-15)
    assert result.samples == 7
    torch.testing.assert_close(result.gradient, expected, rtol=0, atol=1e-12)
    torch.testing.assert_close(result.map, expected.abs().amax(dim=0), rtol=0, atol=1e-12)


def test_smoothgrad_is_reproducible_and_independent_of_batch_size() -> None:
    model = tiny_cnn()
    image = tiny_inputs(1)[0]
    first = saliency(model, image, smoothgrad=SmoothGradOptions(samples=6, seed=5, batch_size=6))
    again = saliency(model, image, smoothgrad=SmoothGradOptions(samples=6, seed=5, batch_size=4))
    other = saliency(model, image, smoothgrad=SmoothGradOptions(samples=6, seed=6))
    torch.testing.assert_close(first.gradient, again.gradient, rtol=1e-5, atol=1e-7)
    assert not torch.allclose(first.gradient, other.gradient)


def test_model_and_global_random_state_are_left_alone() -> None:
    model = tiny_cnn()
    before = snapshot(model)
    torch.manual_seed(123)
    expected_next = torch.rand(3)
    torch.manual_seed(123)
    saliency(model, tiny_inputs(1)[0], smoothgrad=SmoothGradOptions(samples=2))
    saliency(model, tiny_inputs(1)[0])
    torch.testing.assert_close(torch.rand(3), expected_next)
    assert_unchanged(model, before)


def test_invalid_requests_are_rejected() -> None:
    with pytest.raises(ValueError, match="at least one sample"):
        saliency(tiny_cnn(), tiny_inputs(1)[0], smoothgrad=SmoothGradOptions(samples=0))
    with pytest.raises(ValueError, match="class index"):
        saliency(tiny_cnn(), tiny_inputs(1)[0], class_index=-1)
