package rest_test

import (
	"net/http"
	"net/url"
	"testing"

	"github.com/bulkhead-dev/bulkhead/rest"
)

// BenchmarkBuild measures the data API's per-request SQL building for the
// shapes bulkhead-bench sends: get by id and a filtered list.
func BenchmarkBuild(b *testing.B) {
	for _, bb := range []struct{ name, query string }{
		{"GetByID", "id=eq.3b891963-dbaa-4f2c-a4b6-63bac2c2966c"},
		{"List", "select=id,name&name=like.p1*&limit=20"},
	} {
		q, err := url.ParseQuery(bb.query)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := (rest.Builder{}).Build(projects, rest.Request{Method: http.MethodGet, Query: q, Header: http.Header{}, TenantID: "299a90ba-40f2-45fc-988d-d71c4956a2de"}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
