package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"regexp"
	"time"
)

// invalidContextLine matches what bulkhead.context() logs (RAISE LOG) when a
// context was present but did not verify.
var invalidContextLine = regexp.MustCompile(`bulkhead: (?:invalid tenant context \(([^)]*)\)|tenant context for a tenant that is not active \(([^)]*)\)) for role (\S+)`)

// ParseInvalidContext reads one PostgreSQL server log line and returns the
// event it stands for, if it is the verifier's report of a context that
// was present but invalid: forged, expired, replayed under another login
// role, or for a tenant that is not active. Such a context is an attack
// signal: business code holding something it should not.
func ParseInvalidContext(line string) (Event, bool) {
	m := invalidContextLine.FindStringSubmatch(line)
	if m == nil {
		return Event{}, false
	}
	why := m[1]
	if why == "" {
		why = "tenant " + m[2]
	}
	return Event{At: time.Now(), Action: "context:Verify", Decision: Invalid, Code: "invalid_context",
		LoginRole: m[3], Detail: mustJSON(map[string]string{"why": why}), Visibility: VisiblePlatform}, true
}

// LogTail follows a PostgreSQL server log for the verifier's reports.
type LogTail struct {
	path string
	f    *os.File
	off  int64
}

// OpenLog opens a PostgreSQL server log at its current end: only what is
// written from now on is reported.
func OpenLog(path string) (*LogTail, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	off, err := f.Seek(0, io.SeekEnd)
	if err != nil {
		f.Close()
		return nil, err
	}
	return &LogTail{path: path, f: f, off: off}, nil
}

// Follow calls emit for every invalid-context report until ctx ends, then
// closes the file. It reopens the log when it is rotated (replaced or
// truncated).
func (t *LogTail) Follow(ctx context.Context, emit func(Event)) error {
	defer func() { t.f.Close() }()
	r := bufio.NewReader(t.f)
	var partial string
	for {
		line, err := r.ReadString('\n')
		if err == nil {
			t.off += int64(len(line))
			if e, ok := ParseInvalidContext(partial + line); ok {
				emit(e)
			}
			partial = ""
			continue
		}
		if !errors.Is(err, io.EOF) {
			return err
		}
		partial += line
		t.off += int64(len(line))
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(250 * time.Millisecond):
		}
		// Rotated: a new file at the path, or this one cut shorter.
		if fi, serr := os.Stat(t.path); serr == nil {
			cur, _ := t.f.Stat()
			if !os.SameFile(fi, cur) || fi.Size() < t.off {
				t.f.Close()
				if t.f, err = os.Open(t.path); err != nil {
					return err
				}
				r, t.off, partial = bufio.NewReader(t.f), 0, ""
			}
		}
	}
}

func mustJSON(v map[string]string) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
