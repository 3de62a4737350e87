package hashproc

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/identity"
)

// childEnv makes the test binary act as a child: "serve" runs Run,
// "crash" exits after reading one request, "garbage" answers nonsense,
// "stall" reads and never answers, "wedged" never reads at all.
const childEnv = "HASHPROC_TEST_CHILD"

func TestMain(m *testing.M) {
	switch os.Getenv(childEnv) {
	case "":
		os.Exit(m.Run())
	case "serve":
		if err := Run(os.Stdin, os.Stdout, os.Stderr); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "complain":
		fmt.Fprint(os.Stderr, "first line\nsecond line\n")
		if err := Run(os.Stdin, os.Stdout, os.Stderr); err != nil {
			os.Exit(1)
		}
	case "crash":
		bufio.NewReader(os.Stdin).ReadString('\n')
		os.Exit(3)
	case "garbage":
		bufio.NewReader(os.Stdin).ReadString('\n')
		fmt.Println("{not json")
		io.Copy(io.Discard, os.Stdin)
	case "stall":
		io.Copy(io.Discard, os.Stdin)
	case "wedged":
		time.Sleep(time.Hour) // the tests kill it
	}
	os.Exit(0)
}

func command(mode string) func() *exec.Cmd {
	return func() *exec.Cmd {
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), childEnv+"="+mode)
		return cmd
	}
}

// small are cheap argon2id parameters, for tests.
var small = identity.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func newProcess(t *testing.T, mode string) *Process {
	t.Helper()
	p := &Process{Command: command(mode)}
	t.Cleanup(func() { p.Close(5 * time.Second) })
	return p
}

func TestDeriveKeyMatchesInProcess(t *testing.T) {
	p := newProcess(t, "serve")
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	salt := []byte("0123456789abcdef")
	// Any bytes a login's JSON can carry: a newline (the pipe's framing),
	// quotes, bytes that are not UTF-8, the longest password.
	for _, pw := range []string{"correct horse", "x", "line\nbreak\r\n", `"},{"id":1}`, "\xff\xfe\x00", strings.Repeat("é", identity.MaxPasswordLen/2)} {
		got, err := p.DeriveKey(context.Background(), []byte(pw), salt, small)
		if err != nil {
			t.Fatal(err)
		}
		want, err := identity.DeriveKey([]byte(pw), salt, small)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("password of %d bytes: key %x from the child, %x here", len(pw), got, want)
		}
	}
}

// TestHasherWithProcess checks passwords both ways: a hash made through
// the child checks here, and one made here checks through the child; a
// wrong password, an unknown user and a malformed hash fail as they do
// in process.
func TestHasherWithProcess(t *testing.T) {
	remote := &identity.Hasher{Params: small, Deriver: newProcess(t, "serve")}
	local := &identity.Hasher{Params: small}
	ctx := context.Background()
	for _, pair := range [][2]*identity.Hasher{{remote, local}, {local, remote}} {
		hash, err := pair[0].Hash(ctx, "correct horse")
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := pair[1].Check(ctx, hash, "correct horse"); err != nil || !ok {
			t.Fatalf("right password: %v, %v", ok, err)
		}
		if ok, err := pair[1].Check(ctx, hash, "correct horsf"); err != nil || ok {
			t.Fatalf("wrong password: %v, %v", ok, err)
		}
	}
	if ok, err := remote.Check(ctx, "", "anything"); err != nil || ok {
		t.Fatalf("unknown user: %v, %v", ok, err)
	}
	if _, err := remote.Check(ctx, "$argon2id$v=19$m=64,t=1,p=1$AAAA$AAAA", "x"); !errors.Is(err, identity.ErrInvalidHash) {
		t.Fatalf("malformed hash: %v, want ErrInvalidHash", err)
	}
}

// TestChildIsNiced reads every thread's niceness from /proc: all of the
// child's threads run at Niceness, the test's own stay at what they were.
func TestChildIsNiced(t *testing.T) {
	before := threadNices(t, os.Getpid())
	p := newProcess(t, "serve")
	if _, err := p.DeriveKey(context.Background(), []byte("pw"), []byte("0123456789abcdef"), small); err != nil {
		t.Fatal(err)
	}
	pid := p.Pid()
	nices := threadNices(t, pid)
	if len(nices) < 2 {
		t.Fatalf("the child has %d threads; the Go runtime starts several", len(nices))
	}
	for tid, n := range nices {
		if n != Niceness {
			t.Errorf("child thread %d at nice %d, want %d", tid, n, Niceness)
		}
	}
	for tid, n := range threadNices(t, os.Getpid()) {
		if was, ok := before[tid]; ok && n != was {
			t.Errorf("the parent's thread %d went from nice %d to %d", tid, was, n)
		}
	}
}

