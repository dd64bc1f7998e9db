"""The seeds' output-size examples and what the formula gives for each."""

from app.core.lessons.sizes import SIZE_EXAMPLES


def test_size_examples_against_the_seeds() -> None:
    got = {example.label.en: (example.fit.output, example.fit.fits) for example in SIZE_EXAMPLES}
    assert got == {
        "32×32, 5×5 filter": (28, True),
        "32×32, 5×5, zero padding 2": (32, True),
        "7×7, 3×3, stride 1": (5, True),
        "7×7, 3×3, stride 2": (3, True),
        "7×7, 3×3, stride 3": (2, False),
        "8×8, 3×3 (edge detection)": (6, True),
        "8×8, 3×3, 'same'": (8, True),
        "8×8, 3×3, stride 2": (3, False),
        "4×4, 2×2 filter": (3, True),
        "4×4, 3×3, zero padding 1": (4, True),
        "7×7 curve filter on 32×32": (26, True),  # the seed says 28: its 5×5 example's size
        "AlexNet conv1: 224, 11×11/4, pad 2": (55, False),  # 55.25, floored
        "ZFNet conv1: 224, 7×7/2, pad 1": (110, False),  # 110.5, floored
    }
