-- +goose Up
-- A tenant reads its audit trail through an index of the events it may
-- see, and never visits the ones it may not. events_tenant holds every
-- event of a tenant, including those visible to platform administrators
-- only, such as the cross-tenant probe findings recorded under the
-- prober's own tenant id: a tenant's read through it filtered them out
-- one by one, so each finding made the prober's later reads a little
-- slower, and timing them told it whether ids it had asked for exist in
-- another tenant. FindEvents spells the visibility condition out for a
-- tenant's read, so this index's predicate always matches it.
SET LOCAL ROLE bulkhead_owner;

CREATE INDEX events_tenant_visible ON bulkhead_audit.events (tenant_id, seq) WHERE visibility = 'tenant';

RESET ROLE;

-- +goose Down
SELECT 'forward-only';
