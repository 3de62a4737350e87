package audit

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"os"
	"regexp"
	"strings"
	"time"
)

// invalidContextMessage matches the text of a LOG line bulkhead.context()
// logs (RAISE LOG) when a context was present but did not verify: one of
// its fixed reasons (migrations 00016 and 00025), or a tenant that is not active,
// and the session's login role, which is one of bulkhead's app login
// roles (the gateway's bulkhead_gw_…, a function's bulkhead_fn_…, business
// code's in a minter bulkhead_tx_…). With
// log_error_verbosity = verbose the message starts with its SQLSTATE.
var invalidContextMessage = regexp.MustCompile(`^(?:00000: )?bulkhead: (?:invalid tenant context \((` +
	`malformed|unknown key|bad signature|exp or iat missing or not a number|expired|issued in the future|` +
	`lifetime over the maximum|retired key|audience is another login role|issued before the tenant moved` +
	`)\)|tenant context for a tenant that is not active \((suspended|moving|offboarding|offboarded|absent)\)) ` +
	`for role (bulkhead_(?:gw|fn|tx)_[a-z0-9_]{1,51})$`)

// verifierContext is the CONTEXT line PostgreSQL logs after the verifier's
// report (the innermost frame comes first): the PL/pgSQL verifier's RAISE
// LOG, or the native verifier's own (pgext/bulkhead_verifier.c). An app
// role's own RAISE names its own code (inline_code_block, or its
// function), and can create no C function to name anything else.
var verifierContext = regexp.MustCompile(`^(?:PL/pgSQL function bulkhead\.context\(\) line [0-9]+ at RAISE|bulkhead\.context\(\), the native verifier)$`)

// logMessage splits a line of PostgreSQL's stderr log into its severity
// marker (LOG, ERROR, CONTEXT, STATEMENT, …) and its text. The marker is
// the word of capitals before the line's first ":  ", PostgreSQL's
// separator, which the log line prefix does not hold (it is a time, a
// process id, names). A line that continues the one before (a multi-line
// message, statement or context) starts with a tab and has no marker.
func logMessage(line string) (marker, text string, ok bool) {
	line = strings.TrimRight(line, "\r\n")
	if strings.HasPrefix(line, "\t") {
		return "", "", false
	}
	i := strings.Index(line, ":  ")
	if i < 0 {
		return "", "", false
	}
	j := i
	for j > 0 && (line[j-1] >= 'A' && line[j-1] <= 'Z' || line[j-1] >= '0' && line[j-1] <= '9') {
		j--
	}
	if j == i {
		return "", "", false
	}
	return line[j:i], line[i+len(":  "):], true
}

// ParseInvalidContext reads one PostgreSQL server log line (stderr
// format) and returns the event it stands for, if it looks like the
// verifier's report of a context that was present but invalid: forged,
// expired, replayed under another login role, or for a tenant that is not
// active. Such a context is an attack signal: business code holding
// something it should not. The line alone does not prove the verifier
// wrote it: an app role's own RAISE LOG writes the same line, followed by
// a CONTEXT line that names its own code. [LogTail] checks that line too;
// see [ContextFollows].
func ParseInvalidContext(line string) (Event, bool) {
	marker, text, ok := logMessage(line)
	if !ok || marker != "LOG" {
		return Event{}, false
	}
	m := invalidContextMessage.FindStringSubmatch(text)
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

// Follower says what the line after a verifier's report says of it.
type Follower int

// What may follow a report.
const (
	// FromVerifier: a CONTEXT line naming bulkhead.context().
	FromVerifier Follower = iota
	// NotFromVerifier: more of the same message that the verifier's
	// never has (a continuation, DETAIL, HINT, or a CONTEXT line naming
	// other code): an app role's own RAISE LOG.
	NotFromVerifier
	// NoContext: the next message, with no CONTEXT line between (the
	// server logs with log_error_verbosity = terse, which leaves every
	// CONTEXT line out): the report cannot be told from a forgery.
	NoContext
)

// ContextFollows classifies the line that follows a report
// [ParseInvalidContext] accepted.
func ContextFollows(next string) Follower {
	marker, text, ok := logMessage(next)
	switch {
	case !ok:
		return NotFromVerifier
	case marker == "CONTEXT" && verifierContext.MatchString(text):
		return FromVerifier
	}
	switch marker {
	case "DETAIL", "HINT", "QUERY", "CONTEXT", "LOCATION", "STATEMENT":
		return NotFromVerifier
	}
	return NoContext
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
//
// A report counts when the line after it is the CONTEXT line naming
// bulkhead.context() (its detail says "confirmed": true), or when no
// CONTEXT line follows at all (a server that logs with
// log_error_verbosity = terse; "confirmed": false); it is dropped when the
// line after it shows that other code raised it (see [ContextFollows]).
// PostgreSQL writes a message and its CONTEXT line together, so a report
// with nothing after it is decided after one more poll of the file.
func (t *LogTail) Follow(ctx context.Context, emit func(Event)) error {
	defer func() { t.f.Close() }()
	r := bufio.NewReader(t.f)
	var partial string
	var pending *Event // a report waiting for the line after it
	waited := false
	for {
		line, err := r.ReadString('\n')
		if err == nil {
			t.off += int64(len(line))
			line, partial = partial+line, ""
			if pending != nil {
				switch ContextFollows(line) {
				case FromVerifier:
					emit(confirmed(*pending, true))
				case NoContext:
					emit(confirmed(*pending, false))
				}
				pending = nil
			}
			if e, ok := ParseInvalidContext(line); ok {
				pending, waited = &e, false
			}
			continue
		}
		if !errors.Is(err, io.EOF) {
			return err
		}
		partial += line
		t.off += int64(len(line))
		if pending != nil && partial == "" {
			if waited {
				emit(confirmed(*pending, false)) // nothing followed it
				pending = nil
			}
			waited = true
		}
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
				r, t.off, partial, pending = bufio.NewReader(t.f), 0, "", nil
			}
		}
	}
}

// confirmed records in a report's detail whether the CONTEXT line naming
// bulkhead.context() followed it ("confirmed": true), or nothing told it
// from an app role's own RAISE LOG (false: a server logging with
// log_error_verbosity = terse).
func confirmed(e Event, ok bool) Event {
	var d map[string]any
	if json.Unmarshal(e.Detail, &d) != nil || d == nil {
		d = map[string]any{}
	}
	d["confirmed"] = ok
	e.Detail, _ = json.Marshal(d)
	return e
}

func mustJSON(v map[string]string) json.RawMessage {
	b, _ := json.Marshal(v)
	return b
}
