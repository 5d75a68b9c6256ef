from __future__ import annotations

from typing import Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class TutorEventIn(BaseModel):
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True)

    event_id: str = Field(min_length=1, max_length=64)
    tutor_id: str = Field(min_length=1, max_length=64)
    event_type: str = Field(min_length=1, max_length=40)  # login, reschedule_request, availability_change, ...
    event_timestamp: AwareDatetime
    metadata: dict[str, Any] = Field(default_factory=dict)
