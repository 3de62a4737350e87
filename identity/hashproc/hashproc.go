// Package hashproc runs argon2id password work in a child process.
//
// A password check takes tens of milliseconds of a CPU and allocates its
// argon2id memory (19 MiB with the default parameters). In the server's
// own process that work shares the Go scheduler's processors and the
// heap with every tenant's requests: a burst of failed logins, even one
// held to the server's budget of checks, delays other tenants' requests
// several times more than the same work in a process of its own (see
// docs/PERFORMANCE.md). A [Process] is an [identity.KeyDeriver] that
// sends each derivation to a child running [Serve], which lowers its own
// CPU priority (nice 19), so that the kernel gives the server and
// PostgreSQL the CPUs first.
//
// The child gets the password, the salt and the parameters, and answers
// with the key; the salts, the PHC strings and the constant-time
// comparison stay in the server. The child is the same executable, run
// with a hidden command (bulkhead hash-worker); it exits when its
// standard input closes, so it does not outlive the server.
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
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/identity"
)

// ErrUnavailable is returned when no child can take the work: it could
// not be started, it exited with work in flight, or it is being
// restarted. The request may be retried.
var ErrUnavailable = fault.E(fault.Unavailable, "password_hashing_unavailable",
	"Passwords cannot be checked at the moment; retry shortly.")

// maxLine bounds one request or answer on the pipe: a password of
// identity.MaxPasswordLen bytes in base64 and the rest fit well within it.
const maxLine = 8 << 10

// restartEvery is the shortest time between two starts of the child, so
// that a child that dies at once is not restarted in a loop.
var restartEvery = time.Second // a variable for the tests

// request is one derivation, a JSON line on the child's standard input.
type request struct {
	ID       uint64 `json:"id"`
	Memory   uint32 `json:"m"`
	Time     uint32 `json:"t"`
	Threads  uint8  `json:"p"`
	KeyLen   uint32 `json:"k"`
	Salt     []byte `json:"salt"`
	Password []byte `json:"pw"`
	// Deadline, in Unix milliseconds, is when the caller stops waiting;
	// the child skips work it starts after that. Zero means none.
	Deadline int64 `json:"deadline,omitempty"`
}

// answer is the child's reply, a JSON line on its standard output.
type answer struct {
	ID    uint64 `json:"id"`
	Key   []byte `json:"key,omitempty"`
	Error string `json:"error,omitempty"`
	// Skipped says the deadline passed before the work began.
	Skipped bool `json:"skipped,omitempty"`
}

// Process is an [identity.KeyDeriver] that runs the derivations in a
// child process, started on first use (or by [Process.Start]) and again
// after it exits. Its fields must not change after first use, and it
// must not be copied.
type Process struct {
	// Command returns a new, unstarted command for the child: one that
	// runs [Serve] on its standard input and output, such as this
	// executable with its hidden hash-worker command. Process sets the
	// command's Stdin and Stdout; when Stderr is nil, the child's stderr
	// goes to Logger, or to the parent's stderr without one.
	Command func() *exec.Cmd
	// Logger, when not nil, records the child's starts and exits, and
	// the lines it writes to its stderr when the command has no Stderr.
	Logger *slog.Logger

	mu      sync.Mutex
	cur     *child
	started time.Time
	closed  bool
	starts  atomic.Uint64
}

// child is one run of the child process.
type child struct {
	cmd *exec.Cmd
	in  *os.File // the write end of the child's standard input
	// wslot is held by the one writer on in at a time; a channel rather
	// than a mutex, so that a caller waiting for it can give up when its
	// context ends.
	wslot chan struct{}
	mu    sync.Mutex // guards calls, next and err
	next  uint64
	// calls are the derivations sent and not answered yet.
	calls map[uint64]chan answer
	err   error         // why the child ended, once it has
	done  chan struct{} // closed when the child has ended
	// stopping is set by Close before it closes in: the end that
	// follows is asked for, not a failure.
	stopping atomic.Bool
}

// Start starts the child now, so that a child that cannot run is found
// when the server starts rather than at the first login.
func (p *Process) Start() error {
	_, err := p.child()
	return err
}

// Pid returns the process id of the running child, or 0 when none is
// running (not started yet, exited, or closed).
func (p *Process) Pid() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur == nil {
		return 0
	}
	select {
	case <-p.cur.done:
		return 0
	default:
		return p.cur.cmd.Process.Pid
	}
}

