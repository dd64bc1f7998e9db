"""Progress and cancellation of the long loops: counts match the work, a cancel stops the loop
between two batches, and reporting progress never changes a number."""

import pytest
import torch

from app.core.attribution.feature_vis import FeatureVisOptions, visualize_channel
from app.core.attribution.occlusion import occlusion
from app.core.attribution.progress import Cancelled, Progress
from app.core.attribution.saliency import SmoothGradOptions, saliency
from tests.helpers import tiny_cnn, tiny_inputs


class StopAfter(Progress):
    """Cancels itself during its ``count``-th advance, as a DELETE arriving mid-batch would."""

    def __init__(self, count: int) -> None:
        super().__init__()
        self.count = count
        self.advances = 0

    def advance(self, steps: int = 1) -> None:
        self.advances += 1
        if self.advances == self.count:
            self.cancel()
        super().advance(steps)


def test_progress_counts_and_refuses_to_start_once_cancelled() -> None:
    progress = Progress()
    assert progress.fraction == 0.0
    progress.begin(10)
    progress.advance(4)
    assert (progress.done, progress.total, progress.fraction) == (4, 10, 0.4)
    progress.advance(100)
    assert progress.done == 10  # never past the total
    progress.cancel()
    with pytest.raises(Cancelled):
        progress.advance()
    with pytest.raises(Cancelled):
        Progress.begin(progress, 3)


def test_occlusion_counts_window_positions_in_batches_and_keeps_its_numbers() -> None:
    model, image = tiny_cnn(), tiny_inputs(1, seed=3)[0]
    fill = torch.zeros(3)
    plain = occlusion(model, image, (3, 3), (1, 1), fill, batch_size=8)
    for local in (True, False):
        progress = Progress()
        counted = occlusion(
            model, image, (3, 3), (1, 1), fill, batch_size=8, local=local, progress=progress
        )
        assert (progress.done, progress.total) == (36, 36)  # 6 × 6 offsets
        if local:
            assert torch.equal(counted.drops, plain.drops)


def test_a_cancelled_occlusion_stops_after_the_batch_it_was_in() -> None:
    model, image = tiny_cnn(), tiny_inputs(1, seed=3)[0]
    stopper = StopAfter(2)
    with pytest.raises(Cancelled):
        occlusion(model, image, (3, 3), (1, 1), torch.zeros(3), batch_size=8, progress=stopper)
    assert (stopper.done, stopper.advances) == (16, 2)  # no batch after the second


def test_smoothgrad_counts_noisy_copies_and_a_cancel_stops_it() -> None:
    model, image = tiny_cnn(), tiny_inputs(1, seed=5)[0]
    options = SmoothGradOptions(samples=10, seed=2, batch_size=4)
    progress = Progress()
    counted = saliency(model, image, None, options, progress)
    assert (progress.done, progress.total) == (10, 10)
    assert torch.equal(counted.gradient, saliency(model, image, None, options).gradient)
    stopper = StopAfter(1)
    with pytest.raises(Cancelled):
        saliency(model, image, None, options, stopper)
    assert (stopper.done, stopper.advances) == (4, 1)


def test_feature_visualization_counts_steps_and_a_cancel_stops_the_ascent() -> None:
    model = tiny_cnn()
    args = (model, "features.0", 1, (3, 8, 8), (0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
    options = FeatureVisOptions(steps=6, jitter=1)
    progress = Progress()
    counted = visualize_channel(*args, options, progress)
    assert (progress.done, progress.total) == (6, 6)
    assert counted.final_activation == visualize_channel(*args, options).final_activation
    stopper = StopAfter(3)
    with pytest.raises(Cancelled):
        visualize_channel(*args, options, stopper)
    assert (stopper.done, stopper.advances) == (3, 3)
