from typing import Literal

from ecommerce.platform.schemas import ApiModel, UtcTime

EventStatus = Literal["PENDING", "DELIVERED", "FAILED"]


class EventOut(ApiModel):
    id: int
    event_id: str
    event_type: str
    order_id: int | None
    status: EventStatus
    attempts: int
    next_attempt_at: UtcTime | None
    last_error: str | None
    created_at: UtcTime
    delivered_at: UtcTime | None
    streamed_at: UtcTime | None


class DeliveryStatusOut(ApiModel):
    """Where events go: without a data platform URL, PENDING events have nowhere to go and
    stay pending; `stream`: they are published to the Redis stream the consumers read;
    `relay`: this process runs the consumers."""

    data_platform: bool
    stream: bool
    relay: bool
