-- +goose Up
-- bulkhead_audit.record_change() runs with TimeZone = UTC. The trigger
-- writes the event's time with jsonb, which prints a timestamptz in the
-- session's TimeZone, and TimeZone is a setting any role may change: an app
-- role with a valid context could SET LOCAL TimeZone = 'XXX-100', making an
-- event whose time ends in "+100:00", which is not RFC 3339. The sequencer,
-- which takes the inbox in order, then failed on that event at every run,
-- and no tenant's events were chained again. Pinned here, the time is
-- always written as UTC whatever the session says. (The sequencer also
-- chains an event it cannot read as an unreadable one instead of stopping.)
SET LOCAL ROLE bulkhead_owner;

ALTER FUNCTION bulkhead_audit.record_change() SET TimeZone = 'UTC';

RESET ROLE;

-- +goose Down
SELECT 'forward-only';
