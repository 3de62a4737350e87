// Package lambda is a stand-in for github.com/aws/aws-lambda-go/lambda.
package lambda

// Start runs handler for each invocation.
func Start(handler any) {}
