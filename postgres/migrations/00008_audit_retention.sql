-- +goose Up
-- Signed records of audit retention runs: the chain that remains is
-- verified from the last event a run removed.
SET LOCAL ROLE bulkhead_owner;

CREATE TABLE bulkhead_audit.retention (
    through_seq  bigint PRIMARY KEY,
    through_hash bytea NOT NULL,
    removed      bigint NOT NULL,
    before       timestamptz NOT NULL,
    at           timestamptz NOT NULL,
    kid          text NOT NULL,
    signature    text NOT NULL
);
REVOKE ALL ON bulkhead_audit.retention FROM PUBLIC;

RESET ROLE;

-- +goose Down
SELECT 'forward-only';