// child returns the running child, starting one if there is none.
func (p *Process) child() (*child, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return nil, fail(errors.New("closed"))
	}
	if c := p.cur; c != nil {
		select {
		case <-c.done:
		default:
			return c, nil
		}
	}
	if p.Command == nil {
		return nil, fail(errors.New("no command to start the child"))
	}
	if !p.started.IsZero() && time.Since(p.started) < restartEvery {
		return nil, fail(errors.New("the child exited; restarting it shortly"))
	}
	p.started = time.Now()
	c, err := start(p.Command(), p.Logger)
	if err != nil {
		return nil, fail(err)
	}
	p.cur = c
	p.starts.Add(1)
	return c, nil
}

// Starts returns how many times a child has been started: once at the
// start, and once more for each restart after a child ended.
func (p *Process) Starts() uint64 { return p.starts.Load() }

func fail(cause error) error {
	e := fault.From(ErrUnavailable, fmt.Errorf("password hashing process: %w", cause))
	e.Op = "hashproc.Process"
	return e
}

func start(cmd *exec.Cmd, log *slog.Logger) (*child, error) {
	// The pipe is made here rather than by cmd.StdinPipe, so that writes
	// to it can be given a deadline.
	r, in, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	cmd.Stdin = r
	out, err := cmd.StdoutPipe()
	if err != nil {
		r.Close()
		in.Close()
		return nil, err
	}
	if cmd.Stderr == nil {
		cmd.Stderr = os.Stderr
		if log != nil {
			cmd.Stderr = &lineLog{log: log}
		}
	}
	err = cmd.Start()
	r.Close() // the child has its own copy, or there is no child
	if err != nil {
		in.Close()
		return nil, fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	c := &child{cmd: cmd, in: in, wslot: make(chan struct{}, 1), calls: map[uint64]chan answer{}, done: make(chan struct{})}
	if log != nil {
		log.Info("password hashing process started", "pid", cmd.Process.Pid)
	}
	go c.read(out, log)
	return c, nil
}

// lineLog logs each line the child writes to its stderr (a priority it
// could not lower, a panic), so that they reach the server's log in its
// format rather than interleaved with it. exec.Cmd calls Write from one
// goroutine.
type lineLog struct {
	log *slog.Logger
	buf []byte
}

func (l *lineLog) Write(p []byte) (int, error) {
	l.buf = append(l.buf, p...)
	for {
		i := bytes.IndexByte(l.buf, '\n')
		if i < 0 {
			break
		}
		l.log.Warn("password hashing process", "stderr", string(l.buf[:i]))
		l.buf = l.buf[i+1:]
	}
	if len(l.buf) > maxLine { // a line that never ends: log what there is
		l.log.Warn("password hashing process", "stderr", string(l.buf))
		l.buf = l.buf[:0]
	}
	return len(p), nil
}

// read delivers the child's answers until its output ends, then waits
// for it and fails whatever was still in flight.
func (c *child) read(out io.Reader, log *slog.Logger) {
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 0, 1024), maxLine)
	var bad error
	for sc.Scan() {
		var a answer
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			bad = fmt.Errorf("malformed answer: %w", err)
			break
		}
		c.mu.Lock()
		ch, ok := c.calls[a.ID]
		delete(c.calls, a.ID)
		c.mu.Unlock()
		if ok {
			ch <- a // buffered: one answer per call
		}
	}
	if bad == nil {
		bad = sc.Err()
	}
	// The child is not to be trusted with more work either way: a
	// malformed answer means its output is not ours to read.
	c.in.Close()
	if bad != nil {
		_ = c.cmd.Process.Kill()
	}
	werr := c.cmd.Wait()
	err := errors.Join(bad, werr)
	if err == nil {
		err = errors.New("exited")
	}
	if log != nil {
		if c.stopping.Load() && bad == nil && werr == nil {
			log.Info("password hashing process stopped", "pid", c.cmd.Process.Pid)
		} else {
			log.Warn("password hashing process ended", "pid", c.cmd.Process.Pid, "err", err)
		}
	}
	c.mu.Lock()
	c.err = err
	c.calls = nil
	c.mu.Unlock()
	close(c.done)
}

// errNotSent says a request was not written because its caller's
// context ended first.
var errNotSent = errors.New("the context ended before the request was written")

