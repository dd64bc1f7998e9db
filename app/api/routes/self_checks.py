"""Self-checks that end each lesson: questions about real layers, answers computed by the app."""

from typing import Annotated

from fastapi import APIRouter, Path
from pydantic import BaseModel, Field

from app.api.deps import RegistryDep
from app.api.errors import ApiError
from app.api.schemas import error_responses
from app.core.lessons.course import LESSON_INDEX
from app.core.self_checks import SelfCheck, checks_for, grade

router = APIRouter(prefix="/api/v1/lessons/{slug}/checks", tags=["lessons"])

Slug = Annotated[str, Path(max_length=64, pattern=r"^[a-z0-9-]+$")]


class CheckOut(BaseModel):
    id: str
    question: dict[str, str] = Field(description="{'en': …, 'zh': …}")
    model_id: str | None = None
    layer: str | None = None


class CheckList(BaseModel):
    lesson: str
    checks: list[CheckOut]


class AnswerIn(BaseModel):
    answer: str = Field(max_length=200, examples=["16×10×10"])


class GradeOut(BaseModel):
    correct: bool
    expected: list[int]
    given: list[int] | None = Field(description="the numbers read from the answer")
    solution: dict[str, str] = Field(description="the worked solution, {'en': …, 'zh': …}")


def _checks(slug: str, registry: RegistryDep) -> list[SelfCheck]:
    if slug not in LESSON_INDEX:
        raise ApiError(404, "lesson_not_found", f"no lesson {slug!r}")
    return checks_for(slug, list(registry))


@router.get("", response_model=CheckList, responses=error_responses(404))
async def list_checks(slug: Slug, registry: RegistryDep) -> CheckList:
    """The lesson's questions (their answers are only given back with a grade)."""
    return CheckList(
        lesson=slug,
        checks=[
            CheckOut(id=c.id, question=c.question.to_json(), model_id=c.model_id, layer=c.layer)
            for c in _checks(slug, registry)
        ],
    )


@router.post("/{check_id}", response_model=GradeOut, responses=error_responses(404, 422))
async def answer_check(
    slug: Slug,
    check_id: Annotated[str, Path(max_length=200)],
    body: AnswerIn,
    registry: RegistryDep,
) -> GradeOut:
    """Check a student's answer; the worked solution comes back either way."""
    check = next((c for c in _checks(slug, registry) if c.id == check_id), None)
    if check is None:
        raise ApiError(404, "check_not_found", f"lesson {slug!r} has no check {check_id!r}")
    result = grade(check, body.answer)
    return GradeOut(
        correct=result.correct,
        expected=list(result.expected),
        given=list(result.given) if result.given is not None else None,
        solution=result.solution.to_json(),
    )
