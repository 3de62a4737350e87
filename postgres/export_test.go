package postgres

// Terminate exposes the watchdog's termination of one backend to the tests.
var Terminate = (*DB).terminate
