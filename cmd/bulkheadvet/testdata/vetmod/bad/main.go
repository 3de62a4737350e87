// Command bad caches the first tenant's configuration for every tenant.
package main

import (
	"context"

	"github.com/aws/aws-lambda-go/lambda"
)

type Event struct{ TenantID string }

type TenantConfig struct{ Plan string }

var cachedTenantConfig *TenantConfig

func fetchConfig(ctx context.Context, tenantID string) (*TenantConfig, error) {
	return &TenantConfig{Plan: "plan-of-" + tenantID}, nil
}

func HandleRequest(ctx context.Context, event Event) (string, error) {
	if cachedTenantConfig == nil {
		cfg, err := fetchConfig(ctx, event.TenantID)
		if err != nil {
			return "", err
		}
		cachedTenantConfig = cfg
	}
	return cachedTenantConfig.Plan, nil
}

func main() {
	lambda.Start(HandleRequest)
}
