"""Occlusion: a whole-image patch against the drop computed by hand; batched against a loop."""

import pytest
import torch

from app.core.attribution.occlusion import occlusion, window_offsets
from tests.core.attribution.model_state import assert_unchanged, snapshot
from tests.helpers import tiny_cnn, tiny_inputs


def test_offsets_follow_captums_rule() -> None:
    # ceil((8 - 3) / 2) + 1 = 4 windows; the last one (6..8) is clipped at the edge.
    assert window_offsets(8, 3, 2) == [0, 2, 4, 6]
    assert window_offsets(8, 4, 4) == [0, 4]
    assert window_offsets(8, 8, 3) == [0]
    with pytest.raises(ValueError):
        window_offsets(8, 9, 1)
    with pytest.raises(ValueError):
        window_offsets(8, 3, 0)


def test_whole_image_patch_drop_equals_the_hand_computed_drop() -> None:
    model = tiny_cnn().double()
    image = tiny_inputs(1, seed=7)[0].double()
    fill = torch.tensor([0.5, -1.0, 2.0], dtype=torch.float64)
    with torch.no_grad():
        logits = model(image[None])[0]
        filled = model(fill.reshape(1, 3, 1, 1).expand(1, 3, 8, 8))[0]
    target = int(logits.argmax())

    result = occlusion(model, image, (8, 8), (1, 1), fill)

    assert result.rows == [0] and result.cols == [0]
    assert result.class_index == target
    assert float(result.drops[0, 0]) == pytest.approx(
        float(logits[target] - filled[target]), abs=1e-12
    )
    torch.testing.assert_close(
        result.pixel_map, torch.full((8, 8), float(result.drops[0, 0]), dtype=torch.float64)
    )


def occluded_scores_one_by_one(model, image, window, rows, cols, fill, target) -> torch.Tensor:
    scores = torch.empty(len(rows), len(cols), dtype=image.dtype)
    with torch.no_grad():
        base = model(image[None])[0, target]
        for i, top in enumerate(rows):
            for j, left in enumerate(cols):
                copy = image.clone()
                copy[:, top : top + window[0], left : left + window[1]] = fill.reshape(-1, 1, 1)
                scores[i, j] = base - model(copy[None])[0, target]
    return scores


@pytest.mark.parametrize("batch_size", [1, 5, 64])
def test_batched_occlusion_equals_an_unbatched_loop(batch_size: int) -> None:
    model = tiny_cnn().double()
    image = tiny_inputs(1, seed=8)[0].double()
    fill = torch.zeros(3, dtype=torch.float64)

    result = occlusion(model, image, (3, 3), (2, 2), fill, class_index=2, batch_size=batch_size)

    expected = occluded_scores_one_by_one(model, image, (3, 3), [0, 2, 4, 6], [0, 2, 4, 6], fill, 2)
    torch.testing.assert_close(result.drops, expected, rtol=0, atol=1e-12)


def test_pixel_map_is_the_mean_drop_of_the_covering_windows() -> None:
    model = tiny_cnn().double()
    result = occlusion(model, tiny_inputs(1)[0].double(), (3, 3), (2, 2), torch.zeros(3))
    drops = result.drops
    # Rows at offsets 0 and 2 cover pixel row 2; only the column at offset 4 covers column 5.
    expected = (drops[0, 2] + drops[1, 2]) / 2
    assert float(result.pixel_map[2, 5]) == pytest.approx(float(expected), abs=1e-12)
    # Pixel (7, 7) is covered only by the clipped last window.
    assert float(result.pixel_map[7, 7]) == pytest.approx(float(drops[3, 3]), abs=1e-12)


def test_model_is_left_unchanged_and_bad_fill_is_rejected() -> None:
    model = tiny_cnn()
    before = snapshot(model)
    occlusion(model, tiny_inputs(1)[0], (4, 4), (4, 4), torch.zeros(1))
    with pytest.raises(ValueError, match="fill needs"):
        occlusion(model, tiny_inputs(1)[0], (4, 4), (4, 4), torch.zeros(2))
    assert_unchanged(model, before)