// send writes req to the child and returns the channel its answer comes
// on. It gives up when ctx ends before the request is written, so that
// a child that has stopped reading, with the pipe full, does not hold
// callers past their contexts: it returns errNotSent then, and the
// request is not sent. A request cut off part-way leaves the pipe
// unreadable, so the child is killed and restarted by a later call.
func (c *child) send(ctx context.Context, req request) (chan answer, error) {
	ch := make(chan answer, 1)
	c.mu.Lock()
	if c.calls == nil {
		err := c.err
		c.mu.Unlock()
		return nil, err
	}
	c.next++
	req.ID = c.next
	c.calls[req.ID] = ch
	c.mu.Unlock()
	line, err := json.Marshal(req)
	if err != nil {
		c.forget(req.ID)
		return nil, err
	}
	select {
	case c.wslot <- struct{}{}:
	case <-ctx.Done():
		c.forget(req.ID)
		return nil, errNotSent
	case <-c.done:
		c.forget(req.ID)
		return nil, c.err
	}
	n, err := c.write(ctx, append(line, '\n'))
	<-c.wslot
	if err != nil {
		c.forget(req.ID)
		if n > 0 {
			_ = c.cmd.Process.Kill()
			return nil, fmt.Errorf("writing to the child: cut off after %d bytes: %w", n, err)
		}
		if ctx.Err() != nil || errors.Is(err, os.ErrDeadlineExceeded) {
			return nil, errNotSent
		}
		return nil, fmt.Errorf("writing to the child: %w", err)
	}
	return ch, nil
}

// write writes line to the child, ending the write when ctx ends. The
// caller holds wslot. A line of at most PIPE_BUF bytes (4 KiB on Linux,
// which every request without a long password fits) is written whole or
// not at all.
func (c *child) write(ctx context.Context, line []byte) (int, error) {
	d, _ := ctx.Deadline() // zero when there is none
	if err := c.in.SetWriteDeadline(d); err != nil {
		// Not a pipe the runtime can poll: write without a deadline.
		return c.in.Write(line)
	}
	// A context canceled without a deadline ends the write too; the
	// flag keeps a cancellation that comes after the write from moving
	// the next writer's deadline.
	var (
		mu      sync.Mutex
		writing = true
	)
	stop := context.AfterFunc(ctx, func() {
		mu.Lock()
		defer mu.Unlock()
		if writing {
			_ = c.in.SetWriteDeadline(time.Now())
		}
	})
	n, err := c.in.Write(line)
	stop()
	mu.Lock()
	writing = false
	mu.Unlock()
	return n, err
}

func (c *child) forget(id uint64) {
	c.mu.Lock()
	if c.calls != nil {
		delete(c.calls, id)
	}
	c.mu.Unlock()
}

// DeriveKey sends the derivation to the child and waits for its answer,
// the child's end, or ctx's end. When ctx ends first it returns
// [identity.ErrCanceled]; the child skips the work if it has not begun.
func (p *Process) DeriveKey(ctx context.Context, password, salt []byte, prm identity.Params) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, canceled(ctx)
	}
	c, err := p.child()
	if err != nil {
		return nil, err
	}
	req := request{Memory: prm.Memory, Time: prm.Time, Threads: prm.Threads, KeyLen: prm.KeyLen, Salt: salt, Password: password}
	if d, ok := ctx.Deadline(); ok {
		req.Deadline = d.UnixMilli()
	}
	ch, err := c.send(ctx, req)
	if err != nil {
		if errors.Is(err, errNotSent) {
			return nil, canceled(ctx)
		}
		return nil, fail(err)
	}
	select {
	case a := <-ch:
		if a.Skipped {
			return nil, canceled(ctx)
		}
		if a.Error != "" {
			e := fault.From(identity.ErrHasherConfig, errors.New(a.Error))
			e.Op = "hashproc.Process.DeriveKey"
			return nil, e
		}
		return a.Key, nil
	case <-c.done:
		// The answer may have come just before the end.
		select {
		case a := <-ch:
			if a.Error == "" && !a.Skipped {
				return a.Key, nil
			}
		default:
		}
		return nil, fail(c.err)
	case <-ctx.Done():
		c.forget(req.ID)
		return nil, canceled(ctx)
	}
}

func canceled(ctx context.Context) error {
	cause := context.Cause(ctx)
	if cause == nil {
		cause = errors.New("the deadline passed before the child began the work")
	}
	e := fault.From(identity.ErrCanceled, cause)
	e.Op = "hashproc.Process.DeriveKey"
	return e
}

