// Command bulkheadvet reports state that a request handler writes and the
// next tenant can read: package-level variables, handler receivers and
// captured variables written on a path reachable from an AWS Lambda or
// net/http handler. It runs the [tenantstate.Analyzer]; see that package
// for the rules, their limits and the //bulkhead:ok suppression comment.
//
// Run it on its own:
//
//	bulkheadvet ./...
//
// or as a vet tool, alongside or instead of the standard checks:
//
//	go vet -vettool=$(which bulkheadvet) ./...
//
// It exits non-zero when it reports anything. Flags are those of
// [golang.org/x/tools/go/analysis/singlechecker]; run bulkheadvet -help.
package main

import (
	"golang.org/x/tools/go/analysis/singlechecker"

	"github.com/bulkhead-dev/bulkhead/vet/tenantstate"
)

func main() { singlechecker.Main(tenantstate.Analyzer) }
