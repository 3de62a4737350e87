package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"sync"
	"syscall"
	"time"

	"github.com/MicahParks/jwkset"
	"golang.org/x/time/rate"
)

// How remote JWKS are fetched.
const (
	// JWKSRefreshInterval is how often a trust's JWKS is refetched in the
	// background, so that keys an identity provider withdraws stop
	// verifying.
	JWKSRefreshInterval = time.Hour

	// JWKSUnknownKIDInterval is the least time between two refetches of a
	// trust's JWKS caused by a token whose kid is not in the cached set.
	// Within it, unknown kids fail without network traffic: the limiter
	// is asked with a deadline far shorter than the interval, and
	// golang.org/x/time/rate refuses instead of sleeping. A token whose
	// kid is unknown while a refetch is in progress waits for that one.
	JWKSUnknownKIDInterval = 5 * time.Minute

	jwksTimeout        = 10 * time.Second // each fetch, including connecting
	jwksRefetchTimeout = 2 * jwksTimeout  // an unknown kid's refetch: a wait for the limiter, then a fetch
	jwksMaxBody        = 1 << 20          // bytes of JWKS response
	jwksMaxRedirects   = 3
)

// checkJWKSURL checks a trust's JWKS URL before anything is fetched: https,
// a host, no credentials, and, unless allowPrivate, no literal address in a
// non-public range. Names are checked again, after resolution, at dial time.
func checkJWKSURL(raw string, allowPrivate bool) error {
	u, err := url.Parse(raw)
	if err != nil {
		return fmt.Errorf("JWKS URL: %w", err)
	}
	if u.Scheme != "https" {
		return fmt.Errorf("JWKS URL %q is not https", raw)
	}
	if u.Hostname() == "" || u.User != nil || u.Opaque != "" {
		return fmt.Errorf("JWKS URL %q must be https://host/path without credentials", raw)
	}
	if allowPrivate {
		return nil
	}
	if addr, err := netip.ParseAddr(u.Hostname()); err == nil {
		if err := checkPublicAddr(addr); err != nil {
			return fmt.Errorf("JWKS URL %q: %w", raw, err)
		}
	}
	return nil
}

// nonPublic lists ranges that the Is* methods of netip.Addr do not cover.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),       // "this network"
	netip.MustParsePrefix("100.64.0.0/10"),   // carrier-grade NAT
	netip.MustParsePrefix("192.0.0.0/24"),    // IETF protocol assignments
	netip.MustParsePrefix("192.0.2.0/24"),    // documentation
	netip.MustParsePrefix("198.18.0.0/15"),   // benchmarking
	netip.MustParsePrefix("198.51.100.0/24"), // documentation
	netip.MustParsePrefix("203.0.113.0/24"),  // documentation
	netip.MustParsePrefix("240.0.0.0/4"),     // reserved, and broadcast
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (deprecated)
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64: may translate to a private IPv4
	netip.MustParsePrefix("64:ff9b:1::/48"),  // local-use NAT64
	netip.MustParsePrefix("100::/64"),        // discard-only
	netip.MustParsePrefix("2001:db8::/32"),   // documentation
	netip.MustParsePrefix("2002::/16"),       // 6to4: may embed a private IPv4
	netip.MustParsePrefix("fec0::/10"),       // site-local (deprecated)
}

// checkPublicAddr refuses addresses that are not publicly routable.
func checkPublicAddr(a netip.Addr) error {
	a = a.Unmap()
	if !a.IsValid() || a.IsLoopback() || a.IsPrivate() || a.IsUnspecified() ||
		a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsInterfaceLocalMulticast() ||
		a.IsMulticast() {
		return fmt.Errorf("address %v is not public", a)
	}
	for _, p := range nonPublic {
		if p.Contains(a) {
			return fmt.Errorf("address %v is not public (%v)", a, p)
		}
	}
	return nil
}

// dialControl is a net.Dialer Control function. It sees the address the
// dialer is about to connect to, after DNS resolution, so a name that
// resolves (or later re-resolves) to an internal address is refused.
func dialControl(allowPrivate bool) func(network, address string, _ syscall.RawConn) error {
	return func(network, address string, _ syscall.RawConn) error {
		switch network {
		case "tcp", "tcp4", "tcp6":
		default:
			return fmt.Errorf("identity: JWKS dial over %s refused", network)
		}
		if allowPrivate {
			return nil
		}
		ap, err := netip.ParseAddrPort(address)
		if err != nil {
			return fmt.Errorf("identity: JWKS dial to %q refused: %w", address, err)
		}
		if err := checkPublicAddr(ap.Addr()); err != nil {
			return fmt.Errorf("identity: JWKS dial refused: %w", err)
		}
		return nil
	}
}

