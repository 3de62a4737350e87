package main

import (
	"context"
	"errors"
	"io"
	"regexp"
	"testing"

	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
)

// docs/commands.md "Exit codes": 2 for "a bad flag value ... an incomplete
// --idp-* set". These values are either accepted silently (the server
// starts, the setting does nothing) or refused with exit 1.
// TestServeFlagValues: values of serve's flags that cannot work are usage
// errors (exit 2) before the database is touched, not run-time failures or
// a server that starts and silently ignores them.
func TestServeFlagValues(t *testing.T) {
	pg := pgtest.NewDB(t)
	t.Setenv("BULKHEAD_ALARM_WEBHOOK_SECRET", "alarm-webhook-secret-0123456789")
	var problems []string
	// Refused, but as run-time failures (exit 1), after Setup has migrated
	// the database.
	for name, args := range map[string][]string{
		"--idp-jwks-url over http":  {"--idp-issuer", "https://idp.example.com/", "--idp-jwks-url", "http://idp.example.com/jwks.json", "--idp-audience", "a"},
		"--idp-tenant-claim broken": {"--idp-issuer", "https://idp.example.com/", "--idp-jwks-url", "https://idp.example.com/jwks.json", "--idp-audience", "a", "--idp-tenant-claim", "a..b"},
		"--addr not an address":     {"--addr", "not-an-address"},
	} {
		ctx, cancel := context.WithCancel(context.Background())
		err := run(ctx, append([]string{"serve", "--database-url", pg.AdminURL}, args...), io.Discard, io.Discard)
		cancel()
		if !errors.As(err, new(usageError)) {
			problems = append(problems, name+": exit 1 with "+errString(err)+", want a usage error (exit 2)")
		}
	}
	// Accepted silently: the server starts.
	for name, args := range map[string][]string{
		"--idp-audience without an IdP":     {"--idp-audience", "my-app"},
		"--idp-tenant-claim without an IdP": {"--idp-tenant-claim", "app_metadata.tenant_id"},
		"--cors-origins null":               {"--cors-origins", "null"},
		"--cors-origins with a wildcard":    {"--cors-origins", "https://*.example.com"},
		"--cors-origins with a path":        {"--cors-origins", "https://app.example.com/"},
		"--alarm-webhook without a scheme":  {"--alarm-webhook", "hooks.example.com/alarm"},
		"--checkpoint-webhook over ftp":     {"--checkpoint-webhook", "ftp://hooks.example.com/"},
		"--metrics-addr not an address":     {"--metrics-addr", "9090"},
		"--password-hashing unknown":        {"--password-hashing", "elsewhere"},
		"--shutdown-delay negative":         {"--shutdown-delay", "-1s"},
		"--shutdown-delay past 5m":          {"--shutdown-delay", "6m"},
	} {
		err := run(context.Background(), append([]string{"serve", "--database-url", pg.AdminURL}, args...), io.Discard, io.Discard)
		if !errors.As(err, new(usageError)) {
			problems = append(problems, name+": "+errString(err)+", want a usage error (exit 2)")
		}
	}
	// Good values still start.
	stdout, stderr, stop := start(t, "serve", "--addr", "127.0.0.1:0", "--database-url", pg.AdminURL,
		"--cors-origins", "https://app.example.com, http://localhost:3000")
	re := regexp.MustCompile(`serving on (http://\S+)`)
	waitFor(t, "the server", stderr, func() bool { return re.MatchString(stdout.String()) })
	if err := stop(); err != nil {
		problems = append(problems, "serve with good flags: "+err.Error())
	}
	for _, p := range problems {
		t.Error(p)
	}
}

func errString(err error) string {
	if err == nil {
		return "no error"
	}
	return err.Error()
}
