package probe

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// The token variants. TokenA is A's own token; the others are derived
// from it, and every one of them must be refused.
const (
	TokenA = "A"
	// AlgNone: header {"alg":"none"}, no signature, and the payload with
	// the tenant claims set to B's (A's payload when B's are unknown).
	AlgNone = "alg-none"
	// NoSignature: A's header and payload, the signature removed.
	NoSignature = "no-signature"
	// TenantClaim: A's header and signature; in the payload every
	// tenant-like claim set to B's value.
	TenantClaim = "tenant-claim"
	// KidSwap: A's payload and signature; the header's kid set to B's
	// (or a random one when B's is the same or unknown).
	KidSwap = "kid-swap"
	// Expired: A's header and signature; exp, iat and nbf moved an hour
	// or more into the past.
	Expired = "expired"
)

// Variants lists the tampered token variants in the order they are tried.
var Variants = []string{AlgNone, NoSignature, TenantClaim, KidSwap, Expired}

// jwt is a decoded compact JWS.
type jwt struct {
	raw     [3]string
	header  map[string]any
	payload map[string]any
}

// parseJWT decodes a compact JWS without verifying it.
func parseJWT(tok string) (*jwt, error) {
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return nil, errors.New("not a JWT: it does not have three dot-separated parts")
	}
	t := &jwt{raw: [3]string{parts[0], parts[1], parts[2]}}
	for i, dst := range []*map[string]any{&t.header, &t.payload} {
		b, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[i], "="))
		if err != nil {
			return nil, fmt.Errorf("not a JWT: part %d is not base64url: %v", i+1, err)
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.UseNumber()
		if err := dec.Decode(dst); err != nil || *dst == nil {
			return nil, fmt.Errorf("not a JWT: part %d is not a JSON object", i+1)
		}
	}
	return t, nil
}

func encodePart(v map[string]any) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.Encode(v) // maps of decoded JSON always encode
	return base64.RawURLEncoding.EncodeToString(bytes.TrimRight(buf.Bytes(), "\n"))
}

// tenantKeys are claim names, lower-cased and without '_' or '-', that
// hold a tenant in the tokens of common identity providers and SaaS
// backends.
var tenantKeys = []string{
	"tenant", "tenantid", "tenantslug", "tenantname", "tid",
	"org", "orgid", "orgslug", "organization", "organizationid", "organisation", "organisationid",
	"account", "accountid", "workspace", "workspaceid", "team", "teamid",
	"company", "companyid", "customer", "customerid",
}

// tenantLike reports whether a claim name looks like it holds a tenant:
// "tenant_id", "custom:tenant_id", "https://example.com/org_id".
func tenantLike(key string) bool {
	k := strings.ToLower(key)
	if i := strings.LastIndexAny(k, "/:"); i >= 0 {
		k = k[i+1:]
	}
	k = strings.NewReplacer("_", "", "-", "").Replace(k)
	return slices.Contains(tenantKeys, k)
}

// pickTenant returns the value of the claim most likely to be the
// tenant's id: a tenant-like claim whose name ends in "id" (tenant_id,
// org_id) before the others (tenant, org), top level before nested.
func pickTenant(payload map[string]any) string {
	var best string
	bestRank := 99
	var walk func(m map[string]any, depth int)
	walk = func(m map[string]any, depth int) {
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			switch v := m[k].(type) {
			case map[string]any:
				if depth < 3 {
					walk(v, depth+1)
				}
			case string, json.Number:
				if !tenantLike(k) {
					continue
				}
				rank := depth * 2
				if n := strings.ToLower(k); !strings.HasSuffix(n, "id") {
					rank++
				}
				if rank < bestRank {
					best, bestRank = fmt.Sprint(v), rank
				}
			}
		}
	}
	walk(payload, 0)
	return best
}

// tenantValues returns the values of every tenant-like claim.
func tenantValues(m map[string]any, depth int) []string {
	var out []string
	for k, v := range m {
		switch v := v.(type) {
		case map[string]any:
			if depth < 3 {
				out = append(out, tenantValues(v, depth+1)...)
			}
		case string, json.Number:
			if tenantLike(k) {
				out = append(out, fmt.Sprint(v))
			}
		}
	}
	slices.Sort(out)
	return out
}

// claimEdit is one tenant-like claim that differs between A and B.
type claimEdit struct {
	path []string
	b    any
}

// tenantEdits finds the tenant-like claims, at any depth up to 4, that A's
// and B's payloads both hold with different values.
func tenantEdits(a, b map[string]any) []claimEdit {
	var out []claimEdit
	var walk func(a, b map[string]any, path []string)
	walk = func(a, b map[string]any, path []string) {
		if len(path) >= 4 {
			return
		}
		keys := make([]string, 0, len(a))
		for k := range a {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			av, bv := a[k], b[k]
			if bv == nil {
				continue
			}
			p := append(slices.Clone(path), k)
			if am, ok := av.(map[string]any); ok {
				if bm, ok := bv.(map[string]any); ok {
					walk(am, bm, p)
				}
				continue
			}
			if tenantLike(k) && fmt.Sprint(av) != fmt.Sprint(bv) {
				out = append(out, claimEdit{path: p, b: bv})
			}
		}
	}
	walk(a, b, nil)
	return out
}

