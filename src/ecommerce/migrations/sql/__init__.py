"""The PostgreSQL functions as each migration applied them: `<revision>_<function>.sql`,
frozen once that revision is released (a migrated database must hold what its revision
applied, whatever the code says later). The live code is beside the repository that calls
it (orders/place_order.sql, orders/card_*.sql, coupons/issue_coupons.sql); a change to
it is a new revision with a new copy here, and tests/test_migrations.py checks the newest
copies equal the live files."""

from __future__ import annotations

from pathlib import Path

FOLDER = Path(__file__).parent


def applied(revision: str, function: str) -> str:
    """The SQL `revision` applied for `function`."""
    return (FOLDER / f"{revision}_{function}.sql").read_text(encoding="utf-8")


def signature(revision: str, function: str) -> str:
    """`function(argument types)` of that copy, for DROP FUNCTION."""
    return SIGNATURES[(revision, function)]


SIGNATURES = {
    ("0006", "shop_place_order"): "shop_place_order(bigint, timestamp, date, bigint[], "
    "bigint[], bigint[], text[], bigint, bigint, bigint, bigint, text, text, text)",
    ("0008", "shop_place_order"): "shop_place_order(bigint, timestamp, date, bigint[], "
    "bigint[], bigint[], text[], bigint, bigint, bigint, bigint, text, text, text, text, "
    "text, bigint, bigint)",
    ("0011", "shop_place_order"): "shop_place_order(bigint, timestamp, date, bigint[], "
    "bigint[], bigint[], text[], bigint, bigint, bigint, bigint, text, text, text, text, "
    "text, bigint, bigint, integer, integer)",
}
SIGNATURES[("0012", "shop_place_order")] = SIGNATURES[("0011", "shop_place_order")].replace(
    "integer, integer)", "integer, integer, bigint, text, text, timestamp, integer, text)")
SIGNATURES[("0010", "shop_place_order")] = SIGNATURES[("0008", "shop_place_order")]
SIGNATURES[("0013", "shop_card_order_paid")] = (
    "shop_card_order_paid(bigint, bigint, bigint, text, timestamp, timestamp, date, bigint[], "
    "bigint[], text, text)")
SIGNATURES[("0013", "shop_card_order_confirming")] = (
    "shop_card_order_confirming(bigint, bigint, text, timestamp)")