// jwksClient derives the client that fetches a trust's JWKS from the one the
// caller gave (or a default one): its transport is cloned, proxies are turned
// off (a proxy would hide the destination from the dial check), its dialer
// is replaced by one with dialControl, responses are capped at jwksMaxBody,
// and redirects must stay on https.
func jwksClient(base *http.Client, allowPrivate bool) (*http.Client, error) {
	if base == nil {
		base = &http.Client{}
	}
	rt := base.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	t, ok := rt.(*http.Transport)
	if !ok {
		return nil, fmt.Errorf("HTTPClient.Transport is a %T; it must be nil or an *http.Transport so that the dial check can be installed", rt)
	}
	t = t.Clone()
	t.Proxy = nil
	t.DialTLSContext = nil
	t.DialTLS = nil //lint:ignore SA1019 cleared so that no dialer bypasses the check
	t.Dial = nil    //lint:ignore SA1019 cleared so that no dialer bypasses the check
	d := &net.Dialer{Timeout: jwksTimeout, Control: dialControl(allowPrivate)}
	t.DialContext = d.DialContext
	timeout := base.Timeout
	if timeout <= 0 || timeout > jwksTimeout {
		timeout = jwksTimeout
	}
	return &http.Client{
		Transport: maxBodyTransport{next: t, max: jwksMaxBody},
		Timeout:   timeout,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= jwksMaxRedirects {
				return errors.New("identity: too many JWKS redirects")
			}
			if req.URL.Scheme != "https" {
				return fmt.Errorf("identity: JWKS redirect to %s refused", req.URL.Scheme)
			}
			return nil
		},
	}, nil
}

type maxBodyTransport struct {
	next http.RoundTripper
	max  int64
}

func (t maxBodyTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.next.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = &maxBody{ReadCloser: resp.Body, left: t.max}
	return resp, nil
}

// maxBody fails a read that would go past its limit.
type maxBody struct {
	io.ReadCloser
	left int64
}

func (b *maxBody) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	if b.left <= 0 {
		var one [1]byte
		n, err := b.ReadCloser.Read(one[:])
		if n > 0 {
			return 0, errors.New("identity: JWKS response too large")
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.ReadCloser.Read(p)
	b.left -= int64(n)
	return n, err
}

// remoteKeys is a trust's JWKS: the set last fetched, refreshed in the
// background, and refetched (rate-limited) for a kid it does not hold.
type remoteKeys struct {
	cached  jwkset.Storage // the set last fetched; reading it fetches nothing
	refetch jwkset.Storage // reads cached, refetching it first for an unknown kid

	mu      sync.Mutex
	pending *refetchCall // the unknown-kid refetch in progress, if any
}

// refetchCall is one refetch for an unknown kid, which any number of
// callers wait for.
type refetchCall struct {
	done chan struct{}
	err  error // why the kid it was started for is still unknown; set before done closes
}

// newRemoteKeys starts fetching a trust's JWKS: the first fetch is made
// now (a failure is logged, and retried as for an unknown kid), and the
// background refresh runs until ctx ends.
func newRemoteKeys(ctx context.Context, t *trust, logger *slog.Logger) (*remoteKeys, error) {
	client, err := jwksClient(t.HTTPClient, t.AllowPrivateJWKS)
	if err != nil {
		return nil, err
	}
	cached, err := jwkset.NewStorageFromHTTP(t.JWKSURL, jwkset.HTTPClientStorageOptions{
		Client:                    client,
		Ctx:                       ctx,
		HTTPTimeout:               jwksTimeout,
		NoErrorReturnFirstHTTPReq: true,
		RefreshInterval:           JWKSRefreshInterval,
		RefreshErrorHandler: func(ctx context.Context, err error) {
			logger.WarnContext(ctx, "jwks refresh failed", "jwks_url", t.JWKSURL, "err", err)
		},
	})
	if err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", t.JWKSURL, err)
	}
	refetch, err := jwkset.NewHTTPClient(jwkset.HTTPClientOptions{
		HTTPURLs: map[string]jwkset.Storage{t.JWKSURL: cached},
		// Isolation of load: at most one refetch per interval for unknown
		// kids. RateLimitWaitMax is the deadline given to the limiter, which
		// refuses at once when the next slot is further away than that.
		RefreshUnknownKID: rate.NewLimiter(rate.Every(JWKSUnknownKIDInterval), 1),
		RateLimitWaitMax:  jwksTimeout,
	})
	if err != nil {
		return nil, fmt.Errorf("JWKS %s: %w", t.JWKSURL, err)
	}
	return &remoteKeys{cached: cached, refetch: refetch}, nil
}