func threadNices(t *testing.T, pid int) map[int]int {
	t.Helper()
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	nices := map[int]int{}
	for _, task := range tasks {
		b, err := os.ReadFile(filepath.Join(dir, task.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		// The command name, in parentheses, may hold spaces; the fields
		// after it are fixed: nice is the 17th after the ")".
		f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
		n, err := strconv.Atoi(f[16])
		if err != nil {
			t.Fatalf("%s: %v", task.Name(), err)
		}
		tid, _ := strconv.Atoi(task.Name())
		nices[tid] = n
	}
	return nices
}

// TestChildCrashes: a child that exits with work in flight fails that
// work with ErrUnavailable (503, retry), is not restarted in a loop, and
// is restarted by a later call.
func TestChildCrashes(t *testing.T) {
	mode := "crash"
	p := &Process{Command: func() *exec.Cmd { return command(mode)() }}
	t.Cleanup(func() { p.Close(5 * time.Second) })
	salt := []byte("0123456789abcdef")
	_, err := p.DeriveKey(context.Background(), []byte("pw"), salt, small)
	if !errors.Is(err, ErrUnavailable) || fault.KindOf(err) != fault.Unavailable {
		t.Fatalf("crashed child: %v, want ErrUnavailable", err)
	}
	mode = "serve"
	if _, err := p.DeriveKey(context.Background(), []byte("pw"), salt, small); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("restart within restartEvery: %v, want ErrUnavailable", err)
	}
	saved := restartEvery
	restartEvery = 0
	t.Cleanup(func() { restartEvery = saved })
	if _, err := p.DeriveKey(context.Background(), []byte("pw"), salt, small); err != nil {
		t.Fatalf("after the restart: %v", err)
	}
	if n := p.Starts(); n != 2 {
		t.Fatalf("Starts() = %d after a crash and a restart, want 2", n)
	}
}

// TestMalformedAnswer: a child whose output is not answers is killed,
// and its work fails with ErrUnavailable.
func TestMalformedAnswer(t *testing.T) {
	p := newProcess(t, "garbage")
	_, err := p.DeriveKey(context.Background(), []byte("pw"), []byte("0123456789abcdef"), small)
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("malformed answer: %v, want ErrUnavailable", err)
	}
	<-p.cur.done
	if p.cur.cmd.ProcessState == nil {
		t.Fatal("the child was not waited for")
	}
}

// TestCanceled: a caller whose context ends gets ErrCanceled rather than
// waiting on a child that does not answer; one whose context has ended
// starts no child.
func TestCanceled(t *testing.T) {
	p := newProcess(t, "stall")
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	_, err := p.DeriveKey(ctx, []byte("pw"), []byte("0123456789abcdef"), small)
	if !errors.Is(err, identity.ErrCanceled) {
		t.Fatalf("stalled child: %v, want ErrCanceled", err)
	}
	q := newProcess(t, "serve")
	done, cancel2 := context.WithCancel(context.Background())
	cancel2()
	if _, err := q.DeriveKey(done, []byte("pw"), []byte("0123456789abcdef"), small); !errors.Is(err, identity.ErrCanceled) {
		t.Fatalf("ended context: %v, want ErrCanceled", err)
	}
	if q.cur != nil {
		t.Fatal("a child was started for a context that had ended")
	}
}

