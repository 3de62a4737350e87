package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/bulkhead-dev/bulkhead/verify/probe"
)

// runProbe attacks an HTTP API from outside: canaries made as tenant B,
// then read, listed, filtered, changed, deleted and referred to as tenant
// A and with tokens forged from A's. Exit 1 on any leak.
func runProbe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	const synopsis = "probe --base-url URL (--bulkhead | --openapi FILE)\n" +
		"            (--token-a-env VAR | --token-a-file PATH) (--token-b-env VAR | --token-b-file PATH)\n" +
		"            [--format text|json|junit] [--keep] [--timeout 30s]\n" +
		"       bulkhead probe --base-url URL (--bulkhead | --openapi FILE)\n" +
		"            --login-url URL --login-body-a FILE --login-body-b FILE [--login-token-path PATH] …"
	fs := newFlags("probe", synopsis, stderr)
	baseURL := fs.String("base-url", "", "the API's base URL, with any path prefix the OpenAPI document's servers imply")
	doc := fs.String("openapi", "", "an OpenAPI 3 document (JSON or YAML) that describes the API")
	own := fs.Bool("bulkhead", false, "probe bulkhead's own API: /rest/v1/projects, /rest/v1/tasks and /v1/tenants/{id}")
	tokAEnv := fs.String("token-a-env", "", "the environment variable that holds tenant A's bearer token (the attacker)")
	tokAFile := fs.String("token-a-file", "", "a file that holds tenant A's bearer token")
	tokBEnv := fs.String("token-b-env", "", "the environment variable that holds tenant B's bearer token (the victim, who makes the canaries)")
	tokBFile := fs.String("token-b-file", "", "a file that holds tenant B's bearer token")
	loginURL := fs.String("login-url", "", "get both tokens by POSTing a login body to this URL instead")
	loginA := fs.String("login-body-a", "", "a file with tenant A's login body, JSON; ${VAR} is replaced by the environment variable VAR")
	loginB := fs.String("login-body-b", "", "a file with tenant B's login body, JSON; ${VAR} is replaced by the environment variable VAR")
	tokenPath := fs.String("login-token-path", "", "the token's dotted path in the login answer (default: access_token, token, id_token, accessToken or jwt, also under data. or session.)")
	format := fs.String("format", "text", "output: text, json or junit")
	keep := fs.Bool("keep", false, "leave B's canaries in place")
	timeout := fs.Duration("timeout", 30*time.Second, "the time limit of each request")
	if err := parse(fs, args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return usageError{"usage: bulkhead " + synopsis}
	}
	if !slices.Contains(probe.Formats, *format) {
		return usageError{fmt.Sprintf("--format must be text, json or junit, not %q", *format)}
	}
	if u, err := url.Parse(*baseURL); *baseURL == "" || err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return usageError{"--base-url must be an http or https URL"}
	}
	if (*doc == "") == !*own {
		return usageError{"give exactly one of --openapi FILE and --bulkhead"}
	}
	if *timeout < 100*time.Millisecond {
		return usageError{"--timeout must be at least 100ms"}
	}
	client := &http.Client{Timeout: *timeout}

	var api *probe.API
	if *own {
		api = probe.Bulkhead()
	} else {
		b, err := os.ReadFile(*doc)
		if err != nil {
			return usageError{fmt.Sprintf("--openapi: %v", err)}
		}
		if api, err = probe.LoadOpenAPI(ctx, b); err != nil {
			return err
		}
	}

	tokenFlags := *tokAEnv != "" || *tokAFile != "" || *tokBEnv != "" || *tokBFile != ""
	loginFlags := *loginURL != "" || *loginA != "" || *loginB != "" || *tokenPath != ""
	var tokA, tokB string
	switch {
	case tokenFlags && loginFlags:
		return usageError{"give tokens (--token-a-env/--token-a-file, --token-b-env/--token-b-file) or a login (--login-url, --login-body-a, --login-body-b), not both"}
	case loginFlags:
		if *loginURL == "" || *loginA == "" || *loginB == "" {
			return usageError{"a login needs --login-url, --login-body-a and --login-body-b"}
		}
		var err error
		if tokA, err = probeLogin(ctx, client, *loginURL, *loginA, *tokenPath); err != nil {
			return fmt.Errorf("tenant A: %w", err)
		}
		if tokB, err = probeLogin(ctx, client, *loginURL, *loginB, *tokenPath); err != nil {
			return fmt.Errorf("tenant B: %w", err)
		}
	default:
		var err error
		if tokA, err = probeToken("a", *tokAEnv, *tokAFile); err != nil {
			return err
		}
		if tokB, err = probeToken("b", *tokBEnv, *tokBFile); err != nil {
			return err
		}
	}
	if tokA == tokB {
		return usageError{"tenant A's and tenant B's tokens are the same; the probe needs two tenants"}
	}

	rep, err := probe.Run(ctx, probe.Config{BaseURL: *baseURL, API: api, TokenA: tokA, TokenB: tokB,
		Client: client, Keep: *keep, Progress: stderr})
	if rep == nil {
		return err
	}
	// An interrupted run still reports the checks that ran.
	if werr := probe.Write(stdout, rep, *format); werr != nil {
		return werr
	}
	if err != nil {
		return err
	}
	if *format != "text" {
		fmt.Fprintln(stderr, "probe:", rep.Summary())
	}
	if rep.Failed() {
		return findingsError{}
	}
	return nil
}

