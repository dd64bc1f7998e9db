"""Grad-CAM against a hand-written reference on the seeded toy CNN."""

import pytest
import torch
from torch.nn import functional

from app.core.attribution.gradcam import grad_cam, stretch_to_input
from app.core.receptive_field import ReceptiveField
from tests.core.attribution.model_state import assert_unchanged, snapshot
from tests.helpers import tiny_cnn, tiny_inputs


def test_block_layer_matches_the_linear_classifier_by_hand() -> None:
    """After `block` only flatten → linear runs, so ∂y_c/∂A is the class's weight row itself."""
    model = tiny_cnn().double()
    image = tiny_inputs(1)[0].double()
    with torch.no_grad():
        activation = model.block(model.features(image[None]))[0]  # (4, 4, 4)
        logits = model.classifier(activation.reshape(1, -1))[0]
    target = 3
    weights = model.classifier.weight[target].reshape(4, 4, 4).mean(dim=(1, 2))
    expected = torch.relu((weights[:, None, None] * activation).sum(dim=0))

    result = grad_cam(model, image, "block", target)

    assert result.class_index == target
    assert result.score == pytest.approx(float(logits[target]), abs=1e-12)
    torch.testing.assert_close(result.weights, weights.detach(), rtol=0, atol=1e-12)
    torch.testing.assert_close(result.cam, expected.detach(), rtol=0, atol=1e-12)


def test_inner_layer_matches_autograd_through_a_functional_forward() -> None:
    model = tiny_cnn().double()
    image = tiny_inputs(1, seed=4)[0].double()
    conv, batchnorm, _, pool = model.features
    with torch.enable_grad():
        activation = torch.relu(batchnorm(conv(image[None]))).detach().requires_grad_(True)
        logits = model.classifier(model.block(pool(activation)).flatten(1))[0]
        top = int(logits.argmax())
        (gradient,) = torch.autograd.grad(logits[top], activation)
    alphas = gradient[0].mean(dim=(1, 2))
    expected = torch.relu(torch.einsum("k,khw->hw", alphas, activation[0].detach()))

    result = grad_cam(model, image, "features.2")

    assert result.class_index == top  # default: the top prediction
    torch.testing.assert_close(result.cam, expected, rtol=0, atol=1e-12)
    resized = functional.interpolate(expected[None, None], size=(8, 8), mode="bilinear")[0, 0]
    scaled = (resized - resized.min()) / (resized.max() - resized.min())
    torch.testing.assert_close(result.upsampled, scaled, rtol=0, atol=1e-12)
    assert float(result.upsampled.min()) == 0.0
    assert float(result.upsampled.max()) == 1.0


def test_model_is_left_unchanged_even_when_the_layer_is_wrong() -> None:
    model = tiny_cnn()
    before = snapshot(model)
    grad_cam(model, tiny_inputs(1)[0], "block")
    with pytest.raises(ValueError, match="not a feature map"):
        grad_cam(model, tiny_inputs(1)[0], "classifier")
    with pytest.raises(KeyError):
        grad_cam(model, tiny_inputs(1)[0], "no.such.layer")
    assert_unchanged(model, before)


def test_out_of_range_class_is_rejected() -> None:
    with pytest.raises(ValueError, match="class index 5"):
        grad_cam(tiny_cnn(), tiny_inputs(1)[0], "block", 5)


def test_stretch_places_each_unit_at_its_receptive_field_centre() -> None:
    """Units of a stride-2 layer centred on pixels 1.5 and 3.5 of a 6-pixel-wide input."""
    cam = torch.tensor([[0.0, 4.0]], dtype=torch.float64)
    field = ReceptiveField(size=(4, 4), jump=(2, 2), start=(1.5, 1.5))
    stretched = stretch_to_input(cam, field, (1, 6))
    # Pixel 2 is a quarter of the way from centre 1.5 to 3.5; pixels beyond the centres hold.
    torch.testing.assert_close(
        stretched[0], torch.tensor([0.0, 0.0, 1.0, 3.0, 4.0, 4.0], dtype=torch.float64)
    )
    column = stretch_to_input(cam.T.contiguous(), field, (6, 1))
    torch.testing.assert_close(column[:, 0], stretched[0])  # rows follow the same rule
    plain = stretch_to_input(cam, None, (1, 6))
    torch.testing.assert_close(
        plain, functional.interpolate(cam[None, None], size=(1, 6), mode="bilinear")[0, 0]
    )
