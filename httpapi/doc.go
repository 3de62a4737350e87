// Package httpapi serves bulkhead's HTTP API: the control plane (tenants,
// users, tokens, contexts) under /v1, and the data plane, a PostgREST
// dialect for tenant tables, under /rest/v1.
//
// Every error is an RFC 9457 application/problem+json body with a stable
// code. 401 means no valid credentials, 403 a decision about something the
// caller can see, 404 something that does not exist or that the caller
// cannot see (the same answer, by the same path, whether or not it exists
// for another tenant). Malformed input is a 4xx and writes nothing.
package httpapi
