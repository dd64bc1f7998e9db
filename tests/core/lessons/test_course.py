"""The lessons reference only presets, comparisons and networks that exist, in both languages."""

from app.core.lessons.course import LESSON_INDEX, LESSONS
from app.core.lessons.gallery import NETWORK_INDEX
from app.core.lessons.parameters import COMPARISON_INDEX
from app.core.lessons.presets import PRESET_INDEX, PRESETS


def test_lessons_follow_the_seeds_order() -> None:
    assert [lesson.slug for lesson in LESSONS] == [
        "why-convolution", "convolution", "stride-and-padding", "channels",
        "relu-and-pooling", "im2col", "architectures",
    ]  # fmt: skip
    assert set(LESSON_INDEX) == {lesson.slug for lesson in LESSONS}


def test_every_reference_resolves_and_every_preset_is_taught() -> None:
    taught = set()
    for lesson in LESSONS:
        assert lesson.title.zh and lesson.summary.zh
        for step in lesson.steps:
            assert step.title.en and step.title.zh and step.body.en and step.body.zh
            assert all(slug in PRESET_INDEX for slug in step.presets)
            assert all(slug in COMPARISON_INDEX for slug in step.comparisons)
            assert all(network in NETWORK_INDEX for network in step.networks)
            if step.live is not None:
                assert step.live.href.startswith("/?model=") and step.live.instruction.zh
            taught.update(step.presets)
    assert taught == {preset.slug for preset in PRESETS}
    networks = {n for lesson in LESSONS for step in lesson.steps for n in step.networks}
    assert networks == set(NETWORK_INDEX)
