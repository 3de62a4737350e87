// Command closures starts function literals as handlers: inline, from a
// package-level variable, and from a handler factory.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

type Event struct{ ID, TenantID string }

var cache = map[string]Event{}

var handle = func(ctx context.Context, ev Event) error {
	cache[ev.ID] = ev // want `^package-level map cache is written on a path reachable from handler handle;`
	return nil
}

func newHandler(prefix string) func(context.Context, Event) (string, error) {
	var last Event
	count := 0
	return func(ctx context.Context, ev Event) (string, error) {
		prev := last
		last = ev // want `^variable last, captured by handler newHandler.func1, is written;`
		count++   // want `^variable count, captured by handler newHandler.func1, is written;`
		return prefix + prev.ID, nil
	}
}

func typed(ctx context.Context, ev Event) (string, error) {
	cache["typed"] = ev // want `^package-level map cache is written on a path reachable from handler typed;`
	return ev.ID, nil
}

func main() {
	lambda.Start(func(ctx context.Context, ev Event) error {
		cache[ev.ID] = ev // want `^package-level map cache is written on a path reachable from handler main.func1;`
		var batch []Event
		func() { batch = append(batch, ev) }() // the handler's own local
		return nil
	})
	lambda.StartWithContext(context.Background(), handle)
	lambda.StartWithOptions(newHandler("p-"), lambda.WithEnableSIGTERM())
	lambda.StartHandlerFunc(typed)
}
