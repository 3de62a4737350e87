package httpapi

import (
	"net/http"
	"net/netip"
	"testing"
)

// TestClientAddr: X-Forwarded-For is read only when the TCP peer is a
// trusted proxy, and then only up to the rightmost address that is not a
// trusted proxy: whatever the client wrote to the left of it is ignored.
func TestClientAddr(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}
	for _, tt := range []struct {
		name, peer string
		xff        []string
		trusted    []netip.Prefix
		want       string
	}{
		{"no trusted proxies: the header is ignored", "192.0.2.1:5000", []string{"203.0.113.9"}, nil, "192.0.2.1"},
		{"an untrusted peer: the header is ignored", "192.0.2.1:5000", []string{"203.0.113.9"}, trusted, "192.0.2.1"},
		{"one trusted proxy", "10.0.0.5:5000", []string{"203.0.113.9"}, trusted, "203.0.113.9"},
		{"two trusted proxies", "10.0.0.5:5000", []string{"203.0.113.9, 10.1.2.3"}, trusted, "203.0.113.9"},
		{"the client wrote its own header: the proxy's entry wins", "10.0.0.5:5000", []string{"6.6.6.6, 203.0.113.9"}, trusted, "203.0.113.9"},
		{"the client claims a trusted address on the left", "10.0.0.5:5000", []string{"10.9.9.9, 203.0.113.9"}, trusted, "203.0.113.9"},
		{"headers on several lines", "10.0.0.5:5000", []string{"6.6.6.6", "203.0.113.9, 10.1.2.3"}, trusted, "203.0.113.9"},
		{"garbage to the left of the client is never read", "10.0.0.5:5000", []string{"garbage, 203.0.113.9"}, trusted, "203.0.113.9"},
		{"garbage from the proxy side: put down to the proxy", "10.0.0.5:5000", []string{"203.0.113.9, garbage"}, trusted, "10.0.0.5"},
		{"no header from a trusted peer", "10.0.0.5:5000", nil, trusted, "10.0.0.5"},
		{"every hop trusted: the leftmost", "10.0.0.5:5000", []string{"10.7.7.7, 10.1.2.3"}, trusted, "10.7.7.7"},
		{"an address with a port", "10.0.0.5:5000", []string{"203.0.113.9:4711"}, trusted, "203.0.113.9"},
		{"IPv6 through an IPv6 proxy", "[2001:db8::1]:5000", []string{"2001:db8:ffff::1, 2600::7"}, trusted, "2600::7"},
		{"a zone is not an address", "10.0.0.5:5000", []string{"fe80::1%eth0"}, trusted, "10.0.0.5"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r, _ := http.NewRequest("GET", "/", nil)
			r.RemoteAddr = tt.peer
			for _, v := range tt.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			if got := clientAddr(r, tt.trusted); got.String() != tt.want {
				t.Fatalf("clientAddr = %s, want %s", got, tt.want)
			}
		})
	}
}
