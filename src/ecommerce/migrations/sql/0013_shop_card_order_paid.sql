-- shop_card_order_paid: a card order's confirmed approval applied on PostgreSQL in one call
-- (docs/decisions.md 83).
--
-- It makes the moves the payment machine and the card order purpose make when the gateway
-- approved the key the shop confirmed with, for the amount to be paid, and nothing else is
-- to be done (payments/machine.py `plain_approval`): the payment DONE with its key and
-- approval time, the order PAID, one unpaid card order fewer on the wallet, each line's
-- units sold for good rather than held, the day's sales and `order.completed`. The rules
-- stay in Python (the caller has checked the approval and built the event); each write is
-- guarded as payments/repository.py's and orders/service.py's portable moves guard it, and
-- a failed guard raises `shop:<REASON>` (SQLSTATE P0001), which undoes all of it: the
-- caller then settles the payment the portable way, which decides what else is to happen
-- (a payment another request moved first, an order that no longer holds).
--
-- Locks in the order the portable moves take them: the payment, the order, the wallet, the
-- products by id (the caller sorts the lines), the day's sales by product id.
-- tests/payments/test_card_paid_function.py confirms one matrix of card orders through
-- this and through the portable moves and compares every row written and every answer.
--
-- A change to this file needs a new migration that applies it and keeps its own copy of
-- the text it applied (migrations are frozen); tests/test_migrations.py checks the newest
-- copy is this very text and the database holds it.
CREATE OR REPLACE FUNCTION shop_card_order_paid(
    p_payment bigint, p_order bigint, p_user bigint, p_key text, p_approved_at timestamp,
    p_now timestamp, p_day date, p_products bigint[], p_quantities bigint[],
    p_event_id text, p_event text)
RETURNS void
LANGUAGE plpgsql AS $$
BEGIN
    UPDATE payments SET status = 'DONE', payment_key = p_key, approved_at = p_approved_at
     WHERE id = p_payment AND (status = 'CONFIRMING' OR status = 'READY');
    IF NOT FOUND THEN
        RAISE EXCEPTION 'shop:PAYMENT_MOVED';
    END IF;

    UPDATE orders SET status = 'PAID', paid_at = p_now
     WHERE id = p_order AND (status = 'PAYMENT_PENDING' OR status = 'PAYMENT_UNKNOWN');
    IF NOT FOUND THEN
        RAISE EXCEPTION 'shop:ORDER_NOT_HOLDING';
    END IF;

    UPDATE wallets SET unpaid_card_orders = unpaid_card_orders - 1, updated_at = p_now
     WHERE user_id = p_user;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'shop:USER_NOT_FOUND';
    END IF;

    FOR i IN 1 .. cardinality(p_products) LOOP
        UPDATE products SET held = held - p_quantities[i], updated_at = p_now
         WHERE id = p_products[i];
        IF NOT FOUND THEN
            RAISE EXCEPTION 'shop:PRODUCT_NOT_FOUND' USING DETAIL = p_products[i]::text;
        END IF;
    END LOOP;

    INSERT INTO product_sales_daily (product_id, day, quantity)
    SELECT line.product, p_day, line.quantity
      FROM unnest(p_products, p_quantities) AS line (product, quantity)
     ORDER BY line.product
    ON CONFLICT (product_id, day)
    DO UPDATE SET quantity = product_sales_daily.quantity + EXCLUDED.quantity;

    INSERT INTO outbox (event_id, event_type, order_id, payload, next_attempt_at, created_at)
    VALUES (p_event_id, 'order.completed', p_order, p_event, p_now, p_now);
END
$$
