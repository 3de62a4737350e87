package pgcluster

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// ownerFile names the file in a TempDir directory that holds the process
// id of the process that made it.
const ownerFile = "owner.pid"

// TempDir makes a directory for a throwaway cluster in the system's
// temporary directory, named prefix followed by random characters, and
// records this process as its owner. First it removes what earlier
// processes left there under the same prefix and then exited without
// cleaning up (killed, say): each such directory's cluster is stopped
// and the directory removed. It returns the new directory and the ones
// it removed.
//
// Only directories with an owner file this user wrote, naming a process
// that no longer runs, are touched, and a cluster's postmaster is
// signalled only when its command line names that directory's data.
func TempDir(prefix string) (dir string, swept []string, err error) {
	old, _ := filepath.Glob(filepath.Join(os.TempDir(), prefix+"*"))
	for _, d := range old {
		if removeStale(d) {
			swept = append(swept, d)
		}
	}
	dir, err = os.MkdirTemp("", prefix)
	if err != nil {
		return "", swept, err
	}
	if err := os.WriteFile(filepath.Join(dir, ownerFile), []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		os.RemoveAll(dir)
		return "", swept, err
	}
	return dir, swept, nil
}

// removeStale removes dir, stopping its cluster first, when it is this
// user's and its owner has exited. It reports whether it did.
func removeStale(dir string) bool {
	if fi, err := os.Lstat(dir); err != nil || !fi.IsDir() {
		return false
	}
	// The owner file, not the directory, says whose it is: as root, the
	// directory belongs to the cluster's system user.
	of := filepath.Join(dir, ownerFile)
	fi, err := os.Lstat(of)
	if err != nil || !fi.Mode().IsRegular() {
		return false
	}
	if st, ok := fi.Sys().(*syscall.Stat_t); !ok || int(st.Uid) != os.Getuid() {
		return false
	}
	owner, ok := readPID(of)
	if !ok || alive(owner) {
		return false
	}
	pgdata := filepath.Join(dir, "pgdata")
	if pm, ok := readPID(filepath.Join(pgdata, "postmaster.pid")); ok && alive(pm) {
		if !postmasterOf(pm, pgdata) {
			return false // a process we did not start: leave it and its files
		}
		// Immediate shutdown: the postmaster ends its children and exits.
		syscall.Kill(pm, syscall.SIGQUIT)
		for i := 0; alive(pm); i++ {
			if i == 100 {
				return false
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return os.RemoveAll(dir) == nil
}

// readPID reads the process id on the first line of path.
func readPID(path string) (int, bool) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, false
	}
	line, _, _ := bytes.Cut(b, []byte("\n"))
	pid, err := strconv.Atoi(strings.TrimSpace(string(line)))
	return pid, err == nil && pid > 0
}

// alive reports whether process pid exists (whoever runs it).
func alive(pid int) bool {
	err := syscall.Kill(pid, 0)
	return err == nil || errors.Is(err, syscall.EPERM)
}

// postmasterOf reports whether process pid's command line names pgdata,
// as pg_ctl starts the postmaster (postgres -D pgdata). Without /proc it
// is false: nothing is signalled.
func postmasterOf(pid int, pgdata string) bool {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	for _, arg := range bytes.Split(b, []byte{0}) {
		if string(arg) == pgdata {
			return true
		}
	}
	return false
}
