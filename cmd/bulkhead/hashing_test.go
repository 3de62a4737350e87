package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
)

// TestServePasswordHashing logs in through serve with each
// --password-hashing: a right password gets a token, a wrong one and an
// unknown user the same 401. With "process" the hashing runs in a child
// (this test binary, as hash-worker) that carries none of the server's
// environment, and that exits when the server stops.
func TestServePasswordHashing(t *testing.T) {
	pg := pgtest.NewDB(t)
	cmd := cli(pg.AdminURL)
	if _, err := cmd("tenants", "create", "acme"); err != nil {
		t.Fatal(err)
	}
	t.Setenv("BULKHEAD_USER_PASSWORD", "correct horse battery")
	if out, err := cmd("users", "create", "--tenant", "acme", "--email", "ann@acme.test"); err != nil {
		t.Fatalf("users create: %q %v", out, err)
	}
	t.Setenv("BULKHEAD_DATABASE_URL", pg.AdminURL)
	started := regexp.MustCompile(`password hashing process started.*pid=(\d+)`)
	for _, mode := range []string{"process", "inline"} {
		t.Run(mode, func(t *testing.T) {
			stdout, stderr, stop := start(t, "serve", "--addr", "127.0.0.1:0", "--password-hashing", mode, "--password-checks", "100", "--metrics-addr", "127.0.0.1:0")
			re := regexp.MustCompile(`serving on (http://\S+)`)
			waitFor(t, "the server", stderr, func() bool { return re.MatchString(stdout.String()) })
			base := re.FindStringSubmatch(stdout.String())[1]
			login := func(tenant, email, pw string) (int, string) {
				res, err := http.Post(base+"/v1/auth/token", "application/json",
					strings.NewReader(`{"tenant":"`+tenant+`","email":"`+email+`","password":"`+pw+`"}`))
				if err != nil {
					t.Fatal(err)
				}
				defer res.Body.Close()
				b, _ := io.ReadAll(res.Body)
				return res.StatusCode, string(b)
			}
			if code, body := login("acme", "ann@acme.test", "correct horse battery"); code != http.StatusOK || !strings.Contains(body, `"access_token"`) {
				t.Fatalf("right password: %d %s", code, body)
			}
			for _, c := range [][3]string{{"acme", "ann@acme.test", "correct horse batterz"}, {"acme", "bob@acme.test", "correct horse battery"}, {"nobody", "ann@acme.test", "correct horse battery"}} {
				if code, body := login(c[0], c[1], c[2]); code != http.StatusUnauthorized || !strings.Contains(body, `"code":"invalid_credentials"`) {
					t.Fatalf("login %v: %d %s, want 401 invalid_credentials", c, code, body)
				}
			}
			m := started.FindStringSubmatch(stderr.String())
			if mode == "inline" {
				if m != nil {
					t.Fatalf("inline hashing started a process:\n%s", stderr.String())
				}
				stop()
				return
			}
			if m == nil {
				t.Fatalf("no hashing process in the log:\n%s", stderr.String())
			}
			pid, _ := strconv.Atoi(m[1])
			env, err := os.ReadFile("/proc/" + m[1] + "/environ")
			if err != nil {
				t.Fatalf("the hashing process %d: %v", pid, err)
			}
			if strings.Contains(string(env), "BULKHEAD_") {
				t.Fatalf("the hashing process has the server's environment: %q", env)
			}
			// Killed, the child is started again by the next login that
			// needs it; meanwhile logins get 503, never a 500 or a pass.
			if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			for try := 0; ; try++ {
				if try == 100 {
					t.Fatalf("no login passed in 10s after the child was killed:\n%s", stderr.String())
				}
				code, body := login("acme", "ann@acme.test", "correct horse battery")
				if code == http.StatusOK {
					break
				}
				if code != http.StatusServiceUnavailable || !strings.Contains(body, `"code":"password_hashing_unavailable"`) {
					t.Fatalf("login with the child killed: %d %s", code, body)
				}
				time.Sleep(100 * time.Millisecond)
			}
			all := started.FindAllStringSubmatch(stderr.String(), -1)
			if len(all) != 2 || all[1][1] == m[1] {
				t.Fatalf("want a second hashing process after the kill, got %v", all)
			}
			m = all[1]
			pid, _ = strconv.Atoi(m[1])
			// The metrics say so: running, started twice.
			maddr := regexp.MustCompile(`msg="serving metrics" addr=(\S+)`).FindStringSubmatch(stderr.String())
			if maddr == nil {
				t.Fatalf("no metrics address in the log:\n%s", stderr.String())
			}
			res, err := http.Get("http://" + maddr[1] + "/metrics")
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			for _, want := range []string{"bulkhead_password_hashing_up 1\n", "bulkhead_password_hashing_starts_total 2\n"} {
				if !strings.Contains(string(b), want) {
					t.Fatalf("metrics lack %q", want)
				}
			}
			if err := stop(); err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat("/proc/" + m[1]); err == nil {
				t.Fatalf("the hashing process %d outlived the server", pid)
			}
			// The kill is a warning; the stop at shutdown is not.
			logs := stderr.String()
			if !strings.Contains(logs, `level=WARN msg="password hashing process ended" pid=`+all[0][1]) ||
				!strings.Contains(logs, `level=INFO msg="password hashing process stopped" pid=`+m[1]) {
				t.Fatalf("the log does not tell the kill from the stop:\n%s", logs)
			}
		})
	}
}

