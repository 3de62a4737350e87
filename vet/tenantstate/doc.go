// Package tenantstate defines an analyzer, [Analyzer], that reports state
// written by a request handler which outlives the invocation that wrote it.
//
// AWS Lambda reuses a warm execution environment for the next invocation,
// and that invocation may belong to another tenant. Anything a handler
// stores in a package-level variable, in the receiver of a long-lived
// handler value, or in a variable captured by a handler closure is still
// there when the next tenant's request arrives. A long-running HTTP server
// has the same problem, between concurrent requests. This is the Go form
// of the classic Lambda bug:
//
//	var cachedTenantConfig *Config
//
//	func HandleRequest(ctx context.Context, ev Event) (Response, error) {
//		if cachedTenantConfig == nil {
//			cachedTenantConfig, _ = fetchConfig(ctx, ev.TenantID) // reported
//		}
//		...
//	}
//
// Fetching the configuration inside the handler each time, or keeping it in
// a tenant-keyed cache, is the fix.
//
// # What is reported
//
// A write is reported when it happens on a code path reachable from a
// handler (see below) and the written memory is one of:
//
//   - a package-level variable, of this package or another;
//   - the receiver of a method handler, written through the receiver
//     (s.field = v with a pointer receiver, s.m[k] = v with any receiver): the
//     handler value passed to lambda.Start or registered with a mux lives
//     as long as the process;
//   - a variable captured by a handler function literal and declared in a
//     function that is not itself reachable from a handler, such as main or
//     a handler factory called from main.
//
// These count as writes:
//
//   - assignment (x = v, x op= v, x = append(x, v)), x++ and x--, and
//     assignment to a field (x.f = v), an element (x[i] = v) or a map entry
//     (x[k] = v) of such memory;
//   - writes through a local pointer or other reference that aliases it,
//     such as p := &x; *p = v, m := cache; m[k] = v, or a range or type
//     switch variable bound to it, within the function (a
//     flow-insensitive alias analysis of local variables; a copy of a
//     value holding no pointers is not an alias, and a composite literal
//     is a new object, so only what its elements point to is shared);
//   - passing it to a function or method of the package that writes
//     through that parameter or receiver, transitively (store(&x, v), where
//     store does *dst = v, is reported at the call);
//   - the builtins delete, clear and copy (into the destination), and
//     calls known to mutate their receiver or an argument: [sync.Map]
//     Store, LoadOrStore, Swap, Delete and the like; [container/list.List]
//     Push*, Insert*, Move*, Remove and Init; [container/ring.Ring] Link and
//     Unlink; [strings.Builder] and [bytes.Buffer] Write*, Grow, Reset and
//     Truncate; [sync/atomic.Value] and [sync/atomic.Pointer] Store, Swap
//     and CompareAndSwap, and [sync/atomic.StorePointer] and its kin;
//     [container/heap] functions; [sort], [slices.Sort], [slices.SortFunc],
//     [slices.SortStableFunc] and [slices.Reverse]; [maps.Copy] and
//     [maps.DeleteFunc]; and decoding into it with
//     [encoding/json.Unmarshal], [encoding/xml.Unmarshal], a json, xml or
//     gob Decoder's Decode, or [encoding/binary.Read];
//   - inside a function literal passed to [sync.Once.Do] that captures a
//     variable of the handler, such as the request
//     (once.Do(func() { cfg = load(ev.TenantID) })): the first tenant's data
//     is then kept for every later tenant.
//
// A write to a package-level map (or a [sync.Map]) gets a message of its
// own: such a map is a cache, and a plain map is not keyed by tenant. The
// check is deliberately simple: it does not try to decide whether the key
// expression derives from a tenant identifier, because the tenant ID in an
// event is input, not a verified identity, and an unbounded map keyed by it
// still keeps one tenant's data in memory while serving the next. Every
// such write is reported unless the map's type is bulkhead's tenant-keyed
// cache, github.com/bulkhead-dev/bulkhead/lambda.TenantCache (matched by
// package path and type name, so a pointer to it, a generic instantiation
// of it or a field of that type all count).
//
// The message names the variable and the first handler (in source order)
// from which the write is reachable, for example:
//
//	package-level variable cachedTenantConfig is written on a path reachable
//	from handler HandleRequest; it outlives the invocation and can reach the
//	next tenant (keep it in the handler, or use a tenant-keyed cache)
//
// # What is not reported
//
//   - Constants, reads of any variable, and writes to local variables,
//     including locals that shadow a package-level variable and fields of a
//     local copy of a struct (c := global; c.f = v).
//   - Writes in init functions, in package-level variable initialisers, and
//     in any function not reachable from a handler, such as main creating
//     clients before it calls lambda.Start. Set configuration and clients up
//     there, once, from configuration rather than from a request.
//   - Lazy initialisation in a function passed to [sync.Once.Do] that
//     captures nothing of the handler (once.Do(func() { client = newClient()
//     }) or once.Do(setup)): it runs once, for whichever tenant comes first,
//     but does not depend on that tenant, so it is the same as doing it at
//     start-up.
//   - [sync.Mutex], [sync.RWMutex], [sync.WaitGroup] and other
//     synchronisation calls: they change no data a tenant can read.
//   - Numeric counters in [sync/atomic]: the Add, Store, Swap, And, Or and
//     CompareAndSwap methods of [sync/atomic.Int32], [sync/atomic.Int64],
//     [sync/atomic.Uint32], [sync/atomic.Uint64], [sync/atomic.Uintptr] and
//     [sync/atomic.Bool], and the matching functions such as
//     [sync/atomic.AddInt64]. They are how request and error counters for
//     metrics are kept, and a count shared by every tenant carries no
//     tenant's data. [sync/atomic.Value] and [sync/atomic.Pointer] can hold
//     a tenant's data and are reported. A plain x++ on a package-level
//     integer is reported too: it is a data race as well as shared state.
//   - Functions declared in _test.go files are not handlers, so a test's
//     fake handler may record what it saw in a captured variable.
//
// # How handlers are found
//
// A handler is any of these, in the package being analysed:
//
//  1. a function, method value or function literal passed to Start,
//     StartWithOptions, StartHandlerFunc or StartWithContext of
//     github.com/aws/aws-lambda-go/lambda, and the Invoke method of a value
//     passed to its StartHandler or StartHandlerWithContext (matched by
//     import path: this module does not depend on aws-lambda-go);
//  2. a function, method or function literal whose parameters are
//     (http.ResponseWriter, *http.Request), whatever it returns, which
//     includes every ServeHTTP method and http.HandlerFunc;
//  3. a function or method named Handler or handler whose first parameter
//     is a context.Context, and any function or method whose doc comment
//     has the directive //bulkhead:handler;
//  4. anything passed to bulkhead's Lambda adapter,
//     github.com/bulkhead-dev/bulkhead/lambda.Wrap.
//
// An argument to these is traced through parentheses, conversions such as
// http.HandlerFunc(f), package-level and local variables holding a
// function, calls to other packages' wrappers (lambda.Start(otel.Wrap(h))
// finds h), and calls to this package's handler factories
// (lambda.Start(newHandler(db)) finds the function literals that
// newHandler returns).
//
// # Limits
//
// The analysis is intra-package. Its call graph holds the package's own
// functions, methods and function literals, with an edge wherever a body
// calls or refers to one (a function passed as a value is assumed to be
// called); a function literal is reached from the function that contains
// it. Calls through interfaces, through function values held in fields,
// and into other packages are not followed: a package-level variable
// written by a dependency is reported only when the analyzer runs on that
// dependency and finds a handler there, and a dependency's method that
// writes its receiver is seen only if it is in the list above.
//
// The alias analysis is per function and flow-insensitive, so it can
// report a write through a pointer that was re-pointed at a local first,
// and it takes append(x, ...) to share x's backing array (except for
// x[:0:0]). Values returned by calls are not traced to a variable, so
// getCache()[k] = v is not reported, and nor is writing to a
// package-level variable through an interface, as in
// fmt.Fprintf(&globalBuffer, ...). Sends on package-level channels are
// not reported. A call that writes through several of its arguments is
// reported once. The map check is the type-based heuristic described
// above.
//
// # Suppressing a report
//
// A report is suppressed by a comment on the line of the write, or alone
// on the line just above it, that starts with //bulkhead:ok and gives a
// reason:
//
//	hits++ //bulkhead:ok a count of invocations, no tenant data
//
// A //bulkhead:ok with no reason suppresses nothing: the report stays, and
// says that a reason is needed. The reason is for the reviewer: say why
// the state cannot carry one tenant's data to another.
//
// A write through a parameter or receiver inside a helper is reported at
// each call that passes shared state to it. A //bulkhead:ok with a reason
// at the write inside the helper covers all those calls, so a cache that
// is keyed by a verified tenant ID on purpose is argued for once, where it
// is written.
package tenantstate
