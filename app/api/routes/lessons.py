"""Lessons from the seeds: JSON under /api/v1/lessons and the pages /lessons, /lessons/{slug}.

The pages are rendered from the same dataclasses the JSON serves (``app.core.lessons``); the
interactive panels on them fetch presets and run them through the playground API.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from app.api.errors import not_found
from app.api.routes.pages import missing_page
from app.api.routes.playground import axis_fit_out
from app.api.schemas import error_responses
from app.api.schemas_playground import AxisFitOut
from app.core import playground
from app.core.lessons.course import LESSON_INDEX, LESSONS, Lesson, LessonStep
from app.core.lessons.gallery import NETWORK_INDEX
from app.core.lessons.parameters import COMPARISON_INDEX, COMPARISONS, Comparison
from app.core.lessons.presets import PRESET_INDEX, PRESETS, Preset
from app.core.lessons.sizes import SIZE_EXAMPLES

router = APIRouter(tags=["lessons"])
PREFIX = "/api/v1/lessons"

Bilingual = dict[str, str]
SlugPath = Annotated[str, Path(max_length=64)]


class PresetSummary(BaseModel):
    slug: str
    operation: str
    title: Bilingual
    description: Bilingual
    source: str = Field(description="seed file and section")
    equivalent: Bilingual | None = Field(
        description="set when the seed's figure is only an image: says the example was built"
    )


class HighlightOut(BaseModel):
    channel: int
    y: int
    x: int
    label: Bilingual
    value: float | None = Field(description="the value the playground computes there")


class PresetRefusal(BaseModel):
    code: str
    message: str


class PresetDetail(PresetSummary):
    request: dict[str, Any] = Field(description="body for POST /api/v1/playground/{operation}")
    output_shape: list[int] | None
    highlights: list[HighlightOut]
    refused: PresetRefusal | None = Field(None, description="why the playground refuses it")


class PresetList(BaseModel):
    presets: list[PresetSummary]


class CountOut(BaseModel):
    scheme: Bilingual
    formula: str
    weights: int
    seed_says: str


class ComparisonOut(BaseModel):
    slug: str
    title: Bilingual
    note: Bilingual
    source: str
    counts: list[CountOut]


class ComparisonList(BaseModel):
    comparisons: list[ComparisonOut]


class SizeExampleOut(BaseModel):
    label: Bilingual
    source: str
    seed_says: Bilingual
    fit: AxisFitOut


class SizeList(BaseModel):
    sizes: list[SizeExampleOut]


class LiveLinkOut(BaseModel):
    href: str = Field(description="the analyze page with ?model=&sample=&layer=")
    model: str
    sample: str = Field(description="a bundled sample's file name without extension")
    layer: str = Field(description="the layer the step talks about, as the model card names it")
    instruction: Bilingual


class NetworkLink(BaseModel):
    id: str
    name: str
    href: str


class StepOut(BaseModel):
    title: Bilingual
    body: Bilingual
    presets: list[PresetSummary]
    comparisons: list[ComparisonOut]
    sizes: list[SizeExampleOut]
    networks: list[NetworkLink]
    live: LiveLinkOut | None


class LessonSummary(BaseModel):
    slug: str
    title: Bilingual
    summary: Bilingual
    steps: int


class LessonDetail(BaseModel):
    slug: str
    title: Bilingual
    summary: Bilingual
    steps: list[StepOut]
    previous: str | None
    next: str | None


class LessonList(BaseModel):
    lessons: list[LessonSummary]


def preset_summary(preset: Preset) -> PresetSummary:
    return PresetSummary(
        slug=preset.slug,
        operation=preset.operation,
        title=preset.title.to_json(),
        description=preset.description.to_json(),
        source=preset.source,
        equivalent=None if preset.equivalent is None else preset.equivalent.to_json(),
    )


def preset_detail(preset: Preset) -> PresetDetail:
    """The preset with the numbers the playground gives for it (or why it refuses)."""
    refused, output = None, None
    try:
        output = playground.run(preset.operation, preset.request).output
    except playground.PlaygroundError as error:
        refused = PresetRefusal(code=error.code, message=error.message)
    return PresetDetail(
        **preset_summary(preset).model_dump(),
        request=preset.request,
        output_shape=None if output is None else list(output.shape),
        highlights=[
            HighlightOut(
                channel=h.channel,
                y=h.y,
                x=h.x,
                label=h.label.to_json(),
                value=None if output is None else output[h.channel, h.y, h.x].item(),
            )
            for h in preset.highlights
        ],
        refused=refused,
    )


def comparison_out(comparison: Comparison) -> ComparisonOut:
    return ComparisonOut(
        slug=comparison.slug,
        title=comparison.title.to_json(),
        note=comparison.note.to_json(),
        source=comparison.source,
        counts=[
            CountOut(
                scheme=c.scheme.to_json(),
                formula=c.formula,
                weights=c.weights,
                seed_says=c.seed_says,
            )
            for c in comparison.counts
        ],
    )


def size_examples() -> list[SizeExampleOut]:
    return [
        SizeExampleOut(
            label=e.label.to_json(),
            source=e.source,
            seed_says=e.seed_says.to_json(),
            fit=axis_fit_out(e.fit),
        )
        for e in SIZE_EXAMPLES
    ]


def step_out(step: LessonStep) -> StepOut:
    return StepOut(
        title=step.title.to_json(),
        body=step.body.to_json(),
        presets=[preset_summary(PRESET_INDEX[slug]) for slug in step.presets],
        comparisons=[comparison_out(COMPARISON_INDEX[slug]) for slug in step.comparisons],
        sizes=size_examples() if step.sizes else [],
        networks=[
            NetworkLink(id=n, name=NETWORK_INDEX[n].name, href=f"/gallery/{n}")
            for n in step.networks
        ],
        live=None
        if step.live is None
        else LiveLinkOut(
            href=step.live.href,
            model=step.live.model,
            sample=step.live.sample,
            layer=step.live.layer,
            instruction=step.live.instruction.to_json(),
        ),
    )


def lesson_detail(lesson: Lesson) -> LessonDetail:
    index = LESSONS.index(lesson)
    return LessonDetail(
        slug=lesson.slug,
        title=lesson.title.to_json(),
        summary=lesson.summary.to_json(),
        steps=[step_out(step) for step in lesson.steps],
        previous=LESSONS[index - 1].slug if index > 0 else None,
        next=LESSONS[index + 1].slug if index + 1 < len(LESSONS) else None,
    )


def _lesson(slug: str) -> Lesson:
    lesson = LESSON_INDEX.get(slug)
    if lesson is None:
        raise not_found("lesson", slug)
    return lesson


@router.get(PREFIX, response_model=LessonList)
def list_lessons() -> LessonList:
    """The lessons in teaching order."""
    return LessonList(
        lessons=[
            LessonSummary(
                slug=lesson.slug,
                title=lesson.title.to_json(),
                summary=lesson.summary.to_json(),
                steps=len(lesson.steps),
            )
            for lesson in LESSONS
        ]
    )


@router.get(PREFIX + "/presets", response_model=PresetList)
def list_presets() -> PresetList:
    """Every seed example the playground can run."""
    return PresetList(presets=[preset_summary(preset) for preset in PRESETS])


@router.get(PREFIX + "/presets/{slug}", response_model=PresetDetail, responses=error_responses(404))
def get_preset(slug: SlugPath) -> PresetDetail:
    """One seed example: its playground request and the numbers the playground gives."""
    preset = PRESET_INDEX.get(slug)
    if preset is None:
        raise not_found("preset", slug)
    return preset_detail(preset)


@router.get(PREFIX + "/parameter-counts", response_model=ComparisonList)
def parameter_counts() -> ComparisonList:
    """Fully connected vs. locally connected vs. shared weights, with the seeds' figures."""
    return ComparisonList(comparisons=[comparison_out(c) for c in COMPARISONS])


@router.get(PREFIX + "/output-sizes", response_model=SizeList)
def output_sizes() -> SizeList:
    """The seeds' output-size examples through O = (W − K + 2P)/S + 1."""
    return SizeList(sizes=size_examples())


@router.get(PREFIX + "/{slug}", response_model=LessonDetail, responses=error_responses(404))
def get_lesson(slug: SlugPath) -> LessonDetail:
    """One lesson with its steps, presets, comparisons, networks and live-panel links."""
    return lesson_detail(_lesson(slug))


@router.get("/lessons", response_class=HTMLResponse, include_in_schema=False)
def lessons_page(request: Request) -> HTMLResponse:
    return request.app.state.templates.TemplateResponse(
        request, "lessons/index.html", {"lessons": LESSONS}
    )


@router.get("/lessons/{slug}", response_class=HTMLResponse, include_in_schema=False)
def lesson_page(request: Request, slug: SlugPath) -> HTMLResponse:
    lesson = LESSON_INDEX.get(slug)
    if lesson is None:
        return missing_page(request, "lesson", slug)
    return request.app.state.templates.TemplateResponse(
        request, "lessons/lesson.html", {"lesson": lesson_detail(lesson).model_dump()}
    )
