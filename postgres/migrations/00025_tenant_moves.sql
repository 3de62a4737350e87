-- +goose Up
-- Moving a tenant between the pool and a silo (bulkhead tenants move,
-- POST /v1/tenants/{id}/move).
--
--   * status 'moving': while a tenant moves, its contexts do not verify
--     (the verifier accepts only 'active'), so nothing writes to either
--     copy of its data;
--   * move_to: the tier a move is going to, so that a move that stopped
--     half-way (a crash, a cancelled command) is resumed, not guessed at;
--   * contexts_from: contexts issued before it do not verify. A move sets it
--     when the tenant becomes active again, so that a context minted before
--     the move, which carries the old placement, cannot write rows where
--     the tenant no longer lives;
--   * bulkhead.context() checks contexts_from with the status it already
--     reads (one more comparison, no more lookups); everything else is as
--     00016 left it;
--   * bulkhead_maint may INSERT into the pool tables: a move into the pool
--     copies the silo's rows there. It already bypasses row security and
--     may SELECT and DELETE them (offboarding), and no request path can
--     reach it.
SET LOCAL ROLE bulkhead_owner;

ALTER TABLE bulkhead_control.tenants DROP CONSTRAINT tenants_status_check;
ALTER TABLE bulkhead_control.tenants ADD CONSTRAINT tenants_status_check
    CHECK (status IN ('active', 'suspended', 'moving', 'offboarding', 'offboarded'));
ALTER TABLE bulkhead_control.tenants ADD COLUMN move_to text CHECK (move_to IN ('pool', 'silo'));
ALTER TABLE bulkhead_control.tenants ADD COLUMN contexts_from timestamptz;
ALTER TABLE bulkhead_control.tenants ADD CONSTRAINT tenants_moving_has_target
    CHECK ((status = 'moving') = (move_to IS NOT NULL));

GRANT INSERT ON app.projects, app.tasks TO bulkhead_maint;

-- +goose StatementBegin
CREATE OR REPLACE FUNCTION bulkhead.context() RETURNS jsonb
    LANGUAGE plpgsql STABLE SECURITY DEFINER PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $fn$
DECLARE
    tok    text := pg_catalog.current_setting('bulkhead.context', true);
    parts  text[];
    k      record;
    claims jsonb;
    why    text;
    status text;
    after  timestamptz;
