package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestReadmeTour runs the README's five-minute tour, block by block, in one
// bash process as a reader would paste it, and compares what each block
// prints with the output the README shows under it. Ids, tokens, key ids
// and the schema name differ from run to run and are compared by shape.
//
// Three things differ from a reader's terminal, each a substitution that
// must find its text in the README (so a changed tour fails here rather
// than going untested): the binary is built into a temporary directory,
// the demo's data lives in one and listens on a free port, and the demo's
// own logging goes to a file instead of the terminal.
func TestReadmeTour(t *testing.T) {
	for _, tool := range []string{"bash", "curl", "jq", "psql"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("the README's tour needs %s: %v; install it with: apt-get install -y curl jq postgresql-client", tool, err)
		}
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	steps, err := tourSteps(string(readme))
	if err != nil {
		t.Fatal(err)
	}
	// Like /tmp/tour, a directory the postgres user can reach when the
	// test runs as root, so that the demo's cluster lives inside it and the
	// tour's last block removes everything (t.TempDir is 0700).
	work, err := os.MkdirTemp("", "bulkhead-tour-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(work, 0o755); err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(work, "tour")
	devLog := filepath.Join(work, "dev.log")
	t.Cleanup(func() {
		removeDevDir(data)
		os.RemoveAll(work)
	})
	subst := []struct{ old, new string }{
		{"go build -o bin/bulkhead ./cmd/bulkhead", "(cd " + root + " && go build -o " + work + "/bin/bulkhead ./cmd/bulkhead)"},
		{"--addr 127.0.0.1:18181 &", "--addr 127.0.0.1:0 >" + devLog + " 2>&1 &"},
		{"/tmp/tour", data},
	}
	for _, s := range subst {
		n := 0
		for i := range steps {
			n += strings.Count(steps[i].cmd, s.old)
			steps[i].cmd = strings.ReplaceAll(steps[i].cmd, s.old, s.new)
		}
		if n == 0 {
			t.Fatalf("the tour no longer contains %q; update TestReadmeTour with it", s.old)
		}
	}

	sh := newShell(t, work)
	var pgDir string
	for i, st := range steps {
		got := sh.run(st.cmd)
		if i == 0 {
			// "Wait for the banner."
			waitForFile(t, devLog, "bulkhead dev is running at http://127.0.0.1:")
			var st devState
			if b, err := os.ReadFile(filepath.Join(data, "state.json")); err != nil || json.Unmarshal(b, &st) != nil || st.PGDir == "" {
				t.Fatalf("the demo's state.json: %v", err)
			}
			pgDir = st.PGDir
		}
		if st.want == "" {
			continue
		}
		// A block that only reads is tried again for a while: the tour tells
		// the reader that events reach the audit trail a moment after the
		// answer.
		for try := 0; normalizeTour(got) != normalizeTour(st.want) && readOnly(st.cmd) && try < 40; try++ {
			time.Sleep(250 * time.Millisecond)
			got = sh.run(st.cmd)
		}
		if normalizeTour(got) != normalizeTour(st.want) {
			log, _ := os.ReadFile(devLog)
			t.Fatalf("tour block %d:\n%s\nprinted:\n%s\nthe README shows:\n%s\n(compared as:\n%s\nagainst:\n%s)\nthe demo's log:\n%s",
				i+1, st.cmd, got, st.want, normalizeTour(got), normalizeTour(st.want), log)
		}
	}
	for _, d := range []string{data, pgDir} {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Fatalf("the tour's last block should have removed %s: %v", d, err)
		}
	}
	log, _ := os.ReadFile(devLog)
	for _, want := range []string{"cross-tenant probe", "alarm firing"} {
		if !strings.Contains(string(log), want) {
			t.Errorf("the tour says the server logged %q; its log:\n%s", want, log)
		}
	}
}

// tourStep is one shell block of the tour and the output shown under it.
type tourStep struct{ cmd, want string }

