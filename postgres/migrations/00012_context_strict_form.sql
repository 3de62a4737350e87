-- +goose Up
-- bulkhead.context() checks the strict token form with its regular
-- expression again, before anything else is done with the token, as the
-- design asks. 00010 had replaced it with a shape check (four parts,
-- version, MAC length), which was enough for safety there (no byte of the
-- token is decoded before its MAC holds) but looser than the strict form;
-- the regular expression costs about 10 µs a statement (pgbench, one
-- client). Everything else is as 00010 left it.
SET LOCAL ROLE bulkhead_owner;

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
BEGIN
    IF tok IS NULL OR tok OPERATOR(pg_catalog.=) '' THEN
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
    -- The expected MAC, base64url without padding as in the token, against
    -- the token's MAC text; both through one more HMAC before comparing.
    IF bulkhead_crypto.hmac(pg_catalog.convert_to(pg_catalog.rtrim(pg_catalog.translate(pg_catalog.encode(
            bulkhead_crypto.hmac(pg_catalog.convert_to(parts[1] OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) parts[2]
                OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||) parts[3], 'UTF8'), k.secret, 'sha256'),
            'base64'), '+/', '-_'), '='), 'UTF8'), k.secret, 'sha256')
       OPERATOR(pg_catalog.<>) bulkhead_crypto.hmac(pg_catalog.convert_to(parts[4], 'UTF8'), k.secret, 'sha256') THEN
        RAISE LOG 'bulkhead: invalid tenant context (bad signature) for role %', session_user;
        RETURN NULL;
    END IF;
    -- From here on the payload is bulkhead's own: it decodes.
    claims := pg_catalog.convert_from(pg_catalog.decode(
        pg_catalog.translate(parts[3], '-_', '+/')
            OPERATOR(pg_catalog.||) pg_catalog.repeat('=', (4 OPERATOR(pg_catalog.-) (pg_catalog.length(parts[3]) OPERATOR(pg_catalog.%) 4)) OPERATOR(pg_catalog.%) 4),
        'base64'), 'UTF8')::jsonb;
    why := CASE
        WHEN (claims OPERATOR(pg_catalog.->>) 'exp')::numeric
             OPERATOR(pg_catalog.<=) pg_catalog.date_part('epoch', pg_catalog.statement_timestamp())::numeric THEN 'expired'
        WHEN (claims OPERATOR(pg_catalog.->>) 'iat')::numeric
             OPERATOR(pg_catalog.>) (pg_catalog.date_part('epoch', pg_catalog.statement_timestamp())::numeric OPERATOR(pg_catalog.+) 5) THEN 'issued in the future'
        WHEN ((claims OPERATOR(pg_catalog.->>) 'exp')::numeric OPERATOR(pg_catalog.-) (claims OPERATOR(pg_catalog.->>) 'iat')::numeric)
             OPERATOR(pg_catalog.>) 300 THEN 'lifetime over the maximum'
        WHEN k.not_after IS NOT NULL AND k.not_after OPERATOR(pg_catalog.<=) pg_catalog.statement_timestamp() THEN 'retired key'
        WHEN (claims OPERATOR(pg_catalog.->>) 'aud') IS DISTINCT FROM session_user::text THEN 'audience is another login role'
        WHEN NOT EXISTS (SELECT FROM bulkhead_control.tenants t
                          WHERE t.id OPERATOR(pg_catalog.=) (claims OPERATOR(pg_catalog.->>) 'tenant_id')::uuid
                            AND t.status OPERATOR(pg_catalog.=) 'active') THEN 'inactive'
    END;
    IF why OPERATOR(pg_catalog.=) 'inactive' THEN
        -- Only on refusal: which status, for the log and the alarm.
        SELECT t.status INTO status FROM bulkhead_control.tenants t
         WHERE t.id OPERATOR(pg_catalog.=) (claims OPERATOR(pg_catalog.->>) 'tenant_id')::uuid;
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