// Close ends the child: it closes its input, so the child finishes what
// it has begun and exits, and kills it if it has not exited within
// grace. Derivations still waiting fail with [ErrUnavailable]; later
// ones too.
func (p *Process) Close(grace time.Duration) error {
	p.mu.Lock()
	p.closed = true
	c := p.cur
	p.mu.Unlock()
	if c == nil {
		return nil
	}
	c.stopping.Store(true)
	// Close the input between two requests, so that the child sees a
	// clean end; a writer that does not let go within grace (a child
	// that has stopped reading) gets its input closed under it.
	timer := time.NewTimer(grace)
	defer timer.Stop()
	select {
	case c.wslot <- struct{}{}:
		c.in.Close()
		<-c.wslot
	case <-c.done:
	case <-timer.C:
		c.in.Close()
		_ = c.cmd.Process.Kill()
		<-c.done
		return nil
	}
	select {
	case <-c.done:
	case <-timer.C:
		_ = c.cmd.Process.Kill()
		<-c.done
	}
	return nil
}

// Run is the whole of the child: it lowers its own CPU priority to nice
// [Niceness] (where the system allows it; a failure is written to
// stderr and the child runs on) and then serves in until it ends.
func Run(in io.Reader, out, stderr io.Writer) error {
	if err := lowerPriority(Niceness); err != nil {
		fmt.Fprintf(stderr, "hashproc: running at the parent's priority: %v\n", err)
	}
	return Serve(in, out)
}

// MainIf makes this process the child, and exits, when it was started as
// one: when args[1] is command. An executable whose Process runs itself
// with command calls it first in main, and so does its test binary's
// TestMain, which the command runs when a test starts a Process.
func MainIf(args []string, command string) {
	if len(args) < 2 || args[1] != command {
		return
	}
	if err := Run(os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Exit(0)
}

// Niceness is the child's scheduling niceness, the lowest priority. At
// nice 19 the kernel weighs a thread at about 1/70 of one at nice 0 (the
// server's, PostgreSQL's), so password work yields the CPUs to them when
// they need them and runs when they leave a CPU idle. On a machine kept
// busy by tenants' requests, logins wait: that is the point. Measured
// on 2 CPUs, nice 19 left a quiet tenant's p99 lower during login
// floods than nice 10 did (docs/PERFORMANCE.md).
const Niceness = 19

// Serve is the child's side: it reads derivations from in, one JSON line
// each, runs at most GOMAXPROCS of them at once, and writes each answer
// to out as it is ready. It returns nil when in ends, after the work in
// flight is answered, and an error for input that is not a derivation
// (the parent never sends one) or when out cannot be written.
func Serve(in io.Reader, out io.Writer) error {
	return serveBounded(in, out, runtime.GOMAXPROCS(0), derive)
}

// serveBounded is Serve with the bound and the derivation as
// parameters, for the tests.
func serveBounded(in io.Reader, out io.Writer, limit int, derive func(request) answer) error {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 0, 1024), maxLine)
	w := bufio.NewWriter(out)
	var (
		mu    sync.Mutex
		werr  error
		wg    sync.WaitGroup
		slots = make(chan struct{}, limit)
		reply = func(a answer) {
			line, _ := json.Marshal(a) // answer has nothing json.Marshal refuses
			mu.Lock()
			defer mu.Unlock()
			if werr != nil {
				return
			}
			if _, werr = w.Write(append(line, '\n')); werr == nil {
				werr = w.Flush()
			}
		}
	)
	var err error
	for sc.Scan() {
		var req request
		if err = json.Unmarshal(sc.Bytes(), &req); err != nil {
			err = fmt.Errorf("hashproc: malformed request: %w", err)
			break
		}
		slots <- struct{}{}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-slots }()
			reply(derive(req))
		}()
	}
	if err == nil && sc.Err() != nil {
		err = fmt.Errorf("hashproc: reading requests: %w", sc.Err())
	}
	wg.Wait()
	if err == nil && werr != nil {
		err = fmt.Errorf("hashproc: writing answers: %w", werr)
	}
	return err
}

// derive runs one request; it skips one whose caller has stopped waiting.
func derive(req request) answer {
	if req.Deadline != 0 && time.Now().UnixMilli() >= req.Deadline {
		return answer{ID: req.ID, Skipped: true}
	}
	key, err := identity.DeriveKey(req.Password, req.Salt, identity.Params{
		Memory: req.Memory, Time: req.Time, Threads: req.Threads, KeyLen: req.KeyLen})
	if err != nil {
		return answer{ID: req.ID, Error: err.Error()}
	}
	return answer{ID: req.ID, Key: key}
}
