"""What happened to an order, as the data platform receives it (past tense)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar


@dataclass(frozen=True)
class OrderEvent:
    event_type: ClassVar[str]
    occurred_at: datetime
    order_id: int
    user_id: int
    items: list[tuple[int, int, int]]  # (product_id, quantity, unit_price)
    total_price: int
    discount_amount: int
    paid_amount: int
    coupon_code: str | None
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self, event_id: str) -> dict[str, Any]:
        """The JSON body sent to the data platform (SPEC §4, events)."""
        return {
            "eventId": event_id,
            "eventType": self.event_type,
            "occurredAt": self.occurred_at.isoformat().replace("+00:00", "Z"),
            "orderId": self.order_id,
            "userId": self.user_id,
            "items": [{"productId": p, "quantity": q, "unitPrice": u} for p, q, u in self.items],
            "totalPrice": self.total_price,
            "discountAmount": self.discount_amount,
            "paidAmount": self.paid_amount,
            "couponCode": self.coupon_code,
        }


class OrderCompleted(OrderEvent):
    event_type = "order.completed"


class OrderCancelled(OrderEvent):
    event_type = "order.cancelled"


class OrderPaymentFailed(OrderEvent):
    """A card order's payment was declined or never approved: its holds were given back."""

    event_type = "order.payment_failed"
