package main

import (
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/audit"
)

func TestAlarmRules(t *testing.T) {
	write := func(body string) string {
		p := filepath.Join(t.TempDir(), "alarms.json")
		if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	all := audit.Rules{DenialLimit: 20, DenialWindow: time.Minute, Probe: true, RowSecurity: true, InvalidContext: true}
	for _, tt := range []struct {
		name string
		file string // "" means no file: the flags' 7 in 10s
		want audit.Rules
		err  string
	}{
		{"flags", "", audit.Rules{DenialLimit: 7, DenialWindow: 10 * time.Second, Probe: true, RowSecurity: true, InvalidContext: true}, ""},
		{"empty file keeps the defaults, not the flags", write(`{}`), all, ""},
		{"every rule", write(`{"denials":{"limit":5,"window":"30s"},"cross_tenant_probe":false,"row_security_violation":true,"invalid_context":false,"quiet":"2m"}`),
			audit.Rules{DenialLimit: 5, DenialWindow: 30 * time.Second, RowSecurity: true, Quiet: 2 * time.Minute}, ""},
		{"bursts off", write(`{"denials":{"limit":0}}`), audit.Rules{DenialWindow: time.Minute, Probe: true, RowSecurity: true, InvalidContext: true}, ""},
		{"unknown rule", write(`{"probes":true}`), audit.Rules{}, `unknown field "probes"`},
		{"unknown nested field", write(`{"denials":{"limt":3}}`), audit.Rules{}, `unknown field "limt"`},
		{"bad window", write(`{"denials":{"window":"soon"}}`), audit.Rules{}, `"soon" is not a duration`},
		{"negative limit", write(`{"denials":{"limit":-1}}`), audit.Rules{}, "0 (off) or more"},
		{"zero quiet", write(`{"quiet":"0s"}`), audit.Rules{}, "positive duration"},
		{"not JSON", write(`denials: 5`), audit.Rules{}, "--alarm-rules"},
		{"missing file", filepath.Join(t.TempDir(), "nope.json"), audit.Rules{}, "no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := alarmRules(tt.file, 7, 10*time.Second)
			if tt.err != "" {
				if !errors.As(err, new(usageError)) || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("alarmRules = %v, want a usage error mentioning %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("alarmRules = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestAlarmRulesReplaceFlags(t *testing.T) {
	rules := filepath.Join(t.TempDir(), "a.json")
	if err := os.WriteFile(rules, []byte(`{}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		args []string
		ok   bool
	}{
		{[]string{"--alarm-rules", rules}, true},
		{[]string{"--alarm-rules", filepath.Join(t.TempDir(), "missing.json")}, false},
		{[]string{"--alarm-denials", "3"}, true},
		{[]string{"--alarm-denials", "-3"}, false},
		{[]string{"--alarm-rules", "a.json", "--alarm-denials", "3"}, false},
		{[]string{"--alarm-rules", "a.json", "--alarm-window", "5s"}, false},
		{[]string{"--anonymous-denials", "100"}, true},
		{[]string{"--anonymous-denials", "0"}, false},
		{[]string{"--anonymous-denials", "-1"}, false},
		{[]string{"--anonymous-denials", "1000001"}, false},
		{[]string{"--anonymous-denials-total", "500"}, true},
		{[]string{"--anonymous-denials-total", "0"}, false},
		{[]string{"--password-checks", "50"}, true},
		{[]string{"--password-checks", "0"}, false},
		{[]string{"--password-checks", "1000001"}, false},
		{[]string{"--failed-logins", "5"}, true},
		{[]string{"--failed-logins", "0"}, false},
		{[]string{"--watchdog-max-statement", "90s"}, true},
		{[]string{"--watchdog-max-statement", "500ms"}, false},
		{[]string{"--watchdog-max-statement", "-5m"}, false},
		{[]string{"--watchdog-max-idle-in-transaction", "2m"}, true},
		{[]string{"--watchdog-max-idle-in-transaction", "0s"}, false},
		{[]string{"--watchdog-max-idle-in-transaction", "999ms"}, false},
		{[]string{"--trusted-proxies", "10.0.0.0/8, 192.0.2.7,2001:db8::/32"}, true},
		{[]string{"--trusted-proxies", "10.0.0.0/33"}, false},
		{[]string{"--trusted-proxies", "proxy.internal"}, false},
	} {
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		var o serveOptions
		o.register(fs)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		if err := o.checkFlags(fs); (err == nil) != tt.ok {
			t.Errorf("%v: checkFlags = %v, want ok=%v", tt.args, err, tt.ok)
		}
	}
}

func TestParseProxies(t *testing.T) {
	got, err := parseProxies(" 10.1.2.3/8, 192.0.2.7 ,::ffff:198.51.100.4,2001:db8::1,,")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "198.51.100.4/32", "2001:db8::1/128"}
	if len(got) != len(want) {
		t.Fatalf("parseProxies = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Fatalf("parseProxies = %v, want %v", got, want)
		}
	}
	if p, err := parseProxies(""); err != nil || p != nil {
		t.Fatalf("empty: %v, %v; want none", p, err)
	}
}
