-- +goose Up
-- The control schema: the tenant catalog, users, keys and functions.
-- Isolation: no app role has USAGE on bulkhead_control; only the owner's
-- SECURITY DEFINER functions read it on their behalf.
SET LOCAL ROLE bulkhead_owner;

CREATE TABLE bulkhead_control.tenants (
    id             uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    slug           text NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9-]{1,39}$'),
    name           text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    tier           text NOT NULL CHECK (tier IN ('pool', 'silo')),
    status         text NOT NULL DEFAULT 'active'
                   CHECK (status IN ('active', 'suspended', 'offboarding', 'offboarded')),
    placement      text NOT NULL CHECK (placement = 'pool' OR placement ~ '^t_[0-9a-f]{32}$'),
    schema_version integer NOT NULL DEFAULT 0,
    created_at     timestamptz NOT NULL DEFAULT now(),
    offboarded_at  timestamptz
);
COMMENT ON TABLE bulkhead_control.tenants IS
    'The tenant catalog. Rows are never deleted: an offboarded tenant stays as a tombstone so its slug is never reused.';

CREATE TABLE bulkhead_control.users (
    id            uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    tenant_id     uuid NOT NULL REFERENCES bulkhead_control.tenants (id),
    email         text NOT NULL CHECK (length(email) BETWEEN 3 AND 320),
    password_hash text NOT NULL,
    role          text NOT NULL CHECK (role IN ('admin', 'member')),
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX users_tenant_email ON bulkhead_control.users (tenant_id, lower(email));

-- Keys: one purpose each. A key verifies from created_at; it signs from
-- signing_since; it stops verifying at not_after.
CREATE TABLE bulkhead_control.keys (
    kid           text PRIMARY KEY CHECK (kid ~ '^[A-Za-z0-9_-]{1,32}$'),
    purpose       text NOT NULL CHECK (purpose IN ('context', 'jwt', 'admin-jwt', 'record')),
    secret        bytea NOT NULL CHECK (length(secret) >= 32),
    created_at    timestamptz NOT NULL DEFAULT now(),
    signing_since timestamptz,
    not_after     timestamptz
);

-- Functions: business code that talks to PostgreSQL directly. Each has its
-- own login role and a credential for POST /v1/auth/context.
CREATE TABLE bulkhead_control.functions (
    name       text PRIMARY KEY CHECK (name ~ '^[a-z][a-z0-9_]{1,39}$'),
    login_role text NOT NULL UNIQUE,
    token_hash bytea NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Credentials of the login roles the server itself uses.
CREATE TABLE bulkhead_control.role_credentials (
    role     text PRIMARY KEY,
    password text NOT NULL
);

-- Revoked platform-admin tokens (by jti) until they would expire anyway.
CREATE TABLE bulkhead_control.revoked_tokens (
    jti        text PRIMARY KEY,
    expires_at timestamptz NOT NULL
);

-- Signed records of offboarding: what was deleted and what still exists.
CREATE TABLE bulkhead_control.offboard_records (
    tenant_id  uuid PRIMARY KEY REFERENCES bulkhead_control.tenants (id),
    record     jsonb NOT NULL,
    kid        text NOT NULL,
    signature  text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

REVOKE ALL ON bulkhead_control.tenants, bulkhead_control.users, bulkhead_control.keys,
    bulkhead_control.functions, bulkhead_control.role_credentials, bulkhead_control.revoked_tokens,
    bulkhead_control.offboard_records FROM PUBLIC;

RESET ROLE;

-- +goose Down
SELECT 'forward-only';