// TestWedgedChild: a child that stops reading its input (stopped,
// swapped out, stuck) fills the pipe. Callers whose context ends while
// their request waits to be written return ErrCanceled rather than
// blocking in the write, and Close still ends the child. Each request
// carries the longest password, so that a few dozen fill the pipe.
func TestWedgedChild(t *testing.T) {
	p := newProcess(t, "wedged")
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	child := p.cur
	pw := bytes.Repeat([]byte{'x'}, identity.MaxPasswordLen)
	salt := []byte("0123456789abcdef")
	finished := make(chan error)
	go func() {
		for i := 0; i < 200; i++ {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
			_, err := p.DeriveKey(ctx, pw, salt, small)
			cancel()
			if !errors.Is(err, identity.ErrCanceled) {
				finished <- fmt.Errorf("call %d: %v, want ErrCanceled", i, err)
				return
			}
		}
		// A context without a deadline, canceled while its request
		// waits behind the full pipe.
		ctx, cancel := context.WithCancel(context.Background())
		time.AfterFunc(50*time.Millisecond, cancel)
		if _, err := p.DeriveKey(ctx, pw, salt, small); !errors.Is(err, identity.ErrCanceled) {
			finished <- fmt.Errorf("canceled call: %v, want ErrCanceled", err)
			return
		}
		finished <- nil
	}()
	select {
	case err := <-finished:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a call to a wedged child is still blocked 30 s after its context ended")
	}
	// A caller that never gives up, blocked in the write when the
	// server shuts down: Close still ends the child, and the caller
	// gets ErrUnavailable.
	stuck := make(chan error)
	go func() {
		_, err := p.DeriveKey(context.Background(), pw, salt, small)
		stuck <- err
	}()
	time.Sleep(50 * time.Millisecond) // let it reach the write; it passes either way
	closed := make(chan error)
	go func() { closed <- p.Close(100 * time.Millisecond) }()
	select {
	case <-closed:
	case <-time.After(30 * time.Second):
		t.Fatal("Close of a wedged child has not returned in 30 s")
	}
	if child.cmd.ProcessState == nil {
		t.Fatal("the wedged child was not ended")
	}
	select {
	case err := <-stuck:
		if !errors.Is(err, ErrUnavailable) {
			t.Fatalf("a call blocked when the child was closed: %v, want ErrUnavailable", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("a call blocked in the write outlived Close by 30 s")
	}
}

func TestClose(t *testing.T) {
	p := newProcess(t, "serve")
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	c := p.cur
	if err := p.Close(5 * time.Second); err != nil {
		t.Fatal(err)
	}
	if c.cmd.ProcessState == nil || !c.cmd.ProcessState.Exited() {
		t.Fatal("the child has not exited")
	}
	if pid := p.Pid(); pid != 0 {
		t.Fatalf("Pid after Close: %d, want 0", pid)
	}
	if _, err := p.DeriveKey(context.Background(), []byte("pw"), []byte("0123456789abcdef"), small); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("after Close: %v, want ErrUnavailable", err)
	}
}

func TestNoCommand(t *testing.T) {
	var p Process
	if err := p.Start(); !errors.Is(err, ErrUnavailable) {
		t.Fatalf("no command: %v", err)
	}
	q := &Process{Command: func() *exec.Cmd { return exec.Command(filepath.Join(t.TempDir(), "missing")) }}
	if err := q.Start(); !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "missing") {
		t.Fatalf("missing executable: %v", err)
	}
}

// serve runs Serve on the given lines and returns its answers by id.
func serve(t *testing.T, lines ...string) (map[uint64]answer, error) {
	t.Helper()
	var out bytes.Buffer
	err := Serve(strings.NewReader(strings.Join(lines, "\n")+"\n"), &out)
	answers := map[uint64]answer{}
	dec := json.NewDecoder(&out)
	for dec.More() {
		var a answer
		if derr := dec.Decode(&a); derr != nil {
			t.Fatalf("answer: %v", derr)
		}
		answers[a.ID] = a
	}
	return answers, err
}