// probeToken reads one tenant's token from the environment or a file:
// never from a flag's value, which ps shows.
func probeToken(tenant, env, file string) (string, error) {
	switch {
	case env != "" && file != "":
		return "", usageError{fmt.Sprintf("give one of --token-%s-env and --token-%s-file", tenant, tenant)}
	case env != "":
		v := strings.TrimSpace(os.Getenv(env))
		if v == "" {
			return "", usageError{fmt.Sprintf("--token-%s-env: %s is empty or not set", tenant, env)}
		}
		return v, nil
	case file != "":
		b, err := os.ReadFile(file)
		if err != nil {
			return "", usageError{fmt.Sprintf("--token-%s-file: %v", tenant, err)}
		}
		v := strings.TrimSpace(string(b))
		if v == "" {
			return "", usageError{fmt.Sprintf("--token-%s-file: %s is empty", tenant, file)}
		}
		return v, nil
	}
	return "", usageError{fmt.Sprintf("tenant %s's token: give --token-%s-env VAR or --token-%s-file PATH (or log in with --login-url)", strings.ToUpper(tenant), tenant, tenant)}
}

var envRef = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)\}`)

// probeLogin logs in with the body template in file.
func probeLogin(ctx context.Context, client *http.Client, loginURL, file, tokenPath string) (string, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return "", usageError{fmt.Sprintf("login body: %v", err)}
	}
	body, err := expandBody(string(b))
	if err != nil {
		return "", usageError{fmt.Sprintf("login body %s: %v", file, err)}
	}
	return probe.Login(ctx, probe.LoginRequest{URL: loginURL, Body: []byte(body), TokenPath: tokenPath, Client: client})
}

// expandBody replaces each ${VAR} with the environment variable's value,
// escaped for a JSON string, so that passwords can stay out of the file.
// The result must be JSON.
func expandBody(tmpl string) (string, error) {
	var missing []string
	out := envRef.ReplaceAllStringFunc(tmpl, func(m string) string {
		name := envRef.FindStringSubmatch(m)[1]
		v, ok := os.LookupEnv(name)
		if !ok {
			missing = append(missing, name)
			return ""
		}
		j, _ := json.Marshal(v)
		return string(j[1 : len(j)-1])
	})
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variables not set: %s", strings.Join(missing, ", "))
	}
	if !json.Valid([]byte(out)) {
		return "", fmt.Errorf("not JSON once the variables are filled in")
	}
	return out, nil
}
