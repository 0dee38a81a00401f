"""Pydantic conventions shared by every domain: camelCase, strict types, UTC times."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, field_validator
from pydantic.alias_generators import to_camel

MAX_ID = 2**63 - 1


def _utc_z(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


UtcTime = Annotated[datetime, PlainSerializer(_utc_z, return_type=str, when_used="json")]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class ApiModel(BaseModel):
    """Response bodies: camelCase on the wire."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


class ApiRequest(BaseModel):
    """Request bodies: camelCase, strict (no "12" for 12, no 1.5 for an integer)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, strict=True, extra="ignore"
    )

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL cannot store NUL in text; refuse it here, naming the field.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("must not contain NUL characters")
        return value


class ErrorBody(ApiModel):
    timestamp: str
    status: int
    error: str
    code: str
    message: str
    path: str
