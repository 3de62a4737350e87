-- +goose Up
-- bulkhead_audit.record_change() verifies the context only when the
-- statement changed rows. A statement-level trigger fires for statements
-- that change nothing (an UPDATE or DELETE whose filter matches no row),
-- and such a statement records no event, so verifying its context was
-- work for nothing: one full run of bulkhead.context() per statement.
-- Everything else is as 00004 made it.
SET LOCAL ROLE bulkhead_owner;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION bulkhead_audit.record_change() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    c   jsonb;
    ids jsonb;
    n   bigint;
BEGIN
    IF TG_OP OPERATOR(pg_catalog.=) 'DELETE' THEN
        SELECT pg_catalog.jsonb_agg(o.id), pg_catalog.count(*) INTO ids, n FROM old_rows o;
    ELSE
        SELECT pg_catalog.jsonb_agg(o.id), pg_catalog.count(*) INTO ids, n FROM new_rows o;
    END IF;
    IF n OPERATOR(pg_catalog.=) 0 THEN
        RETURN NULL;
    END IF;
    c := bulkhead.context();
    INSERT INTO bulkhead_audit.inbox (event) VALUES (pg_catalog.jsonb_build_object(
        'event_id', pg_catalog.gen_random_uuid(),
        'at', pg_catalog.clock_timestamp(),
        'request_id', c OPERATOR(pg_catalog.->>) 'rid',
        'tenant_id', c OPERATOR(pg_catalog.->>) 'tenant_id',
        'tenant', c OPERATOR(pg_catalog.->>) 'tenant',
        'sub', c OPERATOR(pg_catalog.->>) 'sub',
        'role', c OPERATOR(pg_catalog.->>) 'role',
        'login_role', session_user::text,
        'action', 'data:' OPERATOR(pg_catalog.||) pg_catalog.initcap(TG_OP),
        'resource', 'brn:bulkhead:data:' OPERATOR(pg_catalog.||)
            COALESCE(c OPERATOR(pg_catalog.->>) 'tenant_id', '-') OPERATOR(pg_catalog.||) ':table/' OPERATOR(pg_catalog.||) TG_TABLE_NAME,
        'decision', 'allow',
        'rows', n,
        'detail', pg_catalog.jsonb_build_object('ids', ids, 'schema', TG_TABLE_SCHEMA),
        'visibility', 'tenant'));
    RETURN NULL;
END
$fn$;
-- +goose StatementEnd

RESET ROLE;

-- +goose Down
SELECT 'forward-only';
