-- +goose Up
-- The database-side verifier of signed tenant contexts.
SET LOCAL ROLE bulkhead_owner;

-- bulkhead.context() returns the verified claims of the transaction's
-- signed tenant context, or NULL. It is the only thing row policies trust.
--
-- Every operator is written OPERATOR(pg_catalog.x) so that no operator a
-- caller could define is ever picked. Such operators all share one
-- precedence, so every compound expression is parenthesised.
--
-- Isolation: SECURITY DEFINER so it can read keys the caller cannot; the
-- search_path is pinned with pg_temp last, and every name is qualified
-- anyway. The MAC covers the exact ASCII text, checked against a strict
-- pattern before anything is decoded. Expiry is judged against
-- statement_timestamp(), so a transaction cannot outlive its context. aud
-- must equal session_user (SET ROLE does not change it), so a context taken
-- from one function is useless under another's login role. The tenant must
-- be active, so suspended and offboarded tenants stop at the next statement.
-- +goose StatementBegin
CREATE FUNCTION bulkhead.context() RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    tok    text := NULLIF(pg_catalog.current_setting('bulkhead.context', true), '');
    parts  text[];
    k      record;
    want   bytea;
    got    bytea;
    claims jsonb;
    now_s  numeric;
    status text;
    why    text;
BEGIN
    IF tok IS NULL THEN
        RETURN NULL;
    END IF;
    IF pg_catalog.length(tok) OPERATOR(pg_catalog.>) 4096
       OR tok OPERATOR(pg_catalog.!~) '^v1\.[A-Za-z0-9_-]{1,32}\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{43}$' THEN
        RAISE LOG 'bulkhead: invalid tenant context (malformed) for role %', session_user;
        RETURN NULL;
    END IF;
    parts := pg_catalog.string_to_array(tok, '.');
    SELECT kk.secret, kk.not_after INTO k
      FROM bulkhead_control.keys kk
     WHERE kk.kid OPERATOR(pg_catalog.=) parts[2] AND kk.purpose OPERATOR(pg_catalog.=) 'context';
    IF NOT FOUND THEN
        RAISE LOG 'bulkhead: invalid tenant context (unknown key) for role %', session_user;
        RETURN NULL;
    END IF;
    want := bulkhead_crypto.hmac(
        pg_catalog.convert_to(parts[1] OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) parts[2]
            OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) parts[3], 'UTF8'),
        k.secret, 'sha256');
    got := pg_catalog.decode(pg_catalog.translate(parts[4], '-_', '+/') OPERATOR(pg_catalog.||) '=', 'base64');
    -- Compare MACs of the MACs, so the comparison's timing tells nothing.
    IF bulkhead_crypto.hmac(want, k.secret, 'sha256') OPERATOR(pg_catalog.<>) bulkhead_crypto.hmac(got, k.secret, 'sha256') THEN
        RAISE LOG 'bulkhead: invalid tenant context (bad signature) for role %', session_user;
        RETURN NULL;
    END IF;
    claims := pg_catalog.convert_from(pg_catalog.decode(
        pg_catalog.translate(parts[3], '-_', '+/')
            OPERATOR(pg_catalog.||) pg_catalog.repeat('=', (4 OPERATOR(pg_catalog.-) (pg_catalog.length(parts[3]) OPERATOR(pg_catalog.%) 4)) OPERATOR(pg_catalog.%) 4),
        'base64'), 'UTF8')::jsonb;
    now_s := pg_catalog.date_part('epoch', pg_catalog.statement_timestamp())::numeric;
    IF (claims OPERATOR(pg_catalog.->>) 'exp')::numeric OPERATOR(pg_catalog.<=) now_s THEN
        why := 'expired';
    ELSIF (claims OPERATOR(pg_catalog.->>) 'iat')::numeric OPERATOR(pg_catalog.>) (now_s OPERATOR(pg_catalog.+) 5) THEN
        why := 'issued in the future';
    ELSIF ((claims OPERATOR(pg_catalog.->>) 'exp')::numeric OPERATOR(pg_catalog.-) (claims OPERATOR(pg_catalog.->>) 'iat')::numeric) OPERATOR(pg_catalog.>) 300 THEN
        why := 'lifetime over the maximum';
    ELSIF k.not_after IS NOT NULL AND k.not_after OPERATOR(pg_catalog.<=) pg_catalog.statement_timestamp() THEN
        why := 'retired key';
    ELSIF (claims OPERATOR(pg_catalog.->>) 'aud') IS DISTINCT FROM session_user::text THEN
        why := 'audience is another login role';
    END IF;
    IF why IS NOT NULL THEN
        RAISE LOG 'bulkhead: invalid tenant context (%) for role %', why, session_user;
        RETURN NULL;
    END IF;
    SELECT t.status INTO status FROM bulkhead_control.tenants t
     WHERE t.id OPERATOR(pg_catalog.=) (claims OPERATOR(pg_catalog.->>) 'tenant_id')::uuid;
    IF status IS DISTINCT FROM 'active' THEN
        RAISE LOG 'bulkhead: tenant context for a tenant that is not active (%) for role %', coalesce(status, 'absent'), session_user;
        RETURN NULL;
    END IF;
    RETURN claims;