func line(t *testing.T, r request) string {
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestServeRefuses: the child derives nothing for parameters beyond the
// package's limits (it would allocate them), for an empty or overlong
// password, or after the caller's deadline; it stops at a line that is
// not a request, after answering the ones before it.
func TestServeRefuses(t *testing.T) {
	salt := []byte("0123456789abcdef")
	ok := request{ID: 1, Memory: 64, Time: 1, Threads: 1, KeyLen: 32, Salt: salt, Password: []byte("pw")}
	huge := ok
	huge.ID, huge.Memory = 2, 1<<20+1
	empty := ok
	empty.ID, empty.Password = 3, nil
	long := ok
	long.ID, long.Password = 4, bytes.Repeat([]byte("a"), identity.MaxPasswordLen+1)
	late := ok
	late.ID, late.Deadline = 5, time.Now().Add(-time.Second).UnixMilli()
	shortSalt := ok
	shortSalt.ID, shortSalt.Salt = 6, []byte("1234")
	answers, err := serve(t, line(t, ok), line(t, huge), line(t, empty), line(t, long), line(t, late), line(t, shortSalt))
	if err != nil {
		t.Fatal(err)
	}
	if a := answers[1]; a.Error != "" || len(a.Key) != 32 {
		t.Fatalf("good request: %+v", a)
	}
	for _, id := range []uint64{2, 3, 4, 6} {
		if a := answers[id]; a.Error == "" || a.Key != nil {
			t.Errorf("request %d: %+v, want an error and no key", id, a)
		}
	}
	if a := answers[5]; !a.Skipped || a.Key != nil {
		t.Errorf("past its deadline: %+v, want skipped", a)
	}

	answers, err = serve(t, line(t, ok), "{not json")
	if err == nil || !strings.Contains(err.Error(), "malformed request") {
		t.Fatalf("malformed line: %v", err)
	}
	if len(answers[1].Key) != 32 {
		t.Fatal("the request before the malformed line was not answered")
	}
	if _, err := serve(t, `{"id":1,"pw":"`+strings.Repeat("A", maxLine)+`"}`); err == nil {
		t.Fatal("an overlong line was read")
	}
}

// TestServeBound: the child runs at most its bound of derivations at
// once (GOMAXPROCS in Serve); the others wait, unread, until one ends.
// The derivations here block until the test lets each go.
func TestServeBound(t *testing.T) {
	const limit, total = 2, 6
	var (
		mu        sync.Mutex
		running   int
		most      int
		started   = make(chan uint64, total)
		release   = make(chan struct{})
		lines     []string
		out       bytes.Buffer
		served    = make(chan error, 1)
		blockedOn = func(req request) answer {
			mu.Lock()
			running++
			most = max(most, running)
			mu.Unlock()
			started <- req.ID
			<-release
			mu.Lock()
			running--
			mu.Unlock()
			return answer{ID: req.ID, Key: []byte("k")}
		}
	)
	for id := uint64(1); id <= total; id++ {
		lines = append(lines, line(t, request{ID: id}))
	}
	go func() {
		served <- serveBounded(strings.NewReader(strings.Join(lines, "\n")+"\n"), &out, limit, blockedOn)
	}()
	for range limit {
		<-started
	}
	// With the bound's derivations held, no other may start. A child
	// without the bound starts the rest at once; the wait only gives it
	// the time to, and the test passes however long it is.
	select {
	case id := <-started:
		t.Fatalf("request %d started with %d derivations running, the bound", id, limit)
	case <-time.After(100 * time.Millisecond):
	}
	// Each one let go lets one more in, until all have run.
	for n := limit; n < total; n++ {
		release <- struct{}{}
		<-started
	}
	for range limit {
		release <- struct{}{}
	}
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if most != limit {
		t.Fatalf("at most %d derivations ran at once, want %d", most, limit)
	}
	if n := strings.Count(out.String(), "\n"); n != total {
		t.Fatalf("%d answers, want %d", n, total)
	}
}

// TestChildStderrLogged: with a Logger, each line the child writes to
// its stderr becomes one record of the parent's log.
func TestChildStderrLogged(t *testing.T) {
	// Close returns after the child's stderr and the log of its end are
	// written, so the buffer needs no lock of its own.
	var buf bytes.Buffer
	p := &Process{Command: command("complain"), Logger: slog.New(slog.NewTextHandler(&buf, nil))}
	if _, err := p.DeriveKey(context.Background(), []byte("pw"), []byte("0123456789abcdef"), small); err != nil {
		t.Fatal(err)
	}
	p.Close(5 * time.Second) // waits for the child, and so for its stderr
	logs := buf.String()
	for _, want := range []string{`stderr="first line"`, `stderr="second line"`, `msg="password hashing process stopped"`} {
		if !strings.Contains(logs, want) {
			t.Fatalf("the log has no %s:\n%s", want, logs)
		}
	}
}

// BenchmarkCheck times a Hasher's password check with the work in this
// process and in a child, and reports the child's time over the
// in-process time (process/inline): what the pipe and the JSON cost. With
// the default parameters the check itself dominates; with the smallest
// the cost of the round trip shows. make bench runs it.
func BenchmarkCheck(b *testing.B) {
	for _, c := range []struct {
		name string
		p    identity.Params
	}{{"default", identity.DefaultParams()}, {"smallest", small}} {
		b.Run(c.name, func(b *testing.B) {
			p := &Process{Command: command("serve")}
			defer p.Close(5 * time.Second)
			ctx := context.Background()
			inline, remote := &identity.Hasher{Params: c.p}, &identity.Hasher{Params: c.p, Deriver: p}
			hash, err := inline.Hash(ctx, "correct horse")
			if err != nil {
				b.Fatal(err)
			}
			var took [2]time.Duration
			for b.Loop() {
				for i, h := range []*identity.Hasher{inline, remote} {
					start := time.Now()
					if ok, err := h.Check(ctx, hash, "correct horse"); err != nil || !ok {
						b.Fatalf("check: %v, %v", ok, err)
					}
					took[i] += time.Since(start)
				}
			}
			b.ReportMetric(float64(took[0].Microseconds())/float64(b.N), "inline-µs/check")
			b.ReportMetric(float64(took[1].Microseconds())/float64(b.N), "process-µs/check")
			b.ReportMetric(float64(took[1])/float64(took[0]), "process/inline")
		})
	}
}
