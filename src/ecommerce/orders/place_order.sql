-- shop_place_order: an order's writes on PostgreSQL in one call (docs/decisions.md 30).
--
-- It applies an order that orders/service.py has already priced and checked: the held
-- coupon, the balance and its ledger entry, the order, the stock of every line (guarded by
-- the quoted price) and its movement, the items, the day's sales and the outbox event.
-- The rules stay in Python; each write here is guarded the way orders/repository.py's
-- portable path guards it, and a failed guard raises `shop:<REASON>` (SQLSTATE P0001),
-- which rolls all of it back. tests/orders/test_place_order_function.py runs one matrix
-- of orders through this and through the portable path and compares every row written.
--
-- With an Idempotency-Key (p_key, platform/idempotency.py) the key's row is written here too,
-- right after the order's (before any lock of the order's rows is taken), with its answer:
-- p_answer is the answer's JSON text, beginning {"orderId" then a colon and 0 (12
-- characters, the writer checks), the 0 standing for the new order's id. A
-- key already written (or being written: the insert waits for it) raises shop:KEY_TAKEN and
-- the caller replays that key's answer. So a keyed order is one statement, without BEGIN and
-- COMMIT round trips while a hot product's row lock is held (docs/decisions.md 77).
--
-- A card order (p_method 'CARD', p_status 'PAYMENT_PENDING') takes the same holds, charges
-- only its balance part (p_balance) and has no event nor sale yet (p_event NULL): both are
-- written when the gateway confirms it. It counts as one of its user's unpaid card orders
-- (fewer than p_unpaid_limit before it) and holds its units (with every unpaid order's, at
-- most p_hold_percent of a product's units not sold for good, rounded up).
--
-- orders/writer.py's FunctionWriter calls it. A change to this file needs a new migration
-- that applies it and keeps its own copy of the text it applied (migrations are frozen);
-- the test checks the newest copy is this very text and the database holds it.
CREATE OR REPLACE FUNCTION shop_place_order(
    p_user bigint, p_now timestamp, p_day date,
    p_products bigint[], p_quantities bigint[], p_prices bigint[], p_names text[],
    p_total bigint, p_discount bigint,
    p_user_coupon bigint, p_coupon_id bigint, p_coupon_code text,
    p_event_id text, p_event text,
    p_method text, p_status text, p_balance bigint, p_card bigint,
    p_unpaid_limit integer, p_hold_percent integer,
    p_key_user bigint, p_key text, p_fingerprint text, p_key_at timestamp,
    p_answer_status integer, p_answer text)
RETURNS TABLE (order_id bigint, stocks bigint[])
LANGUAGE plpgsql AS $$
DECLARE
    v_order bigint;
    v_paid bigint := p_balance;  -- what the balance pays (all of it unless by card)
    v_balance bigint;
    v_wallet record;
    v_stock bigint;
    v_stocks bigint[] := '{}';
    v_product record;
BEGIN
    INSERT INTO orders (user_id, status, total_price, discount_amount, paid_amount,
                        coupon_code, user_coupon_id, created_at, paid_at, payment_method,
                        balance_amount, card_amount)
    VALUES (p_user, p_status, p_total, p_discount, p_total - p_discount, p_coupon_code,
            p_user_coupon, p_now, CASE WHEN p_status = 'PAID' THEN p_now END, p_method,
            p_balance, p_card)
    RETURNING id INTO v_order;

    IF p_key IS NOT NULL THEN
        INSERT INTO idempotency_keys (user_id, key, fingerprint, status_code, response_body,
                                      created_at)
        VALUES (p_key_user, p_key, p_fingerprint, p_answer_status,
                '{"orderId":' || v_order || substr(p_answer, 13), p_key_at)
        ON CONFLICT (user_id, key) DO NOTHING;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'shop:KEY_TAKEN';
        END IF;
    END IF;

    -- Locks in the order every order and cancellation takes them: the held coupon, the
    -- wallet, then the products by id (the caller sorts the lines by product id).
    IF p_user_coupon IS NOT NULL THEN
        UPDATE user_coupons SET status = 'USED', used_at = p_now, order_id = v_order
         WHERE id = p_user_coupon AND status = 'AVAILABLE' AND expires_at > p_now;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'shop:COUPON_USED';
        END IF;
        INSERT INTO coupon_events (user_coupon_id, coupon_id, user_id, kind, order_id,
                                   created_at)
        VALUES (p_user_coupon, p_coupon_id, p_user, 'USED', v_order, p_now);
    END IF;

    IF p_unpaid_limit IS NOT NULL THEN  -- by card: one more of the user's unpaid orders
        UPDATE wallets SET balance = balance - v_paid,
                           unpaid_card_orders = unpaid_card_orders + 1, updated_at = p_now
         WHERE user_id = p_user AND balance >= v_paid
           AND unpaid_card_orders < p_unpaid_limit
        RETURNING balance INTO v_balance;
        IF NOT FOUND THEN
            SELECT balance, unpaid_card_orders INTO v_wallet
              FROM wallets WHERE user_id = p_user;
            IF v_wallet.balance < v_paid THEN
                RAISE EXCEPTION 'shop:INSUFFICIENT_BALANCE';
            END IF;
            RAISE EXCEPTION 'shop:UNPAID_ORDERS_LIMIT'
                USING DETAIL = v_wallet.unpaid_card_orders::text;
        END IF;
    ELSIF v_paid > 0 THEN
        UPDATE wallets SET balance = balance - v_paid, updated_at = p_now
         WHERE user_id = p_user AND balance >= v_paid
        RETURNING balance INTO v_balance;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'shop:INSUFFICIENT_BALANCE';
        END IF;
    END IF;
    IF v_paid > 0 THEN  -- no entry of 0: an order paid all by card or by a coupon
        INSERT INTO balance_ledger (user_id, type, amount, balance_after, order_id,
                                    created_at)
        VALUES (p_user, 'PAYMENT', -v_paid, v_balance, v_order, p_now);
    END IF;

    FOR i IN 1 .. cardinality(p_products) LOOP
        UPDATE products
           SET stock = stock - p_quantities[i],
               sold_quantity = sold_quantity + p_quantities[i],
               held = held + CASE WHEN p_hold_percent IS NULL THEN 0 ELSE p_quantities[i] END,
               updated_at = p_now
         WHERE id = p_products[i] AND stock >= p_quantities[i] AND active
           AND price = p_prices[i]
           AND (p_hold_percent IS NULL
                OR (held + p_quantities[i]) * 100 <= p_hold_percent * (stock + held) + 99)
        RETURNING stock INTO v_stock;
        IF NOT FOUND THEN
            SELECT name, price, stock, active INTO v_product
              FROM products WHERE id = p_products[i];
            IF NOT FOUND OR NOT v_product.active THEN
                RAISE EXCEPTION 'shop:PRODUCT_NOT_FOUND' USING DETAIL = p_products[i]::text;
            ELSIF v_product.price <> p_prices[i] THEN
                RAISE EXCEPTION 'shop:PRICE_CHANGED' USING DETAIL = p_products[i]::text;
            ELSIF v_product.stock < p_quantities[i] THEN
                RAISE EXCEPTION 'shop:OUT_OF_STOCK' USING DETAIL = json_build_array(
                    p_products[i], v_product.name, v_product.stock, p_quantities[i])::text;
            END IF;
            RAISE EXCEPTION 'shop:STOCK_ON_HOLD' USING DETAIL = json_build_array(
                p_products[i], v_product.name)::text;
        END IF;
        INSERT INTO stock_movements (product_id, kind, delta, stock_after, order_id,
                                     created_at)
        VALUES (p_products[i], 'SALE', -p_quantities[i], v_stock, v_order, p_now);
        v_stocks := v_stocks || v_stock;
    END LOOP;

    INSERT INTO order_items (order_id, product_id, name, unit_price, quantity, line_total)
    SELECT v_order, line.product, line.name, line.price, line.quantity,
           line.price * line.quantity
      FROM unnest(p_products, p_names, p_prices, p_quantities)
           AS line (product, name, price, quantity);

    IF p_event IS NULL THEN  -- a card order: sold and announced once it is paid
        RETURN QUERY SELECT v_order, v_stocks;
        RETURN;
    END IF;

    INSERT INTO product_sales_daily (product_id, day, quantity)
    SELECT line.product, p_day, line.quantity
      FROM unnest(p_products, p_quantities) AS line (product, quantity)
     ORDER BY line.product
    ON CONFLICT (product_id, day)
    DO UPDATE SET quantity = product_sales_daily.quantity + EXCLUDED.quantity;

    INSERT INTO outbox (event_id, event_type, order_id, payload, next_attempt_at, created_at)
    VALUES (p_event_id, 'order.completed', v_order,
            jsonb_set(p_event::jsonb, '{orderId}', to_jsonb(v_order))::text, p_now, p_now);

    RETURN QUERY SELECT v_order, v_stocks;
END
$$