// clone deep-copies a decoded JSON object.
func clone(m map[string]any) map[string]any {
	out := make(map[string]any, len(m))
	for k, v := range m {
		if sub, ok := v.(map[string]any); ok {
			v = clone(sub)
		}
		out[k] = v
	}
	return out
}

func setPath(m map[string]any, path []string, v any) {
	for _, k := range path[:len(path)-1] {
		m = m[k].(map[string]any)
	}
	m[path[len(path)-1]] = v
}

// tampered is one variant of A's token.
type tampered struct {
	name  string
	token string
	// sent are the values of B's the variant wrote into the token (B's
	// tenant claims, B's kid): an answer that repeats them, such as a
	// 401 naming the refused token's tenant, repeats what A sent.
	sent []string
}

// tokenFacts is what the probe learned from the two tokens.
type tokenFacts struct {
	variants []tampered
	skipped  map[string]string // variant → why it could not be made
	tenantB  string            // B's tenant claim value, when there is one
	edited   []string          // the claims TenantClaim and AlgNone set, as paths
	tenantsB []string          // every tenant-like claim value of B's that A's token lacks
	idsB     []string          // B's identity claim values (email, sub) A must never see
}

// tamper derives the variants of A's token. Nothing it makes verifies:
// each changes the signed bytes or drops the signature.
func tamper(tokA, tokB string, now time.Time, m *maker) tokenFacts {
	f := tokenFacts{skipped: map[string]string{}}
	a, err := parseJWT(tokA)
	if err != nil {
		for _, v := range Variants {
			f.skipped[v] = "A's token cannot be decoded: " + err.Error()
		}
		return f
	}
	b, errB := parseJWT(tokB)
	var edits []claimEdit
	if errB == nil {
		edits = tenantEdits(a.payload, b.payload)
		for _, e := range edits {
			f.edited = append(f.edited, strings.Join(e.path, "."))
		}
		f.tenantB = pickTenant(b.payload)
		for _, v := range tenantValues(b.payload, 0) {
			if len(v) >= markerLen && !slices.Contains(tenantValues(a.payload, 0), v) {
				f.tenantsB = append(f.tenantsB, v)
			}
		}
		for _, k := range []string{"email", "sub", "preferred_username"} {
			bv, ok := b.payload[k].(string)
			if ok && len(bv) >= markerLen && bv != a.payload[k] && (k != "sub" || len(bv) >= 16) {
				f.idsB = append(f.idsB, bv)
			}
		}
	}
	edited := clone(a.payload)
	var wrote []string
	for _, e := range edits {
		setPath(edited, e.path, e.b)
		wrote = append(wrote, fmt.Sprint(e.b))
	}

	// alg none, with B's tenant where known: the classic forgery.
	h := clone(a.header)
	delete(h, "kid")
	h["alg"] = "none"
	f.variants = append(f.variants, tampered{AlgNone, encodePart(h) + "." + encodePart(edited) + ".", wrote})
	f.variants = append(f.variants, tampered{NoSignature, a.raw[0] + "." + a.raw[1] + ".", nil})
	switch {
	case errB != nil:
		f.skipped[TenantClaim] = "B's token is not a JWT, so B's tenant claim is unknown"
	case len(edits) == 0:
		f.skipped[TenantClaim] = "no tenant-like claim (tenant_id, org_id, …) differs between A's and B's tokens"
	default:
		f.variants = append(f.variants, tampered{TenantClaim, a.raw[0] + "." + encodePart(edited) + "." + a.raw[2], wrote})
	}
	h = clone(a.header)
	kid := ""
	if errB == nil {
		kid, _ = b.header["kid"].(string)
	}
	if kid == "" || kid == a.header["kid"] {
		kid = "probe-" + m.hex(16)
	}
	h["kid"] = kid
	f.variants = append(f.variants, tampered{KidSwap, encodePart(h) + "." + a.raw[1] + "." + a.raw[2], []string{kid}})
	p := clone(a.payload)
	p["exp"] = now.Add(-time.Hour).Unix()
	for _, k := range []string{"iat", "nbf"} {
		if _, ok := p[k]; ok {
			p[k] = now.Add(-2 * time.Hour).Unix()
		}
	}
	f.variants = append(f.variants, tampered{Expired, a.raw[0] + "." + encodePart(p) + "." + a.raw[2], nil})
	// A token that is already unsigned, or already expired, gives
	// variants that are A's token itself: they test nothing new.
	f.variants = slices.DeleteFunc(f.variants, func(v tampered) bool {
		if v.token == tokA {
			f.skipped[v.name] = "it would be A's token unchanged"
			return true
		}
		return false
	})
	return f
}
