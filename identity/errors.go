package identity

import (
	"context"
	"errors"

	"github.com/golang-jwt/jwt/v5"

	"github.com/bulkhead-dev/bulkhead/fault"
)

// The errors of this package. Each is a sentinel: errors returned carry the
// same Kind, Code and Message, with the cause attached for the logs, so
// errors.Is matches them.
var (
	// ErrInvalidToken is every failure of [Verifier.Verify] and of
	// [ExtractBearer] other than a missing header. The message never says
	// which check failed; the cause in Err does.
	ErrInvalidToken = fault.E(fault.Unauthenticated, "invalid_token",
		"The access token is invalid, expired or not trusted.")

	// ErrMissingToken is returned by [ExtractBearer] when the request has no
	// Authorization header.
	ErrMissingToken = fault.E(fault.Unauthenticated, "missing_token",
		"The request has no bearer token.")

	// ErrInvalidPassword is returned for a password that is empty or longer
	// than [MaxPasswordLen] bytes.
	ErrInvalidPassword = fault.E(fault.Invalid, "invalid_password",
		"A password must be 1 to 1024 bytes long.")

	// ErrInvalidHash is returned for a stored password hash that is not a
	// well-formed argon2id PHC string within this package's limits.
	ErrInvalidHash = fault.E(fault.Internal, "invalid_password_hash",
		"A stored password hash is malformed.")

	// ErrInvalidClaims is returned by [Issuer.Issue] for claims it refuses to
	// sign.
	ErrInvalidClaims = fault.E(fault.Invalid, "invalid_claims",
		"The token claims are incomplete or invalid.")

	// ErrIssuerConfig is returned by [Issuer.Issue] and [Issuer.JWKS] when the
	// issuer itself is misconfigured (no key, a retired key, a bad lifetime).
	ErrIssuerConfig = fault.E(fault.Internal, "issuer_misconfigured",
		"The token issuer is misconfigured.")

	// ErrVerifierConfig is returned by [Verifier.Verify] and
	// [Verifier.Validate] when the verifier's trusts are misconfigured.
	ErrVerifierConfig = fault.E(fault.Internal, "verifier_misconfigured",
		"The token verifier is misconfigured.")

	// ErrHasherConfig is returned by [Hasher] methods when its Params are
	// outside this package's limits.
	ErrHasherConfig = fault.E(fault.Internal, "hasher_misconfigured",
		"The password hasher is misconfigured.")

	// ErrRevocationCheck is returned by [Verifier.Verify] when the Revoked
	// hook fails. Verification fails closed.
	ErrRevocationCheck = fault.E(fault.Unavailable, "revocation_check_failed",
		"Token revocation could not be checked.")

	// ErrCanceled is returned when the caller's context ends while it waits
	// for a password-hashing slot.
	ErrCanceled = fault.E(fault.Canceled, "canceled",
		"The request was canceled or ran out of time.")
)

// fail returns a copy of sentinel with op and cause attached.
func fail(sentinel *fault.Error, op string, cause error) *fault.Error {
	e := fault.From(sentinel, cause)
	e.Op = op
	return e
}

// invalid returns ErrInvalidToken with cause, for Verify and ExtractBearer.
func invalid(op string, cause error) error { return fail(ErrInvalidToken, op, cause) }

// internal returns an Internal error for a failure with no better kind, such
// as a broken random source.
func internal(op string, cause error) *fault.Error {
	return &fault.Error{Kind: fault.Internal, Op: op, Err: cause}
}

// canceled returns ErrCanceled for a context that ended while waiting.
func canceled(ctx context.Context, op string) error {
	cause := context.Cause(ctx)
	if cause == nil {
		cause = errors.New("context not done")
	}
	return fail(ErrCanceled, op, cause)
}

// malformedError is a token that fails on its shape, before any key is
// looked up: the same text fails the same way whatever the keys.
type malformedError struct{ err error }

func (e *malformedError) Error() string { return e.err.Error() }
func (e *malformedError) Unwrap() error { return e.err }

// Permanent reports whether a failure of [Verifier.Verify] holds for the
// same token text whatever happens later: the token is malformed, its
// signature does not verify under the key its kid names, or it has
// expired. A caller may remember such tokens and refuse them again
// without verifying. Failures that can pass later do not count: an
// unknown kid or issuer (keys and trusts change), a token not valid yet,
// a revocation check that could not run, a canceled context.
func Permanent(err error) bool {
	if !errors.Is(err, ErrInvalidToken) {
		return false
	}
	var m *malformedError
	return errors.As(err, &m) || errors.Is(err, jwt.ErrTokenMalformed) ||
		errors.Is(err, jwt.ErrTokenSignatureInvalid) || errors.Is(err, jwt.ErrTokenExpired)
}