END
$fn$;
-- +goose StatementEnd

-- The wrappers below are plpgsql, not SQL: a LANGUAGE sql function is
-- parsed and planned again by every statement that calls it (about 100 µs
-- each on the prototype), while plpgsql keeps its plans for the session.
-- They run as the caller (SECURITY INVOKER) and name everything with its
-- schema, operators included.

-- bulkhead.tenant_id() is the verified tenant, or NULL. Policies call it in
-- a sub-select, (SELECT bulkhead.tenant_id()), so it runs once per query.
-- +goose StatementBegin
CREATE FUNCTION bulkhead.tenant_id() RETURNS uuid
    LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $fn$
BEGIN
    RETURN (bulkhead.context() OPERATOR(pg_catalog.->>) 'tenant_id')::pg_catalog.uuid;
END
$fn$;
-- +goose StatementEnd

-- bulkhead.tenant_id_for(cmd) is the verified tenant when the context's
-- scope allows the command, else NULL: a member's context cannot delete
-- what the policy decision did not let it delete.
-- +goose StatementBegin
CREATE FUNCTION bulkhead.tenant_id_for(cmd text) RETURNS uuid
    LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $fn$
DECLARE
    c jsonb := bulkhead.context();
BEGIN
    IF (c OPERATOR(pg_catalog.->) 'scope') OPERATOR(pg_catalog.?) cmd THEN
        RETURN (c OPERATOR(pg_catalog.->>) 'tenant_id')::pg_catalog.uuid;
    END IF;
    RETURN NULL;
END
$fn$;
-- +goose StatementEnd

-- bulkhead.claimed_tenant_id() reads the tenant from the context WITHOUT
-- verifying it. It is only a column default: WITH CHECK verifies the row
-- once per statement, so verification never runs per inserted row. A
-- malformed context gives NULL (and the NOT NULL column refuses the row).
-- +goose StatementBegin
CREATE FUNCTION bulkhead.claimed_tenant_id() RETURNS uuid
    LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $fn$
DECLARE
    p text := pg_catalog.split_part(pg_catalog.current_setting('bulkhead.context', true), '.', 3);
BEGIN
    IF p IS NULL OR p OPERATOR(pg_catalog.=) '' OR pg_catalog.length(p) OPERATOR(pg_catalog.>) 4096
       OR pg_catalog.length(pg_catalog.translate(p, 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-', '')) OPERATOR(pg_catalog.<>) 0 THEN
        RETURN NULL;
    END IF;
    RETURN (pg_catalog.convert_from(pg_catalog.decode(
              pg_catalog.translate(p, '-_', '+/') OPERATOR(pg_catalog.||)
              pg_catalog.repeat('=', (4 OPERATOR(pg_catalog.-) (pg_catalog.length(p) OPERATOR(pg_catalog.%) 4)) OPERATOR(pg_catalog.%) 4),
              'base64'), 'UTF8')::pg_catalog.jsonb OPERATOR(pg_catalog.->>) 'tenant_id')::pg_catalog.uuid;
END
$fn$;
-- +goose StatementEnd

-- auth.jwt() is Supabase-compatible: the same verified claims, so a policy
-- written as in Supabase's guides works unchanged. Without a sub-select it
-- runs per row; `bulkhead lint` says so and shows the fast form.
-- +goose StatementBegin
CREATE FUNCTION auth.jwt() RETURNS jsonb
    LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $fn$
BEGIN
    RETURN bulkhead.context();
END
$fn$;
-- +goose StatementEnd

REVOKE ALL ON FUNCTION bulkhead.context() FROM PUBLIC;
REVOKE ALL ON FUNCTION bulkhead.tenant_id() FROM PUBLIC;
REVOKE ALL ON FUNCTION bulkhead.tenant_id_for(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION bulkhead.claimed_tenant_id() FROM PUBLIC;
REVOKE ALL ON FUNCTION auth.jwt() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION bulkhead.context(), bulkhead.tenant_id(), bulkhead.tenant_id_for(text),
    bulkhead.claimed_tenant_id(), auth.jwt() TO bulkhead_app;

RESET ROLE;

-- +goose Down
SELECT 'forward-only';
