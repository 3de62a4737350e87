package httpapi

import (
	"net/http"
	"net/netip"
	"strings"
)

// clientAddr is the address a request came from: the TCP peer, unless the
// peer is one of the trusted proxies, in which case the rightmost address
// in X-Forwarded-For that is not itself a trusted proxy. Addresses to the
// left of that one were written by the client and are never believed. An
// entry that does not parse stops the walk: the request is then put down
// to the last proxy that forwarded it. With no trusted proxies,
// X-Forwarded-For is never read.
func clientAddr(r *http.Request, trusted []netip.Prefix) netip.Addr {
	peer := peerAddr(r)
	if len(trusted) == 0 || !inAny(peer, trusted) {
		return peer
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		hops = append(hops, strings.Split(v, ",")...)
	}
	client := peer
	for i := len(hops) - 1; i >= 0; i-- {
		a, ok := parseHop(hops[i])
		if !ok {
			return client
		}
		client = a
		if !inAny(a, trusted) {
			return a
		}
	}
	return client
}

func peerAddr(r *http.Request) netip.Addr {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return netip.Addr{}
	}
	return ap.Addr().Unmap()
}

// parseHop reads one X-Forwarded-For entry: an address, or an address and
// port, possibly with spaces around it.
func parseHop(s string) (netip.Addr, bool) {
	s = strings.TrimSpace(s)
	if a, err := netip.ParseAddr(s); err == nil && a.Zone() == "" {
		return a.Unmap(), true
	}
	if ap, err := netip.ParseAddrPort(s); err == nil && ap.Addr().Zone() == "" {
		return ap.Addr().Unmap(), true
	}
	return netip.Addr{}, false
}

func inAny(a netip.Addr, ps []netip.Prefix) bool {
	for _, p := range ps {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// sourceIP is the client's address (see clientAddr), as the outermost
// middleware worked it out; the TCP peer for a request that did not pass
// through it.
func sourceIP(r *http.Request) netip.Addr {
	if i := requestInfoFrom(r.Context()); i != nil {
		return i.client
	}
	return peerAddr(r)
}
