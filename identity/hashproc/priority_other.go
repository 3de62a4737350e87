//go:build !linux

package hashproc

import "errors"

// lowerPriority is not implemented outside Linux: the child runs at its
// parent's priority.
func lowerPriority(int) error {
	return errors.New("lowering the priority of every thread is implemented on Linux only")
}
