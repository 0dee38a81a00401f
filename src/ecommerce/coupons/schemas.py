from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, ConfigDict, Field, model_validator

from ecommerce.platform.schemas import (
    ApiModel,
    ApiRequest,
    Id,
    UtcTime,
    document_request,
)

Code = Annotated[str, Field(min_length=3, max_length=40, pattern=r"^[A-Z0-9_-]+$")]
Won = Annotated[int, Field(ge=0, le=100_000_000)]
DiscountType = Literal["FIXED", "PERCENT"]
HeldStatus = Literal["AVAILABLE", "USED", "EXPIRED"]
# Request bodies are strict, but a time arrives as an ISO 8601 string with its offset.
Moment = Annotated[AwareDatetime, Field(strict=False)]


def _coupon_rules(schema: dict[str, Any]) -> None:
    """What `_consistent` enforces, where JSON Schema can say it (not the order of dates,
    nor "in the future")."""
    document_request(schema)
    null = {"type": "null"}
    schema["allOf"] = [
        {"oneOf": [
            {"required": ["expiresAt"],
             "properties": {"expiresAt": {"type": "string"}, "validDays": null}},
            {"required": ["validDays"],
             "properties": {"validDays": {"type": "integer"}, "expiresAt": null}}]},
        {"anyOf": [{"properties": {"discountType": {"const": "FIXED"},
                                   "maxDiscountAmount": null}},
                   {"properties": {"discountType": {"const": "PERCENT"},
                                   "discountValue": {"maximum": 100}}}]},
    ]


class CouponIn(ApiRequest):
    model_config = ConfigDict(json_schema_extra=_coupon_rules)

    code: Code
    name: Annotated[str, Field(min_length=1, max_length=100)]
    discount_type: DiscountType
    discount_value: Annotated[int, Field(ge=1, le=100_000_000)]
    max_discount_amount: Annotated[int, Field(ge=1, le=100_000_000)] | None = None
    min_order_amount: Won = 0
    total_quantity: Annotated[int, Field(ge=1, le=10_000_000)]
    issue_starts_at: Moment | None = None
    issue_ends_at: Moment | None = None
    expires_at: Moment | None = None
    valid_days: Annotated[int, Field(ge=1, le=3650)] | None = None

    @model_validator(mode="after")
    def _consistent(self) -> "CouponIn":
        if self.discount_type == "PERCENT" and self.discount_value > 100:
            raise ValueError("discountValue: a PERCENT discount is 1..100")
        if self.discount_type == "FIXED" and self.max_discount_amount is not None:
            raise ValueError("maxDiscountAmount: only for PERCENT coupons")
        if (self.expires_at is None) == (self.valid_days is None):
            raise ValueError("expiresAt or validDays: give exactly one")
        if (self.issue_starts_at and self.issue_ends_at
                and self.issue_ends_at <= self.issue_starts_at):
            raise ValueError("issueEndsAt: must be after issueStartsAt")
        if self.expires_at and self.issue_starts_at and self.expires_at <= self.issue_starts_at:
            raise ValueError("expiresAt: must be after issueStartsAt")
        return self


class CouponOut(ApiModel):
    code: str
    name: str
    discount_type: DiscountType
    discount_value: int
    max_discount_amount: int | None
    min_order_amount: int
    total_quantity: int
    issued_quantity: int
    remaining_quantity: int
    issue_starts_at: UtcTime
    issue_ends_at: UtcTime | None
    expires_at: UtcTime | None
    valid_days: int | None


class ClaimIn(ApiRequest):
    user_id: Id
    coupon_code: Annotated[str, Field(min_length=1, max_length=40)]


class ClaimOut(ApiModel):
    user_id: int
    coupon_code: str
    status: Literal["ISSUED"] = "ISSUED"
    user_coupon_id: int
    expires_at: UtcTime


class HeldCouponOut(ApiModel):
    user_coupon_id: int
    coupon_code: str
    name: str
    discount_type: DiscountType
    discount_value: int
    max_discount_amount: int | None
    min_order_amount: int
    status: HeldStatus
    issued_at: UtcTime
    expires_at: UtcTime
    used_at: UtcTime | None
    order_id: int | None


__all__ = ["datetime"]
