// Command good fetches the tenant's configuration in the handler, every
// time.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

type Event struct{ TenantID string }

type TenantConfig struct{ Plan string }

func fetchConfig(ctx context.Context, tenantID string) (*TenantConfig, error) {
	return &TenantConfig{Plan: "plan-of-" + tenantID}, nil
}

func HandleRequest(ctx context.Context, event Event) (string, error) {
	cfg, err := fetchConfig(ctx, event.TenantID)
	if err != nil {
		return "", err
	}
	return cfg.Plan, nil
}

func main() {
	lambda.Start(HandleRequest)
}
