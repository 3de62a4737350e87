// Package lambda is a stand-in for github.com/aws/aws-lambda-go/lambda,
// with the signatures of its entry points and no behaviour.
package lambda

import "context"

// Handler is implemented by a value whose Invoke method handles an event.
type Handler interface {
	Invoke(ctx context.Context, payload []byte) ([]byte, error)
}

// HandlerFunc constrains the handler of StartHandlerFunc.
type HandlerFunc[TIn, TOut any] interface {
	func(context.Context, TIn) (TOut, error)
}

// An Option configures the runtime.
type Option func(*options)

type options struct{}

// Start runs handler for each invocation.
func Start(handler any) {}

// StartWithOptions runs handler for each invocation.
func StartWithOptions(handler any, opts ...Option) {}

// StartWithContext runs handler for each invocation.
func StartWithContext(ctx context.Context, handler any) {}

// StartHandler runs handler.Invoke for each invocation.
func StartHandler(handler Handler) {}

// StartHandlerWithContext runs handler.Invoke for each invocation.
func StartHandlerWithContext(ctx context.Context, handler Handler) {}

// StartHandlerFunc runs handler for each invocation.
func StartHandlerFunc[TIn, TOut any, H HandlerFunc[TIn, TOut]](handler H, opts ...Option) {}

// WithEnableSIGTERM is an Option.
func WithEnableSIGTERM(callbacks ...func()) Option { return func(*options) {} }