// read returns the key named kid from the set last fetched. For a kid the
// set does not hold, it starts a refetch unless one is in progress, and
// waits for it as long as ctx allows. The refetch runs under a context of
// its own (ctx's values, without its end, for at most jwksRefetchTimeout):
// a caller that gives up does not cancel it, so the rate-limited slot it
// took still brings in the provider's new keys for the callers after it.
func (r *remoteKeys) read(ctx context.Context, kid string) (jwkset.JWK, error) {
	k, err := r.cached.KeyRead(ctx, kid)
	if !errors.Is(err, jwkset.ErrKeyNotFound) {
		return k, err
	}
	c := r.startRefetch(ctx, kid)
	select {
	case <-c.done:
	case <-ctx.Done():
		return jwkset.JWK{}, fmt.Errorf("waiting for the JWKS refetch: %w", context.Cause(ctx))
	}
	k, err = r.cached.KeyRead(ctx, kid)
	if errors.Is(err, jwkset.ErrKeyNotFound) && c.err != nil {
		err = fmt.Errorf("%w (refetch: %v)", err, c.err)
	}
	return k, err
}

// startRefetch returns the refetch in progress, or starts one for kid.
func (r *remoteKeys) startRefetch(ctx context.Context, kid string) *refetchCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.pending != nil {
		return r.pending
	}
	c := &refetchCall{done: make(chan struct{})}
	r.pending = c
	go func() {
		fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), jwksRefetchTimeout)
		defer cancel()
		// Refetches only if kid is still unknown, and only if the
		// limiter has a slot.
		_, err := r.refetch.KeyRead(fctx, kid)
		r.mu.Lock()
		r.pending = nil
		r.mu.Unlock()
		c.err = err
		close(c.done)
	}()
	return c
}

// remoteKey returns the verification key for a token from a JWKS trust: the
// key named by kid, whose own alg (if it has one) equals the token's, whose
// use (if given) is "sig", and whose type fits the token's alg.
func remoteKey(ctx context.Context, store *remoteKeys, kid, alg string) (any, error) {
	k, err := store.read(ctx, kid)
	if err != nil {
		return nil, fmt.Errorf("kid %q: %w", kid, err)
	}
	m := k.Marshal()
	if m.ALG != "" && string(m.ALG) != alg {
		return nil, fmt.Errorf("kid %q is pinned to %s, token uses %s", kid, m.ALG, alg)
	}
	if m.USE != "" && m.USE != jwkset.UseSig {
		return nil, fmt.Errorf("kid %q has use %q", kid, m.USE)
	}
	key := k.Key()
	if err := keyFitsAlg(key, alg); err != nil {
		return nil, fmt.Errorf("kid %q: %w", kid, err)
	}
	return key, nil
}

// asymmetricAlgs are the algorithms a trust may pin. HMAC and "none" are
// never acceptable: bulkhead shares no secret with an identity provider.
var asymmetricAlgs = map[string]bool{
	"EdDSA": true,
	"RS256": true, "RS384": true, "RS512": true,
	"PS256": true, "PS384": true, "PS512": true,
	"ES256": true, "ES384": true, "ES512": true,
}

// keyFitsAlg checks that key is a public key of the type alg needs, so that
// a key can never be used with an algorithm of another family.
func keyFitsAlg(key any, alg string) error {
	switch alg {
	case "EdDSA":
		if k, ok := key.(ed25519.PublicKey); ok && len(k) == ed25519.PublicKeySize {
			return nil
		}
	case "RS256", "RS384", "RS512", "PS256", "PS384", "PS512":
		if k, ok := key.(*rsa.PublicKey); ok && k.N.BitLen() >= 2048 {
			return nil
		}
	case "ES256", "ES384", "ES512":
		want := map[string]elliptic.Curve{"ES256": elliptic.P256(), "ES384": elliptic.P384(), "ES512": elliptic.P521()}[alg]
		if k, ok := key.(*ecdsa.PublicKey); ok && k.Curve == want {
			return nil
		}
	}
	return fmt.Errorf("a %T key does not fit %s", key, alg)
}
