// Command seedbad is the seed example's bad handler ported to Go: the
// tenant's configuration is fetched on first use and kept in a
// package-level variable, so the next tenant on this warm environment gets
// it too.
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
		cachedTenantConfig = cfg // want `^package-level variable cachedTenantConfig is written on a path reachable from handler HandleRequest; it outlives the invocation and can reach the next tenant \(keep it in the handler, or use a tenant-keyed cache\)$`
	}
	return cachedTenantConfig.Plan, nil
}

func main() {
	lambda.Start(HandleRequest)
}
