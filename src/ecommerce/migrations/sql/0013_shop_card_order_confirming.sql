-- shop_card_order_confirming: a card order's confirm begun on PostgreSQL in one call
-- (docs/decisions.md 83).
--
-- The moves payments/machine.py `begin` and the card order purpose's `started` make before
-- the gateway is asked: the payment READY -> CONFIRMING with the key the shop is about to
-- confirm and the time it is asked, and the order PAYMENT_PENDING -> PAYMENT_UNKNOWN (from
-- there only the gateway's answer settles it). False, with nothing written, if another
-- request moved the payment first (as `begin`'s False); an order not PAYMENT_PENDING beside
-- a READY payment breaks the machine's invariant and raises `shop:ORDER_NOT_PENDING`
-- (SQLSTATE P0001), which undoes the payment's move too.
--
-- Locks in the order the portable moves take them: the payment, then the order.
-- tests/payments/test_card_paid_function.py confirms one matrix of card orders through this
-- and through the portable moves and compares every row written and every answer.
--
-- A change to this file needs a new migration that applies it and keeps its own copy of
-- the text it applied (migrations are frozen); tests/test_migrations.py checks the newest
-- copy is this very text and the database holds it.
CREATE OR REPLACE FUNCTION shop_card_order_confirming(
    p_payment bigint, p_order bigint, p_key text, p_now timestamp)
RETURNS boolean
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE payments SET status = 'CONFIRMING', payment_key = p_key, attempted_at = p_now
     WHERE id = p_payment AND status = 'READY';
    IF NOT FOUND THEN
        RETURN false;
    END IF;

    UPDATE orders SET status = 'PAYMENT_UNKNOWN'
     WHERE id = p_order AND status = 'PAYMENT_PENDING';
    IF NOT FOUND THEN
        RAISE EXCEPTION 'shop:ORDER_NOT_PENDING';
    END IF;
    RETURN true;
END
$$
