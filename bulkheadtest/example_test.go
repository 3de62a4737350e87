package bulkheadtest_test

import (
	"context"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/bulkheadtest"
)

// A user's own isolation test. In a _test.go file of your app it reads:
//
//	func TestMain(m *testing.M) { bulkheadtest.Main(m) }
//
//	func TestIsolation(t *testing.T) {
//		env := bulkheadtest.Start(t)
//		…
//	}
//
// Here runTest stands in for `go test`, which cannot call an example with
// a *testing.T.
func Example() {
	for _, failure := range runTest(func(t testing.TB) {
		env := bulkheadtest.Start(t)
		acme := env.Tenant(t, "acme", bulkheadtest.Pool)
		globex := env.Tenant(t, "globex", bulkheadtest.Silo, bulkheadtest.Basic)
		acme.Insert(t, "projects", map[string]any{"name": "acme's secret roadmap"})

		// globex tries every path it has against acme's rows.
		leaks := env.AssertIsolated(t, globex, acme)
		fmt.Println("leaks:", len(leaks))

		// Business code: a function with a login role of its own runs
		// acme's context, as bulkhead.DB.Tx does in production.
		db := env.FunctionDB(t)
		ctx := acme.Context(t)
		projects, err := bulkhead.Table(ctx, "projects")
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		err = db.Tx(ctx, func(tx pgx.Tx) error {
			rows, _ := tx.Query(ctx, `SELECT name FROM `+projects)
			names, err = pgx.CollectRows(rows, pgx.RowTo[string])
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("acme's function sees %q\n", names)
	}) {
		fmt.Println("FAIL:", failure)
	}
	// Output:
	// leaks: 0
	// acme's function sees ["acme's secret roadmap"]
}

// Prove that the negative suite can fail: open a row policy on purpose,
// as the superuser, and Isolated reports what leaks.
func ExampleEnv_Isolated() {
	for _, failure := range runTest(func(t testing.TB) {
		env := bulkheadtest.Start(t)
		acme := env.Tenant(t, "acme", bulkheadtest.Pool)
		globex := env.Tenant(t, "globex", bulkheadtest.Pool)
		acme.Insert(t, "projects", map[string]any{"name": "acme's secret roadmap"})

		conn, err := pgx.Connect(t.Context(), env.AdminURL())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if _, err := conn.Exec(t.Context(), `ALTER POLICY tenant_select ON app.projects USING (true)`); err != nil {
			t.Fatal(err)
		}

		var checks []bulkheadtest.Check
		for _, l := range env.Isolated(t, globex, acme) {
			if !slices.Contains(checks, l.Check) {
				checks = append(checks, l.Check)
			}
		}
		fmt.Printf("leaks found by: %q\n", checks)
	}) {
		fmt.Println("FAIL:", failure)
	}
	// Output:
	// leaks found by: ["read" "single object" "sql"]
}

// runTest runs body as `go test` runs a test function: in a goroutine of
// its own, stopped by Fatal, with the cleanups run in reverse order when
// it ends. It returns the test's failures; its logs are dropped.
func runTest(body func(t testing.TB)) []string {
	t := &exampleT{}
	t.ctx, t.cancel = context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		body(t)
	}()
	<-done
	t.cancel()
	for i := len(t.cleanups) - 1; i >= 0; i-- {
		t.cleanups[i]()
	}
	return t.failures
}

// exampleT is the testing.TB of runTest. It implements the methods
// bulkheadtest uses; any other panics (the embedded TB is nil).
type exampleT struct {
	testing.TB
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	failures []string
	cleanups []func()
}

func (t *exampleT) Helper()                  {}
func (t *exampleT) Name() string             { return "Example" }
func (t *exampleT) Context() context.Context { return t.ctx }
func (t *exampleT) Log(args ...any)          {}
func (t *exampleT) Logf(string, ...any)      {}

func (t *exampleT) Cleanup(f func()) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cleanups = append(t.cleanups, f)
}

func (t *exampleT) Error(args ...any) { t.Errorf("%s", fmt.Sprint(args...)) }

func (t *exampleT) Errorf(format string, args ...any) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.failures = append(t.failures, fmt.Sprintf(format, args...))
}

func (t *exampleT) Fail() { t.Errorf("failed") }

func (t *exampleT) Failed() bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.failures) > 0
}

func (t *exampleT) FailNow() {
	t.Fail()
	runtime.Goexit()
}

func (t *exampleT) Fatal(args ...any) {
	t.Error(args...)
	runtime.Goexit()
}

func (t *exampleT) Fatalf(format string, args ...any) {
	t.Errorf(format, args...)
	runtime.Goexit()
}
