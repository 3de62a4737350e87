package postgres

// Terminate exposes the watchdog's termination of one backend to the tests.
var Terminate = (*DB).terminate

// EventsQuery exposes FindEvents' query of a page, so that tests can see
// how PostgreSQL runs it.
var EventsQuery = eventsQuery

// PLpgSQLVerifier exposes the statement that restores the PL/pgSQL
// verifier, so that tests can install a copy under another name.
var PLpgSQLVerifier = plpgsqlVerifier
