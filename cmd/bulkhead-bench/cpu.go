package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuMeter reads the CPU time of this process (both servers), of its
// password hashing process (a child running hash-worker, when the bench
// server hashes in a process of its own) and of the PostgreSQL cluster
// (the postmaster, its children, and the children that have exited). It
// needs /proc; without it, ok is
// false and the report leaves the columns out.
type cpuMeter struct{ postmaster int }

// cpuSample is one reading.
type cpuSample struct {
	self, hash, pg time.Duration
	ok             bool
}

func newCPUMeter(dataDir string) cpuMeter {
	b, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return cpuMeter{}
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(b), "\n", 2)[0]))
	return cpuMeter{postmaster: pid}
}

// clockTick is the unit of /proc/<pid>/stat's times (USER_HZ, 100 on
// Linux whatever the kernel's own tick).
const clockTick = 10 * time.Millisecond

func (m cpuMeter) read() cpuSample {
	var ru syscall.Rusage
	if m.postmaster == 0 || syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return cpuSample{}
	}
	self := time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return cpuSample{}
	}
	var ticks, hashTicks int64
	me := os.Getpid()
	for _, d := range dirs {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue
		}
		// The command name is in parentheses and may hold spaces; the
		// fields after it are: state, ppid, ... utime (14th), stime
		// (15th), cutime and cstime (the children it has waited for).
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 15 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		switch {
		case pid == m.postmaster:
			// The postmaster waits for each backend that exits, so
			// its children's times hold the CPU of the sessions that
			// have ended: without them, a flood's backends that closed
			// between two readings took their CPU with them, and the
			// difference could be negative.
			cut, _ := strconv.ParseInt(f[13], 10, 64)
			cst, _ := strconv.ParseInt(f[14], 10, 64)
			ticks += ut + st + cut + cst
		case ppid == m.postmaster:
			ticks += ut + st
		case ppid == me && isHashWorker(pid):
			hashTicks += ut + st
		}
	}
	return cpuSample{self: self, hash: time.Duration(hashTicks) * clockTick, pg: time.Duration(ticks) * clockTick, ok: true}
}

// isHashWorker reports whether pid runs this executable's hash-worker
// command (its second argument), rather than a load process.
func isHashWorker(pid int) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	args := strings.Split(string(b), "\x00")
	return len(args) > 1 && args[1] == hashWorkerCommand
}

// perRequest is the CPU each request cost between two samples.
func perRequest(a, b cpuSample, requests uint64) (self, pg time.Duration, ok bool) {
	if !a.ok || !b.ok || requests == 0 {
		return 0, 0, false
	}
	return (b.self - a.self) / time.Duration(requests), (b.pg - a.pg) / time.Duration(requests), true
}

// cpuRate is the CPU used per second of wall time between two samples.
type cpuRate struct {
	self, hash, pg time.Duration
	ok             bool
}

// cpuPerSecond is the CPU used per second over elapsed between two samples.
func cpuPerSecond(a, b cpuSample, elapsed time.Duration) cpuRate {
	if !a.ok || !b.ok || elapsed <= 0 {
		return cpuRate{}
	}
	per := func(d time.Duration) time.Duration { return time.Duration(float64(d) / elapsed.Seconds()) }
	return cpuRate{self: per(b.self - a.self), hash: per(b.hash - a.hash), pg: per(b.pg - a.pg), ok: true}
}
