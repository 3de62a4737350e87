// Package fault defines bulkhead's one error type.
//
// Every error that crosses a package boundary is, or wraps, a [*Error]. Its
// [Kind] tells callers how to react (and the HTTP layer which status to
// send), its Code is a stable, documented string, and its Message is safe to
// show to the caller. The cause in Err is for logs only and is never sent.
//
// Isolation: a row or tenant the caller cannot see is always [NotFound],
// produced by the same code path as a row that does not exist, so neither the
// answer nor its timing confirms that another tenant holds it.
package fault

import (
	"context"
	"errors"
	"fmt"
)

// Kind classifies an error by how a caller should react. Append only.
type Kind uint8

// The kinds of error. The zero value is Internal.
const (
	Internal         Kind = iota // a bug or an unexpected failure; 500
	Invalid                      // malformed input; 400
	Unauthenticated              // no valid credentials; 401
	Denied                       // a policy decision about something the caller can see; 403
	NotFound                     // absent, or invisible to the caller; 404
	Conflict                     // a uniqueness or state conflict; 409
	TooLarge                     // a body or batch over the limit; 413
	Unavailable                  // overloaded, shutting down, or a dependency is down; 503
	TooMany                      // a rate or concurrency limit; 429
	Canceled                     // the caller went away or its deadline passed
	MethodNotAllowed             // a known endpoint, another method; 405
)

var kindNames = [...]string{
	Internal:         "internal",
	Invalid:          "invalid",
	Unauthenticated:  "unauthenticated",
	Denied:           "denied",
	NotFound:         "not_found",
	Conflict:         "conflict",
	TooLarge:         "too_large",
	Unavailable:      "unavailable",
	TooMany:          "too_many_requests",
	Canceled:         "canceled",
	MethodNotAllowed: "method_not_allowed",
}

// String returns the kind's name, which is also the default error code.
func (k Kind) String() string {
	if int(k) < len(kindNames) {
		return kindNames[k]
	}
	return fmt.Sprintf("kind(%d)", k)
}

// Error is bulkhead's error type.
type Error struct {
	Kind    Kind
	Code    string // stable and documented, e.g. "tenant_not_found"; defaults to Kind's name
	Op      string // where it happened, e.g. "postgres.CreateTenant"
	Message string // a sentence safe to show the caller; never contains Err's text
	Err     error  // the cause: logged, never sent
}

// Error returns a description for logs, which may include the cause.
func (e *Error) Error() string {
	msg := e.Message
	if msg == "" {
		msg = e.code()
	}
	switch {
	case e.Op != "" && e.Err != nil:
		return fmt.Sprintf("%s: %s: %v", e.Op, msg, e.Err)
	case e.Op != "":
		return e.Op + ": " + msg
	case e.Err != nil:
		return msg + ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the cause.
func (e *Error) Unwrap() error { return e.Err }

// Is reports whether target is a *Error with the same Kind and Code, so that
// sentinels such as tenant.ErrNotFound match errors made from them with
// [Wrap] or [E].
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	if !ok {
		return false
	}
	return t.Kind == e.Kind && t.code() == e.code() && t.Op == "" && t.Err == nil
}

func (e *Error) code() string {
	if e.Code != "" {
		return e.Code
	}
	return e.Kind.String()
}

// E returns a new error of kind k with a stable code and a safe message.
func E(k Kind, code, message string) *Error {
	return &Error{Kind: k, Code: code, Message: message}
}

// Errorf returns an error of kind k with code and a message formatted for the
// caller. Only put values in it that the caller may see.
func Errorf(k Kind, code, format string, args ...any) *Error {
	return &Error{Kind: k, Code: code, Message: fmt.Sprintf(format, args...)}
}

// From returns an error of the same kind, code and message as sentinel, with
// cause attached for the logs.
func From(sentinel *Error, cause error) *Error {
	e := *sentinel
	e.Err = cause
	return &e
}

// KindOf returns the Kind of the first *Error in err's chain. Context
// cancellation maps to Canceled, and anything else to Internal.
func KindOf(err error) Kind {
	if err == nil {
		return Internal
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Kind
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return Canceled
	}
	return Internal
}

// CodeOf returns the stable code of the first *Error in err's chain, or
// "internal" (or "canceled") when there is none.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.code()
	}
	return KindOf(err).String()
}

// MessageOf returns the caller-safe message of err. Internal errors and
// errors that are not *Error get a generic message.
func MessageOf(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Message != "" && e.Kind != Internal {
		return e.Message
	}
	switch KindOf(err) {
	case Canceled:
		return "The request was canceled or ran out of time."
	case Internal:
		return "An internal error occurred."
	}
	return "The request failed."
}

// Wrap adds op to *errp when it is not nil. Use it as
//
//	defer fault.Wrap(&err, "postgres.CreateTenant(%s)", id)
//
// A *Error keeps its kind, code and message; the op becomes part of the
// log text only.
func Wrap(errp *error, format string, args ...any) {
	if *errp == nil {
		return
	}
	op := fmt.Sprintf(format, args...)
	var e *Error
	if errors.As(*errp, &e) {
		w := *e
		w.Op = op
		if e.Op != "" {
			w.Op = op + ": " + e.Op
		}
		w.Err = e.Err
		if e.Err == nil && *errp != error(e) {
			w.Err = *errp
		}
		*errp = &w
		return
	}
	*errp = fmt.Errorf("%s: %w", op, *errp)
}
