// Package probe is a black-box negative tester for multi-tenant HTTP APIs:
// given two tenants' credentials, it plants canary objects as tenant B and
// then tries, as tenant A and with tokens forged from A's, to read, list,
// filter, change, delete and refer to them. `bulkhead probe` is its
// command; docs/probe.md lists every check.
//
// It works on any API, not only bulkhead's. [Bulkhead] describes
// bulkhead's own (the PostgREST-dialect data API and /v1/tenants/{id});
// [LoadOpenAPI] derives a description from an OpenAPI 3 document, whose
// request schemas give the bodies of B's canaries: every string field a
// fresh "canary-<12 hex>" value, every other required field a value of
// its type.
//
// # Verdicts
//
// Each check is one request, sent as A, then with each tampered token
// ([Variants]), then with A's token and headers naming B's tenant
// ([TenantHeader]), and each answer gets a [Verdict]. It is a [Leak] when
//
//   - the answer holds a value of B's that A did not send: a canary value,
//     B's id, B's tenant or B's identity claims. Values A did send (a
//     filter on B's canary value, B's id in a path, body or header, B's
//     tenant in a tampered token) count only when the answer succeeded
//     and the same request with random values in their place does not
//     echo them back;
//   - a read, update or delete by B's id succeeds where the same request
//     with a random id of the same shape gets a not-found answer, or a
//     reference to B's id is accepted where one to a random id is
//     refused: the server found B's object (unless B's id also names an
//     object of A's: ids numbered per tenant);
//   - after a write, B's own read of its object finds it gone or changed;
//   - a tampered token gets a success on an endpoint that refuses
//     requests without a token.
//
// A read that B's own token cannot see through either is [Inconclusive]:
// it could not have shown a leak; so is a successful write whose effect B
// cannot see (no way to read the object back, or a body that changes
// nothing B's read shows). Writes are never judged by whether the
// answer repeats B's id: PostgREST's upsert, for one, answers with the id
// it was sent while it creates A's own row.
//
// # Safety
//
// The probe writes: B's canaries, A's own objects where A's bodies need a
// foreign key, and whatever a leaking write does. Everything it created
// is deleted at the end (B's canaries with B's token), unless Keep is set.
// Point it at a staging deployment with two test tenants.
package probe
