package postgres

import (
	"context"
	"io/fs"
)

// Terminate exposes the watchdog's termination of one backend to the tests.
var Terminate = (*DB).terminate

// EventsQuery exposes FindEvents' query of a page, so that tests can see
// how PostgreSQL runs it.
var EventsQuery = eventsQuery

// PLpgSQLVerifier exposes the statement that restores the PL/pgSQL
// verifier, so that tests can install a copy under another name.
var PLpgSQLVerifier = plpgsqlVerifier

// SetupLockKey is the advisory lock Setup takes.
const SetupLockKey = setupLockKey

// SetupWithMigrations is Setup with these SQL migrations instead of the
// embedded ones (those of a later release).
func SetupWithMigrations(ctx context.Context, adminURL string, migrations fs.FS) (*SetupReport, error) {
	return SetupWith(ctx, adminURL, SetupOptions{migrations: migrations})
}
