package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// LoginRequest logs one tenant's user in to get a bearer token.
type LoginRequest struct {
	URL  string
	Body []byte // sent as is, with Content-Type application/json
	// TokenPath is the dotted path of the token in the JSON answer
	// ("access_token", "session.access_token"). Empty means the first of
	// access_token, token, id_token, accessToken, jwt, at the top level or
	// under data or session.
	TokenPath string
	Client    *http.Client // nil: http.DefaultClient
}

// Login sends the request and returns the token. Errors never hold the
// body sent or the answer, which hold credentials.
func Login(ctx context.Context, l LoginRequest) (string, error) {
	c := l.Client
	if c == nil {
		c = http.DefaultClient
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, l.URL, bytes.NewReader(l.Body))
	if err != nil {
		return "", fmt.Errorf("probe: login: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	res, err := c.Do(req)
	if err != nil {
		return "", fmt.Errorf("probe: login: %w", err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("probe: login: reading the answer: %w", err)
	}
	if res.StatusCode < 200 || res.StatusCode > 299 {
		return "", fmt.Errorf("probe: login: POST %s answered %d", l.URL, res.StatusCode)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return "", fmt.Errorf("probe: login: the answer is not JSON")
	}
	paths := []string{l.TokenPath}
	if l.TokenPath == "" {
		paths = nil
		for _, prefix := range []string{"", "data.", "session."} {
			for _, k := range []string{"access_token", "token", "id_token", "accessToken", "jwt"} {
				paths = append(paths, prefix+k)
			}
		}
	}
	for _, p := range paths {
		if tok := lookup(v, strings.Split(p, ".")); tok != "" {
			return tok, nil
		}
	}
	if l.TokenPath != "" {
		return "", fmt.Errorf("probe: login: no string at %q in the answer", l.TokenPath)
	}
	return "", errors.New("probe: login: no token in the answer (looked for access_token, token, id_token, accessToken, jwt); name it with the token path")
}

func lookup(v any, path []string) string {
	for _, k := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[k]
	}
	s, _ := v.(string)
	return s
}
