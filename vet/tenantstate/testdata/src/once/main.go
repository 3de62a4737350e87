// Command once initialises lazily with sync.Once: from the request, which
// is reported, and from configuration, which is not.
package main

import (
	"context"
	"os"
	"sync"

	"github.com/aws/aws-lambda-go/lambda"
)

type Event struct{ TenantID string }

type Config struct{ Plan string }

type Client struct{ endpoint string }

var (
	cfgOnce    sync.Once
	cfg        *Config
	clientOnce sync.Once
	client     *Client
	setupOnce  sync.Once
	defaults   Config
)

func load(tenantID string) *Config { return &Config{Plan: tenantID} }

func loadDefaults() { defaults = Config{Plan: os.Getenv("PLAN")} }

func HandleRequest(ctx context.Context, ev Event) (string, error) {
	cfgOnce.Do(func() {
		cfg = load(ev.TenantID) // want `^package-level variable cfg is written on a path reachable from handler HandleRequest`
	})
	clientOnce.Do(func() {
		client = &Client{endpoint: os.Getenv("ENDPOINT")} // captures nothing of the request
	})
	setupOnce.Do(loadDefaults)
	return cfg.Plan + client.endpoint + defaults.Plan, nil
}

func main() {
	lambda.Start(HandleRequest)
}
