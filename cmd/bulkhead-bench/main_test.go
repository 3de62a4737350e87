package main

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/identity/hashproc"
)

// TestMain runs the tests, or, when a test starts the bench server's
// password hashing process (this test binary with hash-worker), that
// process.
func TestMain(m *testing.M) {
	hashproc.MainIf(os.Args, hashWorkerCommand)
	os.Exit(m.Run())
}

// TestMeterCountsHashing: the CPU of the password hashing process is
// read apart from the servers' (it is not in this process's rusage), and
// another child of this process is not taken for it.
func TestMeterCountsHashing(t *testing.T) {
	p, err := startHashing()
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close(5 * time.Second)
	other := exec.Command("sleep", "30")
	if err := other.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { other.Process.Kill(); other.Wait() }()
	m := cpuMeter{postmaster: -1} // no cluster: only the hashing counts
	h := &identity.Hasher{Deriver: p}
	before := m.read()
	if !before.ok {
		t.Fatal("the meter cannot read /proc")
	}
	for range 10 {
		if err := h.DummyCheck(context.Background(), "guess"); err != nil {
			t.Fatal(err)
		}
	}
	after := m.read()
	if after.hash <= before.hash {
		t.Fatalf("ten argon2id checks in the hashing process: its CPU went from %s to %s", before.hash, after.hash)
	}
	if !isHashWorker(p.Pid()) || isHashWorker(other.Process.Pid) {
		t.Fatal("isHashWorker does not tell the hashing process from another child")
	}
}
