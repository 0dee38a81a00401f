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
-- A card order (p_method 'CARD', p_status 'PAYMENT_PENDING') takes the same holds, charges
-- only its balance part (p_balance) and has no event nor sale yet (p_event NULL): both are
-- written when the gateway confirms it.
--
-- The repository owns this file; migration 0008 applies it. A change to it needs a new
-- revision that applies it again (the test checks the database holds this very text).
CREATE OR REPLACE FUNCTION shop_place_order(
    p_user bigint, p_now timestamp, p_day date,
    p_products bigint[], p_quantities bigint[], p_prices bigint[], p_names text[],
    p_total bigint, p_discount bigint,
    p_user_coupon bigint, p_coupon_id bigint, p_coupon_code text,
    p_event_id text, p_event text,
    p_method text, p_status text, p_balance bigint, p_card bigint)
RETURNS TABLE (order_id bigint, stocks bigint[])
LANGUAGE plpgsql AS $$
DECLARE
    v_order bigint;
    v_paid bigint := p_balance;  -- what the balance pays (all of it unless by card)
    v_balance bigint;
    v_stock bigint;
    v_stocks bigint[] := '{}';
    v_product record;
BEGIN
    INSERT INTO orders (user_id, status, total_price, discount_amount, paid_amount,
                        coupon_code, user_coupon_id, created_at, payment_method,
                        balance_amount, card_amount)
    VALUES (p_user, p_status, p_total, p_discount, p_total - p_discount, p_coupon_code,
            p_user_coupon, p_now, p_method, p_balance, p_card)
    RETURNING id INTO v_order;

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

    IF v_paid > 0 THEN
        UPDATE wallets SET balance = balance - v_paid, updated_at = p_now
         WHERE user_id = p_user AND balance >= v_paid
        RETURNING balance INTO v_balance;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'shop:INSUFFICIENT_BALANCE';
        END IF;
    ELSE  -- a free order still leaves its PAYMENT entry (of 0)
        SELECT balance INTO v_balance FROM wallets WHERE user_id = p_user;
    END IF;
    INSERT INTO balance_ledger (user_id, type, amount, balance_after, order_id, created_at)
    VALUES (p_user, 'PAYMENT', -v_paid, v_balance, v_order, p_now);

    FOR i IN 1 .. cardinality(p_products) LOOP
        UPDATE products
           SET stock = stock - p_quantities[i],
               sold_quantity = sold_quantity + p_quantities[i], updated_at = p_now
         WHERE id = p_products[i] AND stock >= p_quantities[i] AND active
           AND price = p_prices[i]
        RETURNING stock INTO v_stock;
        IF NOT FOUND THEN
            SELECT name, price, stock, active INTO v_product
              FROM products WHERE id = p_products[i];
            IF NOT FOUND OR NOT v_product.active THEN
                RAISE EXCEPTION 'shop:PRODUCT_NOT_FOUND' USING DETAIL = p_products[i]::text;
            ELSIF v_product.price <> p_prices[i] THEN
                RAISE EXCEPTION 'shop:PRICE_CHANGED' USING DETAIL = p_products[i]::text;
            END IF;
            RAISE EXCEPTION 'shop:OUT_OF_STOCK' USING DETAIL = json_build_array(
                p_products[i], v_product.name, v_product.stock, p_quantities[i])::text;
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

    INSERT INTO outbox (event_id, event_type, order_id, payload, status, attempts,
                        next_attempt_at, created_at)
    VALUES (p_event_id, 'order.completed', v_order,
            jsonb_set(p_event::jsonb, '{orderId}', to_jsonb(v_order))::text,
            'PENDING', 0, p_now, p_now);

    RETURN QUERY SELECT v_order, v_stocks;
END
$$
