"""The discount rules (SPEC §4): pure integer arithmetic on won."""

from __future__ import annotations


def discount_for(discount_type: str, value: int, max_amount: int | None, subtotal: int) -> int:
    """FIXED: min(value, subtotal). PERCENT: floor(subtotal * value / 100), capped."""
    if subtotal <= 0:
        return 0
    if discount_type == "FIXED":
        return min(value, subtotal)
    amount = subtotal * value // 100
    if max_amount is not None:
        amount = min(amount, max_amount)
    return min(amount, subtotal)
