// Command transitive writes package-level state in helpers that the
// handler calls, directly and through pointer parameters and receivers.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

type Event struct{ TenantID, RequestID string }

type Config struct{ Plan string }

type Registry struct {
	items map[string]Config
	order []string
}

var (
	last     Event
	cached   Config
	registry     = &Registry{items: map[string]Config{}}
	anything any = &Registry{items: map[string]Config{}}
)

func (r *Registry) add(k string, c Config) {
	r.items[k] = c
	r.order = append(r.order, k)
}

func remember(ev Event) {
	last = ev // want `^package-level variable last is written on a path reachable from handler HandleRequest`
}

func store(dst *Config, c Config) { *dst = c }

func save(c Config) {
	store(&cached, c) // want `^package-level variable cached is written by store \(through its parameter dst\) on a path reachable from handler HandleRequest`
}

func process(ev Event) {
	remember(ev)
	save(Config{Plan: ev.TenantID})
}

func HandleRequest(ctx context.Context, ev Event) error {
	process(ev)
	registry.add(ev.RequestID, Config{}) // want `^package-level variable registry is written by \(\*Registry\).add \(through its receiver\) on`

	switch r := anything.(type) {
	case *Registry:
		r.items[ev.RequestID] = Config{} // want `^package-level variable anything is written on`
	}
	reset := func(r *Registry) { r.order = nil }
	reset(registry) // want `^package-level variable registry is written by HandleRequest.func1 \(through its parameter r\) on`

	mine := Registry{items: map[string]Config{}}
	mine.add(ev.RequestID, Config{}) // a local registry
	var c Config
	store(&c, Config{Plan: ev.TenantID}) // a local
	return nil
}

// warmUp writes the same state, but only main calls it.
func warmUp() {
	last = Event{}
	store(&cached, Config{Plan: "default"})
	registry.add("default", Config{})
}

func main() {
	warmUp()
	lambda.Start(HandleRequest)
}
