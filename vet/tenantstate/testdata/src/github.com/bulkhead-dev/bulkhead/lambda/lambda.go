// Package lambda is a stand-in for bulkhead's Lambda adapter, which does
// not exist yet: the names the analyzer matches, and no behaviour.
package lambda

import (
	"context"
	"sync"
)

// Wrap adapts a handler to bulkhead.
func Wrap(handler any) any { return handler }

// TenantCache is a cache keyed by the tenant in ctx.
type TenantCache[V any] struct {
	// MaxEntries bounds the entries kept for each tenant.
	MaxEntries int

	entries sync.Map
}

// Load returns the value for key in the tenant of ctx.
func (c *TenantCache[V]) Load(ctx context.Context, key string) (V, bool) {
	var zero V
	return zero, false
}

// Store sets the value for key in the tenant of ctx.
func (c *TenantCache[V]) Store(ctx context.Context, key string, v V) {}
