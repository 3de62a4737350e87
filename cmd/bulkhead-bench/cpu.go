package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// cpuMeter reads the CPU time of this process (both servers) and of the
// PostgreSQL cluster (the postmaster and its children). It needs /proc;
// without it, ok is false and the report leaves the columns out.
type cpuMeter struct{ postmaster int }

// cpuSample is one reading.
type cpuSample struct {
	self, pg time.Duration
	ok       bool
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
	var ticks int64
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
		// fields after it are: state, ppid, ... utime (14th), stime (15th).
		i := strings.LastIndexByte(string(b), ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(string(b[i+1:]))
		if len(f) < 13 {
			continue
		}
		ppid, _ := strconv.Atoi(f[1])
		if pid != m.postmaster && ppid != m.postmaster {
			continue
		}
		ut, _ := strconv.ParseInt(f[11], 10, 64)
		st, _ := strconv.ParseInt(f[12], 10, 64)
		ticks += ut + st
	}
	return cpuSample{self: self, pg: time.Duration(ticks) * clockTick, ok: true}
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
	self, pg time.Duration
	ok       bool
}

// cpuPerSecond is the CPU used per second over elapsed between two samples.
func cpuPerSecond(a, b cpuSample, elapsed time.Duration) cpuRate {
	if !a.ok || !b.ok || elapsed <= 0 {
		return cpuRate{}
	}
	per := func(d time.Duration) time.Duration { return time.Duration(float64(d) / elapsed.Seconds()) }
	return cpuRate{self: per(b.self - a.self), pg: per(b.pg - a.pg), ok: true}
}