BEGIN
    IF tok IS NULL OR tok OPERATOR(pg_catalog.=) '' THEN
        RETURN NULL;
    END IF;
    IF pg_catalog.length(tok) OPERATOR(pg_catalog.>) 4096
       OR tok OPERATOR(pg_catalog.!~) '^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$' THEN
        RAISE LOG 'bulkhead: invalid tenant context (malformed) for role %', session_user;
        RETURN NULL;
    END IF;
    parts := pg_catalog.string_to_array(tok, '.');
    IF pg_catalog.length(parts[2]) OPERATOR(pg_catalog.>) 32 OR pg_catalog.length(parts[4]) OPERATOR(pg_catalog.<>) 43 THEN
        RAISE LOG 'bulkhead: invalid tenant context (malformed) for role %', session_user;
        RETURN NULL;
    END IF;
    SELECT kk.secret, kk.not_after INTO k
      FROM bulkhead_control.keys kk
     WHERE kk.kid OPERATOR(pg_catalog.=) parts[2] AND kk.purpose OPERATOR(pg_catalog.=) 'context';
    IF NOT FOUND THEN
        RAISE LOG 'bulkhead: invalid tenant context (unknown key) for role %', session_user;
        RETURN NULL;
    END IF;
    -- The expected MAC, base64url without padding as in the token, against
    -- the token's MAC text; both through one more HMAC before comparing.
    IF bulkhead_crypto.hmac(pg_catalog.convert_to(pg_catalog.rtrim(pg_catalog.replace(pg_catalog.replace(pg_catalog.encode(
            bulkhead_crypto.hmac(pg_catalog.convert_to(parts[1] OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) parts[2]
                OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) parts[3], 'UTF8'), k.secret, 'sha256'),
            'base64'), '+', '-'), '/', '_'), '='), 'UTF8'), k.secret, 'sha256')
       OPERATOR(pg_catalog.<>) bulkhead_crypto.hmac(pg_catalog.convert_to(parts[4], 'UTF8'), k.secret, 'sha256') THEN
        RAISE LOG 'bulkhead: invalid tenant context (bad signature) for role %', session_user;
        RETURN NULL;
    END IF;
    -- From here on the payload is bulkhead's own: it decodes.
    claims := pg_catalog.convert_from(pg_catalog.decode(
        pg_catalog.replace(pg_catalog.replace(parts[3], '-', '+'), '_', '/')
            OPERATOR(pg_catalog.||) pg_catalog.repeat('=', (4 OPERATOR(pg_catalog.-) (pg_catalog.length(parts[3]) OPERATOR(pg_catalog.%) 4)) OPERATOR(pg_catalog.%) 4),
        'base64'), 'UTF8')::jsonb;
    why := CASE
        WHEN coalesce(pg_catalog.jsonb_typeof(claims OPERATOR(pg_catalog.->) 'exp') OPERATOR(pg_catalog.<>) 'number', true)
          OR coalesce(pg_catalog.jsonb_typeof(claims OPERATOR(pg_catalog.->) 'iat') OPERATOR(pg_catalog.<>) 'number', true)
            THEN 'exp or iat missing or not a number'
        WHEN (claims OPERATOR(pg_catalog.->>) 'exp')::pg_catalog.float8
             OPERATOR(pg_catalog.<=) pg_catalog.date_part('epoch', pg_catalog.statement_timestamp())::pg_catalog.float8 THEN 'expired'
        WHEN (claims OPERATOR(pg_catalog.->>) 'iat')::pg_catalog.float8
             OPERATOR(pg_catalog.>) (pg_catalog.date_part('epoch', pg_catalog.statement_timestamp())::pg_catalog.float8 OPERATOR(pg_catalog.+) 5) THEN 'issued in the future'
        WHEN ((claims OPERATOR(pg_catalog.->>) 'exp')::pg_catalog.float8 OPERATOR(pg_catalog.-) (claims OPERATOR(pg_catalog.->>) 'iat')::pg_catalog.float8)
             OPERATOR(pg_catalog.>) 300 THEN 'lifetime over the maximum'
        WHEN k.not_after IS NOT NULL AND k.not_after OPERATOR(pg_catalog.<=) pg_catalog.statement_timestamp() THEN 'retired key'
        WHEN (claims OPERATOR(pg_catalog.->>) 'aud') IS DISTINCT FROM session_user::text THEN 'audience is another login role'
    END;
    IF why IS NULL THEN
        -- The tenant's status, read once: the check, and the log line on refusal.
        SELECT t.status, t.contexts_from INTO status, after FROM bulkhead_control.tenants t
         WHERE t.id OPERATOR(pg_catalog.=) (claims OPERATOR(pg_catalog.->>) 'tenant_id')::uuid;
        IF status IS NULL OR status OPERATOR(pg_catalog.<>) 'active' THEN
            why := 'inactive';
        ELSIF after IS NOT NULL AND (claims OPERATOR(pg_catalog.->>) 'iat')::pg_catalog.float8
              OPERATOR(pg_catalog.<) pg_catalog.date_part('epoch', after)::pg_catalog.float8 THEN
            why := 'issued before the tenant moved';
        END IF;
    END IF;
    IF why OPERATOR(pg_catalog.=) 'inactive' THEN
        RAISE LOG 'bulkhead: tenant context for a tenant that is not active (%) for role %', coalesce(status, 'absent'), session_user;
        RETURN NULL;
    END IF;
    IF why IS NOT NULL THEN
        RAISE LOG 'bulkhead: invalid tenant context (%) for role %', why, session_user;
        RETURN NULL;
    END IF;
    RETURN claims;
END
$fn$;
-- +goose StatementEnd

RESET ROLE;

-- +goose Down
SELECT 'forward-only';
