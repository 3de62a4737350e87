package bulkhead

// Remembered reports whether a rejected token is in a's reject cache, for
// the external tests.
func Remembered(a *Auth, token string) bool { return a.rejected.has(token, a.db.now()) }
