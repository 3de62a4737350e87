// Package mutations writes package-level state in every way the analyzer
// knows, next to the synchronisation and counters it allows.
package mutations

import (
	"bytes"
	"container/list"
	"context"
	"encoding/json"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
)

type Event struct {
	TenantID string
	Body     []byte
}

type Config struct{ Plan string }

var (
	seen        []string
	recent      = make([]string, 8)
	invocations int
	events      = list.New()
	logBuf      bytes.Buffer
	sb          strings.Builder
	decoded     Config
	lastConfig  atomic.Pointer[Config]
	current     atomic.Value
	requests    atomic.Int64
	failures    int64
	mu          sync.Mutex
)

func Handler(ctx context.Context, ev Event) error {
	mu.Lock()
	defer mu.Unlock()
	requests.Add(1)               // a metrics counter: allowed
	atomic.AddInt64(&failures, 1) // a metrics counter: allowed

	seen = append(seen, ev.TenantID)      // want `^package-level variable seen is written on a path reachable from handler Handler`
	recent[0] = ev.TenantID               // want `^package-level variable recent is written on`
	invocations++                         // want `^package-level variable invocations is written on`
	invocations += 2                      // want `^package-level variable invocations is written on`
	events.PushBack(ev)                   // want `^package-level variable events is written by list.List.PushBack on`
	logBuf.WriteString(ev.TenantID)       // want `^package-level variable logBuf is written by bytes.Buffer.WriteString on`
	sb.WriteString(ev.TenantID)           // want `^package-level variable sb is written by strings.Builder.WriteString on`
	lastConfig.Store(&Config{})           // want `^package-level variable lastConfig is written by atomic.Pointer.Store on`
	current.Store(ev)                     // want `^package-level variable current is written by atomic.Value.Store on`
	_ = json.Unmarshal(ev.Body, &decoded) // want `^package-level variable decoded is written by json.Unmarshal on`
	sort.Strings(seen)                    // want `^package-level variable seen is written by sort.Strings on`
	copy(recent, seen)                    // want `^package-level variable recent is written by copy on`

	n := len(seen) + invocations + int(requests.Load()) // reads
	_ = n
	return nil
}
