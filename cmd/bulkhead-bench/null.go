package main

import (
	"fmt"
	"net"
	"net/http"
	"time"
)

// nullServer answers every request with the 429 bulkhead sends a tenant
// past its rate (the same headers and a body of the same length), and does
// nothing else: no authentication, no limiter, no audit, no hold. The
// --noisy control floods aim at it, in this process alongside bulkhead's
// server, so that what they do to the quiet tenant is what a flood at that
// pace costs this machine before bulkhead does anything with a request.
type nullServer struct {
	url string
	srv *http.Server
}

// nullBody has the shape and length of bulkhead's rate_limited answer.
const nullBody = `{"type":"https://bulkhead.dev/problems/rate_limited","title":"Too Many Requests","status":429,` +
	`"detail":"This tenant is sending requests faster than its plan allows; retry after the indicated time.","code":"rate_limited",` +
	`"message":"This tenant is sending requests faster than its plan allows; retry after the indicated time.",` +
	`"details":null,"hint":null,"request_id":"000000000000000000000000"}` + "\n"

func startNullServer() (*nullServer, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the control flood's server: %w", err)
	}
	srv := &http.Server{ReadHeaderTimeout: 10 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Type", "application/problem+json")
		h.Set("Retry-After", "1")
		h.Set("X-Request-Id", "000000000000000000000000")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = w.Write([]byte(nullBody))
	})}
	go func() { _ = srv.Serve(l) }()
	return &nullServer{url: "http://" + l.Addr().String(), srv: srv}, nil
}

// Close stops the server.
func (n *nullServer) Close() error { return n.srv.Close() }
