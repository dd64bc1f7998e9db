"""Fully connected vs. local vs. shared weights: the seeds' counts, computed from layer sizes."""

from app.core.lessons.parameters import (
    COMPARISON_INDEX,
    COMPARISONS,
    fully_connected_weights,
    locally_connected_weights,
    shared_weights,
)


def weights(slug: str) -> list[int]:
    return [count.weights for count in COMPARISON_INDEX[slug].counts]


def test_megapixel_image_10_to_the_12_vs_10_to_the_8_vs_100() -> None:
    assert weights("megapixel") == [10**12, 10**8, 100]
    note = COMPARISON_INDEX["megapixel"].note.en
    assert "4 TB" in note and "400 MB" in note  # 4 bytes per float32; the seed's 400MB is 10^8


def test_seed_000_hundred_kernels_and_seed_002_eight_by_eight() -> None:
    assert weights("argb-100-kernels") == [10**12, 10**6]
    assert weights("eight-by-eight") == [576, 9]


def test_seed_003_product_and_the_real_two_layer_count() -> None:
    assert weights("mlp-32x32") == [1_610_612_736, 3_670_016]


def test_filter_weights() -> None:
    assert weights("filter-weights") == [75, 27, 108]


def test_counting_rules() -> None:
    assert fully_connected_weights(64, 9) == 576
    assert locally_connected_weights(outputs=100 * 100, window=100) == 10**6  # stride-10 grid
    assert shared_weights(3 * 3 * 3, filters=4) == 108


def test_every_count_states_what_the_seed_says() -> None:
    for comparison in COMPARISONS:
        assert comparison.title.zh and comparison.note.zh
        for count in comparison.counts:
            assert count.scheme.en and count.scheme.zh and count.seed_says
