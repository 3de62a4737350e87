// Command methodvalue starts method values as handlers: a method value
// passed to lambda.Start and a lambda.Handler passed to StartHandler. The
// receiver lives as long as the process.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

type Event struct{ TenantID string }

var lastEvent Event

type server struct {
	lastTenant string
	seen       map[string]bool
}

func (s *server) Handle(ctx context.Context, ev Event) error {
	lastEvent = ev             // want `^package-level variable lastEvent is written on a path reachable from handler \(\*server\).Handle`
	s.lastTenant = ev.TenantID // want `^receiver s of handler \(\*server\).Handle is written;`
	s.remember(ev)             // want `^receiver s of handler \(\*server\).Handle is written by \(\*server\).remember \(through its receiver\);`
	copied := *s
	copied.lastTenant = "" // a copy
	return nil
}

func (s *server) remember(ev Event) { s.seen[ev.TenantID] = true }

type invoker struct{ last []byte }

func (i *invoker) Invoke(ctx context.Context, payload []byte) ([]byte, error) {
	i.last = payload // want `^receiver i of handler \(\*invoker\).Invoke is written;`
	return payload, nil
}

func main() {
	s := &server{seen: map[string]bool{}}
	s.lastTenant = "none" // before any invocation
	lambda.Start(s.Handle)
	lambda.StartHandler(&invoker{})
}
