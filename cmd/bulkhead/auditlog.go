package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/bulkhead-dev/bulkhead/audit"
	"github.com/bulkhead-dev/bulkhead/postgres"
)

// sequencer extends the audit chain: it moves events from the inbox into
// the chain every interval, writes each chained event and each signed
// checkpoint as a JSON line to sink (so a truncated tail in the database is
// detectable from outside it), and checkpoints every checkpointEvery events
// or checkpointAge, whichever comes first.
type sequencer struct {
	db              *postgres.DB
	sink            io.Writer // nil: none
	log             *slog.Logger
	interval        time.Duration
	checkpointEvery int64
	checkpointAge   time.Duration
	alarms          *audit.Alarms      // nil: none
	anchor          *audit.WebhookSink // nil: none; receives each signed checkpoint
	mu              sync.Mutex
}

// sinkLine is one line of the JSON-lines sink.
type sinkLine struct {
	Type       string            `json:"type"` // "event" or "checkpoint"
	Seq        int64             `json:"seq,omitempty"`
	Hash       string            `json:"hash,omitempty"`
	Event      json.RawMessage   `json:"event,omitempty"`
	Checkpoint *audit.Checkpoint `json:"checkpoint,omitempty"`
}

func (q *sequencer) run(ctx context.Context) {
	t := time.NewTicker(q.interval)
	defer t.Stop()
	var since int64
	last := time.Now()
	for {
		n, err := q.drain(ctx)
		if err != nil && ctx.Err() == nil {
			q.log.Error("audit sequencer", "err", err)
		}
		since += n
		if since > 0 && (since >= q.checkpointEvery || time.Since(last) >= q.checkpointAge) {
			if err := q.checkpoint(ctx); err != nil && ctx.Err() == nil {
				q.log.Error("audit checkpoint", "err", err)
			} else {
				since, last = 0, time.Now()
			}
		}
		select {
		case <-ctx.Done():
			// Chain what is left, and leave a checkpoint behind.
			fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			q.drain(fctx)
			q.checkpoint(fctx)
			cancel()
			return
		case <-t.C:
		}
	}
}

func (q *sequencer) drain(ctx context.Context) (int64, error) {
	var total int64
	for {
		chained, err := q.db.Sequence(ctx, 1000)
		if err != nil {
			return total, err
		}
		for _, c := range chained {
			q.write(sinkLine{Type: "event", Seq: c.Seq, Hash: hexString(c.Hash), Event: c.Body})
			if q.alarms != nil {
				var e audit.Event
				if json.Unmarshal(c.Body, &e) == nil {
					q.alarms.Observe(ctx, e)
				}
			}
		}
		if q.alarms != nil {
			q.alarms.Tick(ctx)
		}
		total += int64(len(chained))
		if len(chained) < 1000 {
			return total, nil
		}
	}
}

func (q *sequencer) checkpoint(ctx context.Context) error {
	c, err := q.db.Checkpoint(ctx)
	if err != nil || c.Seq == 0 {
		return err
	}
	q.write(sinkLine{Type: "checkpoint", Checkpoint: &c})
	if q.anchor != nil {
		q.anchor.Post(ctx, sinkLine{Type: "checkpoint", Checkpoint: &c})
	}
	return nil
}

func (q *sequencer) write(l sinkLine) {
	if q.sink == nil {
		return
	}
	b, err := json.Marshal(l)
	if err != nil {
		return
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.sink.Write(append(b, '\n'))
}

func hexString(b []byte) string {
	const digits = "0123456789abcdef"
	out := make([]byte, len(b)*2)
	for i, c := range b {
		out[i*2], out[i*2+1] = digits[c>>4], digits[c&15]
	}
	return string(out)
}
