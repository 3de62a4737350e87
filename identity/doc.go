// Package identity turns credentials into a [tenant.Principal]: it hashes
// and checks passwords, issues bulkhead's own access tokens, and verifies
// bearer tokens from bulkhead or from external identity providers.
//
// The package is pure logic. Keys, clocks, randomness and HTTP clients are
// passed in; it opens no database and keeps no global state. The only I/O it
// performs is fetching the JWKS of an external identity provider, through the
// [http.Client] its caller supplies, with a dialer it hardens (see below).
//
// # Passwords
//
// [HashPassword] and [CheckPassword] use argon2id and store hashes in the PHC
// string form "$argon2id$v=19$m=19456,t=2,p=1$<salt>$<hash>". A login handler
// should use a [Hasher] instead: it bounds how many hashes run at once, so a
// flood of logins queues (honouring each request's context) rather than
// exhausting memory, and [Hasher.Check] with an empty hash spends the same
// work as a real check, so an unknown user costs the same as a wrong password.
// Its Deriver moves the argon2id work elsewhere; package hashproc runs it in
// a child process at the lowest CPU priority, which is what bulkhead serve
// does by default.
//
// # Tokens
//
// An [Issuer] signs short-lived EdDSA (Ed25519) tokens. Its first key signs;
// the others are published and verified only, which is how keys rotate:
// publish a new key as verify-only, switch signers, and retire the old key
// after the longest token lifetime plus clock skew. [JWKS] and [Issuer.JWKS]
// publish the public halves.
//
// Platform-administrator tokens come from a separate Issuer with Platform set:
// its own issuer string, audience and key, and a short lifetime. A [Verifier]
// refuses configurations in which a platform trust and a tenant trust share
// an issuer, an audience, a key or a JWKS URL, so a tenant token can never
// verify as an administrator's and an administrator's never as a tenant's.
//
// # Verification
//
// [Verifier.Verify] accepts a token only if every check passes, and answers
// every failure with the same error, [ErrInvalidToken], whose cause (kept in
// the error's Err for the logs) says which check failed:
//
//   - the token is at most [MaxTokenLen] bytes of base64url in three parts;
//   - its header and payload are JSON objects decoded with exact key
//     matching: a duplicate key, or two keys that differ only in case, at any
//     level, rejects the token (encoding/json matches struct fields without
//     regard to case and keeps the last duplicate, so two readers of one
//     payload could otherwise see two different tenants);
//   - the header carries no jku, x5u, jwk, x5c, crit or b64 parameter: keys
//     only ever come from configuration, never from the token;
//   - the unverified iss selects exactly one [Trust], and only that trust's
//     keys are tried;
//   - alg is one of the trust's pinned algorithms (never "none" or HMAC), kid
//     names one of the trust's keys, and the key's type fits alg;
//   - the signature verifies, the key's NotAfter has not passed, aud contains
//     the trust's audience, exp is present and in the future, and nbf and iat
//     are not in the future, all with [Verifier.Leeway] of clock skew;
//   - the claims the principal is built from have the expected types;
//   - for bulkhead's own tokens (trusts with Keys), iat is present, the
//     lifetime is no longer than the trust's MaxLifetime (at most [MaxTTL],
//     or [MaxPlatformTTL] for platform tokens), and the "platform" claim is
//     true exactly when the trust is a platform trust.
//
// # Tenants in tokens
//
// A tenant trust names the claim that holds the tenant with a [ClaimPath]
// such as "tenant_id", "app_metadata.tenant_id" or "custom:tenant_id". When
// the value is a UUID it becomes [tenant.Principal.TenantID]; when it is a
// slug it becomes [tenant.Principal.Tenant]; anything else is rejected. The
// caller must resolve either one through the tenant catalog (which also says
// whether the tenant is active) before scoping any work to it. bulkhead's own
// tokens always carry the immutable UUID, so a slug re-created after an
// offboarding can never inherit an old tenant's tokens. The tenant of an
// external token is whatever the configured claim holds, and nothing else is
// consulted: there is no table mapping (iss, sub) to tenants. Trust a
// provider only with a claim its users cannot edit themselves (an
// administrator-set attribute such as app_metadata, not user_metadata).
//
// # External JWKS
//
// A trust with a JWKSURL fetches its keys with jwkset. The URL must be
// https, and the connection is refused at dial time if the address it
// resolved to is loopback, private, link-local, multicast or otherwise not
// publicly routable, so DNS rebinding cannot point it inward
// (AllowPrivateJWKS lifts this for tests only). The key set is refreshed
// every hour. A token whose kid is unknown triggers at most one refetch per
// trust every five minutes ([JWKSUnknownKIDInterval]), so a stream of
// made-up kids cannot turn the verifier into a traffic generator. The
// refetch runs on its own, for at most twenty seconds, whatever the
// context of the Verify that started it: a caller that gives up does not
// waste the slot, and the provider's new key verifies for the callers after
// it. Any token with an unknown kid waits, within its own context, for a
// refetch in progress; with none in progress and no slot free, it fails at
// once without network traffic. Responses are limited to 1 MiB, redirects
// to three, and requests bypass any proxy. [Verifier.Close] stops the
// background refresh.
package identity
