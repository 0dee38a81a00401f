-- shop_issue_coupons: a batch of claims' writes on PostgreSQL in one call (docs/decisions.md 49).
--
-- coupons/service.py has read the coupon and which of the claimers hold it, and decided
-- who wins (the rules stay in Python). This writes the winners, guarded the way the
-- portable path's statements are: the issued count goes up by the number of winners only
-- if that many are left and the claim window was open for every winner's claim time (else
-- `shop:STALE`, SQLSTATE P0001: another process issued some meanwhile, and the service
-- decides again under the row lock); each winner gets a holder row (unique per coupon and
-- user: a duplicate or unknown user is an integrity error) and its ISSUED ledger entry.
-- One statement, so it is atomic without BEGIN and COMMIT, and the coupon's row is locked
-- only while it runs. Returns each winner's holder row id.
--
-- The repository owns this file; migration 0007 applies it. A change to it needs a new
-- revision that applies it again (the test checks the database holds this very text).
CREATE OR REPLACE FUNCTION shop_issue_coupons(
    p_coupon bigint, p_users bigint[], p_issued timestamp[], p_expires timestamp[])
RETURNS TABLE (user_id bigint, held_id bigint)
LANGUAGE plpgsql AS $$
DECLARE
    v_count integer := cardinality(p_users);
    v_first timestamp := (SELECT min(t) FROM unnest(p_issued) AS t);
    v_last timestamp := (SELECT max(t) FROM unnest(p_issued) AS t);
BEGIN
    UPDATE coupons c SET issued_quantity = c.issued_quantity + v_count
     WHERE c.id = p_coupon AND c.issued_quantity + v_count <= c.total_quantity
       AND c.issue_starts_at <= v_first
       AND (c.issue_ends_at IS NULL OR c.issue_ends_at > v_last)
       AND (c.expires_at IS NULL OR c.expires_at > v_last);
    IF NOT FOUND THEN
        RAISE EXCEPTION 'shop:STALE';
    END IF;
    RETURN QUERY
    WITH held AS (
        INSERT INTO user_coupons (coupon_id, user_id, status, issued_at, expires_at)
        SELECT p_coupon, w.u, 'AVAILABLE', w.i, w.e
          FROM unnest(p_users, p_issued, p_expires) AS w(u, i, e)
        RETURNING user_coupons.id, user_coupons.user_id, user_coupons.issued_at
    ), ledger AS (
        INSERT INTO coupon_events (user_coupon_id, coupon_id, user_id, kind, order_id,
                                   created_at)
        SELECT held.id, p_coupon, held.user_id, 'ISSUED', NULL, held.issued_at FROM held
    )
    SELECT held.user_id, held.id FROM held;
END;
$$;
