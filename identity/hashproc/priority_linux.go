package hashproc

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// lowerPriority sets the niceness of every thread of this process. On
// Linux setpriority(PRIO_PROCESS, tid) changes one thread, and a thread
// takes its creator's niceness, so once every thread has it, the threads
// the Go runtime starts later have it too. It goes over the threads until
// it finds none it has not set, in case the runtime started one meanwhile.
func lowerPriority(nice int) error {
	done := map[int]bool{}
	for {
		tasks, err := os.ReadDir("/proc/self/task")
		if err != nil {
			return fmt.Errorf("listing threads: %w", err)
		}
		more := false
		for _, t := range tasks {
			tid, err := strconv.Atoi(t.Name())
			if err != nil || done[tid] {
				continue
			}
			more = true
			err = syscall.Setpriority(syscall.PRIO_PROCESS, tid, nice)
			if errors.Is(err, syscall.ESRCH) { // the thread has exited
				err = nil
			}
			if err != nil {
				return fmt.Errorf("setting thread %d to nice %d: %w", tid, nice, err)
			}
			done[tid] = true
		}
		if !more {
			return nil
		}
	}
}