// hashingHelperEnv makes the test binary run hashingHelper instead of the
// tests (TestMain).
const hashingHelperEnv = "BULKHEAD_TEST_HASHING_HELPER"

// hashingHelper is TestHashingChildAfterUpgrade's server side, in a
// copy of the test binary: it starts the hashing child as serve does,
// says "ready", and on a line from stdin kills the child and waits for a
// restarted one to derive the right key. It prints "ok" or why not.
func hashingHelper() int {
	p, err := startHashing(slog.New(slog.NewTextHandler(os.Stderr, nil)))
	if err != nil {
		fmt.Println("start:", err)
		return 1
	}
	defer p.Close(5 * time.Second)
	fmt.Println("ready")
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		fmt.Println("stdin:", err)
		return 1
	}
	if err := syscall.Kill(p.Pid(), syscall.SIGKILL); err != nil {
		fmt.Println("kill:", err)
		return 1
	}
	prm := identity.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}
	pw, salt := []byte("correct horse"), []byte("0123456789abcdef")
	want, err := identity.DeriveKey(pw, salt, prm)
	if err != nil {
		fmt.Println("derive:", err)
		return 1
	}
	var last error
	for range 50 { // the restart waits a second after the last start
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		key, err := p.DeriveKey(ctx, pw, salt, prm)
		cancel()
		if err == nil && bytes.Equal(key, want) && p.Starts() == 2 {
			fmt.Println("ok")
			return 0
		}
		last = err
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Printf("no restarted child derived the key: starts %d, last error %v\n", p.Starts(), last)
	return 1
}

// TestHashingChildAfterUpgrade: a server whose executable is replaced on
// disk (an upgrade in place) restarts a crashed hashing child from its
// own file, not from the new one at the same path. The server here is a
// copy of the test binary, run as hashingHelper; the path is then
// replaced with a script that exits at once.
func TestHashingChildAfterUpgrade(t *testing.T) {
	if _, err := os.Stat("/proc/self/exe"); err != nil {
		t.Skip("no /proc/self/exe: the child is started by the path")
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "bulkhead")
	bin, err := os.ReadFile(os.Args[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, bin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	cmd.Env = append(os.Environ(), hashingHelperEnv+"=1")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	lines := bufio.NewReader(out)
	if l, err := lines.ReadString('\n'); l != "ready\n" {
		t.Fatalf("helper: %q %v\n%s", l, err, stderr.String())
	}
	// The upgrade: a new file renamed over the old path.
	next := filepath.Join(dir, "bulkhead.new")
	if err := os.WriteFile(next, []byte("#!/bin/sh\nexit 3\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(next, exe); err != nil {
		t.Fatal(err)
	}
	if _, err := in.Write([]byte("go\n")); err != nil {
		t.Fatal(err)
	}
	l, _ := lines.ReadString('\n')
	if err := cmd.Wait(); err != nil || l != "ok\n" {
		t.Fatalf("after the upgrade: %q %v\n%s", l, err, stderr.String())
	}
}
