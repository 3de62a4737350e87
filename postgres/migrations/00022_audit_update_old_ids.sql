-- +goose Up
-- An UPDATE's audit event names the rows as they were, too. The update
-- trigger saw only the new rows, so an UPDATE that changed a row's id
-- (which the app roles may do) named the new id and not the row it
-- changed. bulkhead_audit.record_update() is the update trigger's own
-- function: it reads both transition tables and adds "old_ids" to the
-- event's detail, the ids the statement moved away from, when there are
-- any. record_change() stays as it was for inserts and deletes (and for a
-- silo's update trigger until `bulkhead migrate` brings the silo to
-- tenant-table version 4, which points its update trigger here, as this
-- migration does for the pool).
SET LOCAL ROLE bulkhead_owner;

-- +goose StatementBegin
CREATE FUNCTION bulkhead_audit.record_update() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET TimeZone = 'UTC'
AS $fn$
DECLARE
    c       jsonb;
    ids     jsonb;
    old_ids jsonb;
    n       bigint;
    detail  jsonb;
BEGIN
    SELECT pg_catalog.jsonb_agg(o.id), pg_catalog.count(*) INTO ids, n FROM new_rows o;
    IF n OPERATOR(pg_catalog.=) 0 THEN
        RETURN NULL;
    END IF;
    SELECT pg_catalog.jsonb_agg(o.id) INTO old_ids FROM old_rows o
     WHERE NOT EXISTS (SELECT 1 FROM new_rows r WHERE r.id OPERATOR(pg_catalog.=) o.id);
    detail := pg_catalog.jsonb_build_object('ids', ids, 'schema', TG_TABLE_SCHEMA);
    IF old_ids IS NOT NULL THEN
        detail := detail OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('old_ids', old_ids);
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
        'action', 'data:Update',
        'resource', 'brn:bulkhead:data:' OPERATOR(pg_catalog.||)
            COALESCE(c OPERATOR(pg_catalog.->>) 'tenant_id', '-') OPERATOR(pg_catalog.||) ':table/' OPERATOR(pg_catalog.||) TG_TABLE_NAME,
        'decision', 'allow',
        'rows', n,
        'detail', detail,
        'visibility', 'tenant'));
    RETURN NULL;
END
$fn$;
-- +goose StatementEnd

REVOKE ALL ON FUNCTION bulkhead_audit.record_update() FROM PUBLIC;

CREATE OR REPLACE TRIGGER audit_update AFTER UPDATE ON app.projects
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bulkhead_audit.record_update();
CREATE OR REPLACE TRIGGER audit_update AFTER UPDATE ON app.tasks
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bulkhead_audit.record_update();

RESET ROLE;

-- +goose Down
SELECT 'forward-only';
