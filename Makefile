# bulkhead — see README.md.
GO ?= go
BIN := bin/bulkhead
# Binaries record the commit they are built from (bulkhead version), even
# where GOFLAGS says -buildvcs=false; outside a git checkout there is none.
BUILDFLAGS := -buildvcs=auto

.PHONY: demo test build vet fmt-check tenantstate bench fuzz clean native

## demo: a private PostgreSQL, a seeded demo (acme in the pool, globex in a silo), the server on 127.0.0.1:8080
demo: build
	./$(BIN) dev

## test: every test (needs PostgreSQL server binaries, or BULKHEAD_TEST_DATABASE_URL), then
## the suite again on the native verifier (needs a C compiler and PostgreSQL's server headers)
test: fmt-check vet tenantstate
	$(GO) test -count=1 -timeout 30m ./...
	@if [ "$$BULKHEAD_TEST_NATIVE" = require ] || [ -f "$$(pg_config --includedir-server 2>/dev/null)/postgres.h" ]; then \
		echo "make test: the suite again, every database on the native verifier (pgext/)"; \
		BULKHEAD_TEST_VERIFIER=native $(GO) test -count=1 -timeout 30m ./...; \
	else \
		echo "make test: no PostgreSQL server headers, so the native verifier (pgext/) was not tested; install them (apt-get install gcc postgresql-server-dev-15) to test it"; \
	fi

## native: build the native verifier (install it with: sudo make -C pgext install)
native:
	$(MAKE) -C pgext

## tenantstate: our own analyzer over our own code (no tenant state in globals on handler paths)
tenantstate:
	$(GO) run ./cmd/bulkheadvet ./...

build:
	$(GO) build $(BUILDFLAGS) -o $(BIN) ./cmd/bulkhead

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

## bench: the isolation tax against a raw net/http + pgx server, on a private PostgreSQL (see docs/PERFORMANCE.md)
bench:
	$(GO) build $(BUILDFLAGS) -o bin/bulkhead ./cmd/bulkhead
	$(GO) build $(BUILDFLAGS) -o bin/bulkhead-bench ./cmd/bulkhead-bench
	./bin/bulkhead-bench $(BENCHFLAGS)
	$(GO) test ./postgres -run '^$$' -bench IsolationTax -benchtime 3s
	$(GO) test . -run '^$$' -bench TxTax -benchtime 3s
	$(GO) test ./policy -run '^$$' -bench Evaluate
	$(GO) test ./identity -run '^$$' -bench 'Verify'
	$(GO) test ./identity/hashproc -run '^$$' -bench Check
	$(GO) test ./httpapi -run '^$$' -bench Refused
	$(GO) test ./httpapi -run '^$$' -bench OtherTenantsIDs -benchtime 2000x

## fuzz: run each fuzz target for a short while
fuzz:
	$(GO) test ./rest -run '^$$' -fuzz '^FuzzBuild$$' -fuzztime 30s
	$(GO) test ./ctxtoken -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime 30s
	$(GO) test ./ctxtoken -run '^$$' -fuzz '^FuzzDecode$$' -fuzztime 30s
	$(GO) test ./ctxtoken -run '^$$' -fuzz '^FuzzAppendClaims$$' -fuzztime 20s
	$(GO) test ./internal/strictjson -run '^$$' -fuzz '^FuzzCheck$$' -fuzztime 20s
	$(GO) test ./identity -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime 30s
	$(GO) test ./identity -run '^$$' -fuzz '^FuzzDecodeObject$$' -fuzztime 20s
	$(GO) test ./identity -run '^$$' -fuzz '^FuzzFoldKey$$' -fuzztime 10s
	$(GO) test ./identity -run '^$$' -fuzz '^FuzzClaimPath$$' -fuzztime 20s
	$(GO) test ./policy -run '^$$' -fuzz '^FuzzParse$$' -fuzztime 30s
	$(GO) test ./policy -run '^$$' -fuzz '^FuzzEvaluate$$' -fuzztime 30s
	$(GO) test ./tenant -run '^$$' -fuzz '^FuzzParseSlug$$' -fuzztime 10s
	$(GO) test ./verify/probe -run '^$$' -fuzz '^FuzzTamper$$' -fuzztime 20s
	$(GO) test ./verify/probe -run '^$$' -fuzz '^FuzzAnswer$$' -fuzztime 20s
	$(GO) test ./httpapi -run '^$$' -fuzz '^FuzzAPI$$' -fuzztime 60s -parallel 2
	@if [ -f "$$(pg_config --includedir-server 2>/dev/null)/postgres.h" ]; then \
		$(GO) test ./postgres -run '^$$' -fuzz '^FuzzNativeVerifier$$' -fuzztime 60s; \
	else echo "make fuzz: no PostgreSQL server headers, FuzzNativeVerifier not run"; fi

clean:
	rm -rf bin
	$(MAKE) -C pgext clean 2>/dev/null || true
