"""Pydantic conventions shared by every domain: camelCase, strict types, UTC times."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Path
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    field_validator,
)
from pydantic.alias_generators import to_camel

# The largest id the API takes: 2**53 - 1, the largest integer a JSON number keeps exactly
# in every client (a JavaScript number, the float FastAPI writes OpenAPI bounds as).
MAX_ID = 2**53 - 1
NO_NUL = r"^[^\x00]*$"


def _utc_z(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


_INTEGER_TEXT = re.compile(r"^-?[0-9]{1,30}(\.0+)?$")


def _integer_text(value: Any) -> Any:
    # A query or path value is text: lax pydantic would read " 5 ", "+5" or "5_000" as
    # integers, where the OpenAPI `integer` means digits (a whole number written 130.0,
    # as JSON Schema counts it, included).
    if isinstance(value, str) and not _INTEGER_TEXT.match(value):
        raise ValueError("must be a whole number written in digits")
    return value


# For integers in a query or a path: `Annotated[int, Query(...), IntText]`.
IntText = BeforeValidator(_integer_text)

# Positive ids in a path, by the name the path gives them.
IdPath = Annotated[int, Path(alias="id", ge=1, le=MAX_ID), IntText]
UserIdPath = Annotated[int, Path(alias="userId", ge=1, le=MAX_ID), IntText]
OrderIdPath = Annotated[int, Path(alias="orderId", ge=1, le=MAX_ID), IntText]

UtcTime = Annotated[datetime, PlainSerializer(_utc_z, return_type=str, when_used="json")]
Id = Annotated[int, Field(ge=1, le=MAX_ID)]


class ApiModel(BaseModel):
    """Response bodies: camelCase on the wire."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, from_attributes=True)


def document_request(schema: dict[str, Any]) -> None:
    """A request body's JSON schema says what its validators enforce: no NUL in any text
    (a `pattern` on every string that has none)."""
    for prop in schema.get("properties", {}).values():
        for variant in (prop, *prop.get("anyOf", ())):
            if (variant.get("type") == "string" and not
                    {"pattern", "format", "enum", "const"} & variant.keys()):
                variant["pattern"] = NO_NUL


def _drop_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def omittable(**constraints: Any) -> Any:
    """A field that may be left out but, when given, may not be null: its schema has the
    field's own type, without `null` and without a default."""
    return Field(default=None, json_schema_extra=_drop_default, **constraints)


class ApiRequest(BaseModel):
    """Request bodies: camelCase, strict (no "12" for 12, no 1.5 for an integer; a whole
    number written as 12.0 is 12, as JSON Schema's `integer` says)."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, strict=True, extra="ignore",
        json_schema_extra=document_request,
    )

    @field_validator("*", mode="before")
    @classmethod
    def _whole_numbers(cls, value: Any) -> Any:
        if type(value) is float and value.is_integer():
            return int(value)
        return value

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
