package identity

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
)

// ExtractBearer returns the token of the request's one "Authorization:
// Bearer <token>" header. The scheme is matched without regard to case; the
// token must be at most [MaxTokenLen] bytes of the RFC 6750 b64token
// alphabet (letters, digits, "-._~+/", then any "=" padding).
//
// It returns [ErrMissingToken] when there is no Authorization header, and
// [ErrInvalidToken] for several headers, another scheme or a malformed
// token.
func ExtractBearer(h http.Header) (string, error) {
	const op = "identity.ExtractBearer"
	// Count every spelling of the name: a Header built by hand need not be
	// canonical, and two credentials must never be resolved by picking one.
	var vals []string
	for name, vs := range h {
		if strings.EqualFold(name, "Authorization") {
			vals = append(vals, vs...)
		}
	}
	switch len(vals) {
	case 0:
		return "", fail(ErrMissingToken, op, errors.New("no Authorization header"))
	case 1:
	default:
		return "", invalid(op, fmt.Errorf("%d Authorization headers", len(vals)))
	}
	scheme, token, ok := strings.Cut(vals[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", invalid(op, errors.New("authorization scheme is not Bearer"))
	}
	token = strings.TrimLeft(token, " ")
	if token == "" || len(token) > MaxTokenLen {
		return "", invalid(op, fmt.Errorf("bearer token of %d bytes", len(token)))
	}
	if !isB64Token(token) {
		return "", invalid(op, errors.New("bearer token has characters outside b64token"))
	}
	return token, nil
}

// isB64Token reports whether s matches RFC 6750's
// 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"=".
func isB64Token(s string) bool {
	body := strings.TrimRight(s, "=")
	if body == "" {
		return false
	}
	for i := 0; i < len(body); i++ {
		c := body[i]
		if !isBase64URL(c) && c != '.' && c != '~' && c != '+' && c != '/' {
			return false
		}
	}
	return true
}
