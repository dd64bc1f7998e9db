"""Models of the presenter-session routes. A view uses the page's own camelCase event fields."""

from pydantic import BaseModel, ConfigDict, Field


class PresenterView(BaseModel):
    """What the teacher is looking at: the detail of the page's `convlens:view` event."""

    model_config = ConfigDict(extra="forbid")

    modelId: str | None = Field(None, max_length=128, pattern=r"^[A-Za-z0-9._-]+$")
    analysisId: str | None = Field(None, pattern=r"^[0-9a-f]{32}$")
    layer: str | None = Field(None, max_length=256)
    channel: int | None = Field(None, ge=0, le=1_000_000)
    y: int | None = Field(None, ge=0, le=1_000_000)
    x: int | None = Field(None, ge=0, le=1_000_000)


class SessionOut(BaseModel):
    session_id: str
    view: PresenterView | None = Field(description="the presenter's latest view, if any")
    events_url: str = Field(description="server-sent events: `view` (JSON) and `end`")
    follow_url: str = Field(description="the page students open to follow")


class NewSessionOut(SessionOut):
    presenter_token: str = Field(
        description="send as `Authorization: Bearer …` to change the view; shown only once"
    )
    view_url: str = Field(description="POST a view here (presenter only)")
    heartbeat_url: str = Field(description="POST here (presenter only) to keep an idle session")
    idle_seconds: int = Field(
        description="the session ends this long after the presenter's last view or heartbeat"
    )
