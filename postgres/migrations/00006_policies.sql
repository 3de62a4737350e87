-- +goose Up
-- Policies: each tenant has a plan (the tier template that bounds it) and
-- the policy documents its admins attached.
SET LOCAL ROLE bulkhead_owner;

ALTER TABLE bulkhead_control.tenants
    ADD COLUMN plan text NOT NULL DEFAULT 'basic' CHECK (plan IN ('basic', 'premium'));

CREATE TABLE bulkhead_control.policies (
    tenant_id  uuid NOT NULL REFERENCES bulkhead_control.tenants (id),
    name       text NOT NULL CHECK (name ~ '^[A-Za-z0-9_-]{1,64}$'),
    document   text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, name)
);
REVOKE ALL ON bulkhead_control.policies FROM PUBLIC;

RESET ROLE;

-- +goose Down
SELECT 'forward-only';
