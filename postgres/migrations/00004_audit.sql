-- +goose Up
-- The audit trail: an inbox that triggers and the server append to, and
-- the hash chain one trusted sequencer extends outside tenant transactions
-- (a chain head locked inside them would serialise every tenant).
-- Isolation: no app role has USAGE on bulkhead_audit. Rows reach the inbox
-- only through SECURITY DEFINER trigger functions, stamped from the
-- verified context, never from anything the caller says.
SET LOCAL ROLE bulkhead_owner;

ALTER TABLE bulkhead_control.keys DROP CONSTRAINT keys_purpose_check;
ALTER TABLE bulkhead_control.keys ADD CONSTRAINT keys_purpose_check
    CHECK (purpose IN ('context', 'jwt', 'admin-jwt', 'record', 'audit'));

CREATE TABLE bulkhead_audit.inbox (
    id    bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event jsonb NOT NULL
);

CREATE TABLE bulkhead_audit.events (
    seq        bigint PRIMARY KEY CHECK (seq > 0),
    event_id   uuid NOT NULL UNIQUE,
    at         timestamptz NOT NULL,
    tenant_id  uuid,
    sub        text,
    action     text NOT NULL,
    decision   text NOT NULL,
    visibility text NOT NULL CHECK (visibility IN ('tenant', 'platform')),
    body       text NOT NULL,
    prev_hash  bytea NOT NULL,
    hash       bytea NOT NULL
);
CREATE INDEX events_tenant ON bulkhead_audit.events (tenant_id, seq);
CREATE INDEX events_at ON bulkhead_audit.events (at);

CREATE TABLE bulkhead_audit.checkpoints (
    seq       bigint PRIMARY KEY,
    hash      bytea NOT NULL,
    at        timestamptz NOT NULL,
    kid       text NOT NULL,
    signature text NOT NULL
);

REVOKE ALL ON bulkhead_audit.inbox, bulkhead_audit.events, bulkhead_audit.checkpoints FROM PUBLIC;

-- record_change() audits one statement on a tenant table: one event with
-- the number of rows and their ids, tenant and principal taken from the
-- verified context (a write that reached the table passed WITH CHECK, so
-- the context verified). Statement-level, with transition tables: the
-- verifier runs once per statement, not once per row.
-- +goose StatementBegin
CREATE FUNCTION bulkhead_audit.record_change() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    c   jsonb := bulkhead.context();
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
REVOKE ALL ON FUNCTION bulkhead_audit.record_change() FROM PUBLIC;

RESET ROLE;

-- +goose Down
SELECT 'forward-only';
