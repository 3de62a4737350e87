// Command config keeps constants, configuration read at start-up and
// clients made in main, and only reads them in the handler: nothing is
// reported.
package main

import (
	"context"
	"os"
	"sync"
	"sync/atomic"

	"github.com/aws/aws-lambda-go/lambda"
)

type Event struct{ TenantID, Region string }

type Client struct{ endpoint string }

// Get reads through the client; it writes nothing.
func (c *Client) Get(ctx context.Context, key string) string { return c.endpoint + "/" + key }

const defaultPlan = "free"

var (
	region   = os.Getenv("AWS_REGION") // configuration, at declaration
	table    string
	client   *Client
	shared   = map[string]string{"plan": defaultPlan}
	limits   struct{ max int }
	mu       sync.RWMutex
	requests atomic.Int64
	failures atomic.Uint32
	errs     int64
	ready    atomic.Bool
)

func init() {
	table = os.Getenv("TABLE")
	shared["region"] = region
	limits.max = 10
}

// reset is for tests; no handler calls it.
func reset() {
	table = ""
	shared = map[string]string{}
}

func HandleRequest(ctx context.Context, ev Event) (string, error) {
	requests.Add(1) // metrics counters
	failures.Add(1)
	atomic.AddInt64(&errs, 1)
	ready.Store(true)

	mu.RLock()
	plan := shared["plan"]
	mu.RUnlock()

	region := ev.Region // shadows the package-level variable
	region += "-" + plan
	lim := limits // a copy
	lim.max = 20
	var cfg struct{ plan string }
	cfg.plan = plan
	return client.Get(ctx, table+region+cfg.plan), nil
}

func main() {
	client = &Client{endpoint: "https://" + region} // once, before lambda.Start
	if os.Getenv("RESET") != "" {
		reset()
	}
	lambda.Start(HandleRequest)
}