// tourSteps returns the shell blocks of the README's "Five-minute tour",
// each with the output blocks that follow it.
func tourSteps(readme string) ([]tourStep, error) {
	start := strings.Index(readme, "\n## Five-minute tour\n")
	if start < 0 {
		return nil, fmt.Errorf("README.md has no \"## Five-minute tour\" section")
	}
	tour := readme[start+1:]
	if end := strings.Index(tour, "\n## "); end >= 0 {
		tour = tour[:end]
	}
	var steps []tourStep
	lines := strings.Split(tour, "\n")
	for i := 0; i < len(lines); i++ {
		fence, ok := strings.CutPrefix(lines[i], "```")
		if !ok {
			continue
		}
		var body []string
		for i++; i < len(lines) && lines[i] != "```"; i++ {
			body = append(body, lines[i])
		}
		if i == len(lines) {
			return nil, fmt.Errorf("README.md: a code block in the tour is not closed")
		}
		text := strings.Join(body, "\n") + "\n"
		switch {
		case fence == "sh":
			steps = append(steps, tourStep{cmd: text})
		case len(steps) == 0:
			return nil, fmt.Errorf("README.md: the tour shows output before any command")
		default:
			steps[len(steps)-1].want += text
		}
	}
	if len(steps) < 10 {
		return nil, fmt.Errorf("README.md: found only %d shell blocks in the tour", len(steps))
	}
	return steps, nil
}

// tourVarying matches what differs from run to run, each with what it is
// compared as.
var tourVarying = []struct {
	re   *regexp.Regexp
	with string
}{
	{regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`), "<uuid>"},
	{regexp.MustCompile(`\bt_[0-9a-f]{32}\b`), "t_<uuid>"},
	{regexp.MustCompile(`"request_id": "[0-9a-f]{24}"`), `"request_id": "<id>"`},
	{regexp.MustCompile(`"v1\.[A-Za-z0-9_-]{8,32}\.`), `"v1.<kid>.`},
	{regexp.MustCompile(`"expires_in": [0-9]+,`), `"expires_in": <n>,`},
}

// normalizeTour puts the varying parts of out in a fixed form and drops
// trailing spaces and blank lines at either end.
func normalizeTour(out string) string {
	for _, v := range tourVarying {
		out = v.re.ReplaceAllString(out, v.with)
	}
	lines := strings.Split(out, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t")
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n")
}

// backgroundJob matches a line that starts a background job.
var backgroundJob = regexp.MustCompile(`(?m)[^&]&[ \t]*$`)

// readOnly reports whether a tour block may be run again: it only sends
// GET requests.
func readOnly(cmd string) bool {
	for _, w := range []string{" -d ", " -X ", "psql", "kill"} {
		if strings.Contains(cmd, w) {
			return false
		}
	}
	return strings.Contains(cmd, "curl ") && !backgroundJob.MatchString(cmd)
}

// shell is one bash process that runs the tour's blocks in turn, as a
// terminal would: variables, functions and background jobs carry over.
type shell struct {
	t   *testing.T
	in  io.Writer
	out *bufio.Reader
	n   int
}

func newShell(t *testing.T, dir string) *shell {
	cmd := exec.Command("bash", "--norc", "--noprofile")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "PSQLRC=/dev/null", "PAGER=cat")
	// Its own process group, so that cleanup reaches the demo it starts.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = w, w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() {
		in.Close()
		// The demo stops its PostgreSQL on SIGTERM; give it the time to.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(30 * time.Second):
			syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		time.Sleep(time.Second) // the demo's own shutdown, after bash's
		r.Close()
	})
	return &shell{t: t, in: in, out: bufio.NewReader(r)}
}

// run sends one block and returns everything it printed, stdout and stderr
// in the order they came.
func (s *shell) run(block string) string {
	s.t.Helper()
	s.n++
	marker := "__tour_block_done_" + strconv.Itoa(s.n) + "__"
	if _, err := io.WriteString(s.in, block+"\necho "+marker+"\n"); err != nil {
		s.t.Fatalf("bash: %v", err)
	}
	var b strings.Builder
	for {
		line, err := s.out.ReadString('\n')
		if strings.TrimSuffix(line, "\n") == marker {
			return b.String()
		}
		b.WriteString(line)
		if err != nil {
			s.t.Fatalf("bash stopped during the block:\n%s\nit printed:\n%s", block, b.String())
		}
	}
}

// waitForFile waits until the file at path contains want.
func waitForFile(t *testing.T, path, want string) {
	t.Helper()
	for i := 0; i < 1200; i++ {
		if b, _ := os.ReadFile(path); strings.Contains(string(b), want) {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	b, _ := os.ReadFile(path)
	t.Fatalf("gave up waiting for %q in %s:\n%s", want, path, b)
}
