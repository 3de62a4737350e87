package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/httpapi"
	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/postgres"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

func getTargets(bulk string, t benchTenant) []vegeta.Target {
	var out []vegeta.Target
	h := http.Header{"Authorization": {"Bearer " + t.token}}
	for _, id := range t.ids[:min(10, len(t.ids))] {
		out = append(out, vegeta.Target{Method: "GET", URL: fmt.Sprintf("%s/rest/v1/projects?id=eq.%s", bulk, id), Header: h})
	}
	return out
}

// noisyReport is, for each kind of flood, the quiet tenant alone and
// during the flood, paired.
type noisyReport struct {
	floods    []floodResult
	rounds    int
	quietRate int // 0: the quiet tenant is a closed loop of 2 clients
}

// floodResult is one kind of flood: the round with the median p99 ratio
// (quiet during the flood against quiet alone just before it) and the
// range of that ratio over all rounds.
type floodResult struct {
	name                string
	control             bool // the flood was aimed at nullServer, not at bulkhead
	alone, flood, quiet attackResult
	minRatio, maxRatio  float64
	pooled              float64 // pooledRatio over all rounds
	// aloneCPU and floodCPU are the CPU the servers and PostgreSQL used
	// per second while the quiet tenant was measured alone and during
	// the flood.
	aloneCPU, floodCPU cpuRate
}

// cpuNote says what the flood cost the servers and PostgreSQL in CPU, for
// the round's line; empty without a meter.
func (f floodResult) cpuNote() string {
	if !f.aloneCPU.ok || !f.floodCPU.ok {
		return ""
	}
	hash := ""
	if f.aloneCPU.hash > 0 || f.floodCPU.hash > 0 {
		hash = fmt.Sprintf("; password hashing process %s, %s", round(f.aloneCPU.hash), round(f.floodCPU.hash))
	}
	return fmt.Sprintf("; CPU per second, alone then during: servers %s, %s%s; PostgreSQL %s, %s",
		round(f.aloneCPU.self), round(f.floodCPU.self), hash, round(f.aloneCPU.pg), round(f.floodCPU.pg))
}

// statusNote lists a run's answers by status, in order of status: "401
// 10, 429 1990"; status 0 is a request that got no answer.
func statusNote(status map[string]int) string {
	codes := make([]string, 0, len(status))
	for c := range status {
		codes = append(codes, c)
	}
	sort.Strings(codes)
	parts := make([]string, len(codes))
	for i, c := range codes {
		parts[i] = fmt.Sprintf("%s %d", c, status[c])
	}
	if len(parts) == 0 {
		return "no answers"
	}
	return strings.Join(parts, ", ")
}

func (f floodResult) ratio() float64 { return p99Ratio(f.alone, f.quiet) }

func p99Ratio(alone, during attackResult) float64 {
	return float64(during.P99) / float64(alone.P99)
}

// floodKind is one kind of flood --noisy runs; key names it in --floods.
type floodKind struct {
	key, name string
	rate      int
	niced     bool
	targets   []vegeta.Target
	control   bool // aimed at nullServer: what the flood costs the machine alone
	// direct, when set, is the flood instead of targets: it runs in this
	// process, for the given time, without the HTTP API.
	direct func(ctx context.Context, d time.Duration) (attackResult, error)
}

// floodKeys are the keys of the floods, in the order they run.
var floodKeys = []string{"paced", "paced-null", "paced-niced", "paced-null-niced", "404", "forged", "forged-new", "forged-spread", "logins", "logins-spread", "logins-tenants", "logins-direct", "logins-hashing", "logins-process", "expensive", "expensive-plan", "expensive-direct", "function", "function-1", "closed-niced", "closed"}

// noisyConfig is what --noisy runs: each side for d, each flood started
// lead before the quiet tenant is measured, the paced floods at
// floodRate, the quiet tenant at quietRate (0: a closed loop), rounds
// times, the floods in only (nil: all). The meter reads the CPU of the
// servers and PostgreSQL around each side; with profile set, the servers
// are CPU-profiled into it while the quiet tenant is measured during the
// first round of the flood profileFlood.
type noisyConfig struct {
	d, lead, warmup              time.Duration
	floodRate, quietRate, rounds int
	only                         map[string]bool
	meter                        cpuMeter
	profile, profileFlood        string
	timeline                     bool
}

// runNoisy measures a quiet tenant's get-by-id latency while a basic-plan
// tenant (50 requests per second) floods the API: paced at floodRate, and
// as fast as 32 clients can go, with the flood's load process at the
// lowest CPU priority and then at the normal one. Each measurement during
// a flood is paired with one of the quiet tenant alone just before it, so
// that the machine's drift over the run does not land in the ratio; with
// rounds > 1 the whole sequence repeats and the report keeps, per kind of
// flood, the round with the median ratio, the range, and the ratio of
// all rounds pooled.
func runNoisy(ctx context.Context, db *bulkhead.DB, auth *bulkhead.Auth, bulk string, ts []benchTenant, cfg noisyConfig) (noisyReport, error) {
	d, lead, warmup, floodRate, quietRate, rounds, only := cfg.d, cfg.lead, cfg.warmup, cfg.floodRate, cfg.quietRate, cfg.rounds, cfg.only
	out := noisyReport{rounds: rounds, quietRate: quietRate}
	noisy, err := oneTenant(ctx, db, auth, "bench-noisy", tenant.Pool, "basic", 20)
	if err != nil {
		return out, err
	}
	// The quiet tenant is a closed loop of 2 clients, which on its own
	// keeps the machine busy, so that any work the flood adds shows in its
	// latency; or, with quietRate, an open loop at that pace, as a tenant
	// within its plan sends.
	quiet := attackSpec{Name: "quiet alone", Targets: getTargets(bulk, ts[0]), Workers: 2, Duration: d, KeepLatencies: true}
	if quietRate > 0 {
		quiet.Rate, quiet.Workers = quietRate, 64
	}
	// A basic-plan tenant with many rows, whose requests are each as
	// expensive as the plan lets them be: a filter no index serves, over
	// all of its rows, within the plan's rate, its transactions at once
	// and its statement timeout.
	var heavy []vegeta.Target
	var heavyDirect func(context.Context, time.Duration) (attackResult, error)
	if only == nil || only["expensive"] || only["expensive-plan"] || only["expensive-direct"] {
		h, err := oneTenant(ctx, db, auth, "bench-heavy", tenant.Pool, "basic", 1)
		if err != nil {
			return out, err
		}
		if _, err := db.Postgres().Admin().Exec(ctx, `SET session_replication_role = replica;
			INSERT INTO app.projects (tenant_id, name, description) SELECT '`+string(h.t.ID)+`', 'h' || g, repeat('x', 200) FROM generate_series(1, 300000) g;
			RESET session_replication_role`); err != nil {
			return out, fmt.Errorf("seed the heavy tenant: %w", err)
		}
		// Settle what the seeding leaves behind before anything is
		// measured, as it would be long settled for a real tenant's rows:
		// their hint bits, which the first scan would otherwise set,
		// dirtying every page, and the vacuum that 300,000 inserts set
		// off; then write it all out. Otherwise the first rounds measure
		// that write-back, not the tenant's scans.
		for _, q := range []string{`VACUUM (FREEZE, ANALYZE) app.projects`, `CHECKPOINT`} {
			if _, err := db.Postgres().Admin().Exec(ctx, q); err != nil {
				return out, fmt.Errorf("settle the heavy tenant's rows (%s): %w", q, err)
			}
		}
		heavy = []vegeta.Target{{Method: "GET", URL: bulk + "/rest/v1/projects?select=id&description=like.*zzz*&limit=1",
			Header: http.Header{"Authorization": {"Bearer " + h.token}}}}
		heavyDirect = pacedScans(db, h.admin, httpapi.DefaultLimits["basic"].StatementTime)
	}
	// Business code that talks to PostgreSQL directly, compromised: a
	// registered function's login role running CPU-bound statements on as
	// many connections as its role allows (the default), or on one.
	var fnAll, fnOne func(context.Context, time.Duration) (attackResult, error)
	if only == nil || only["function"] || only["function-1"] {
		fc, err := db.Postgres().CreateFunctionWith(ctx, "bench_load", postgres.FunctionOptions{})
		if err != nil {
			return out, err
		}
		cc := db.Postgres().Admin().Config().ConnConfig.Copy()
		cc.User, cc.Password = fc.LoginRole, fc.Password
		admin := db.Postgres().Admin()
		fnAll = func(ctx context.Context, d time.Duration) (attackResult, error) {
			return functionLoad(ctx, admin, cc, postgres.DefaultFunctionConnections, d)
		}
		fnOne = func(ctx context.Context, d time.Duration) (attackResult, error) {
			return functionLoad(ctx, admin, cc, 1, d)
		}
	}
	// A flood of requests the server refuses before any SQL (an unknown
	// table: 404, audited) must be held to the plan as well.
	misses := []vegeta.Target{{Method: "GET", URL: bulk + "/rest/v1/no_such_table", Header: http.Header{"Authorization": {"Bearer " + noisy.token}}}}
	// The same tenant's requests with its token's signature broken: 401,
	// audited, before any tenant is known. Once with one forged token, as a
	// client stuck on a bad token sends it; once with a different one
	// every time, as an attacker would, so that no cache helps.
	forged := getTargets(bulk, noisy)
	for i := range forged {
		forged[i].Header = http.Header{"Authorization": {"Bearer " + noisy.token[:len(noisy.token)-4] + "AAAA"}}
	}
	// Each changes 8 characters of the signature's R (its first 43
	// characters), which costs the server a whole Ed25519 check. Changing
	// its last characters instead makes S too large, which Ed25519 refuses
	// at once, about a third of the cost.
	var unique []vegeta.Target
	sig := strings.LastIndexByte(noisy.token, '.') + 1
	for i := range 20000 {
		t := forged[i%len(forged)]
		t.Header = http.Header{"Authorization": {"Bearer " + noisy.token[:sig+8] + fmt.Sprintf("%08x", i) + noisy.token[sig+16:]}}
		unique = append(unique, t)
	}
	// The same new forged tokens, each from an address of its own, as a
	// botnet would send them: no address reaches its share, so each is
	// verified.
	var uniqueSpread []vegeta.Target
	for i, t := range unique {
		t.Header = t.Header.Clone()
		t.Header.Set("X-Forwarded-For", fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255))
		uniqueSpread = append(uniqueSpread, t)
	}
	// Logins for a user who does not exist, from the same address: each
	// costs a full password hash (the same work as a real check), unless
	// the address's share of denials stops it first.
	logins := []vegeta.Target{{Method: "POST", URL: bulk + "/v1/auth/token", Header: http.Header{"Content-Type": {"application/json"}},
		Body: []byte(`{"tenant":"bench-noisy","email":"nobody@bench-noisy.test","password":"guess"}`)}}
	// The same logins, each from an address of its own, as a botnet would
	// send them: no address reaches its share, so every one is checked,
	// bounded only by the hasher's slots. The bench server trusts loopback
	// as a proxy, so X-Forwarded-For names the address.
	var spread []vegeta.Target
	for i := range 20000 {
		t := logins[0]
		t.Header = http.Header{"Content-Type": {"application/json"}, "X-Forwarded-For": {fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255)}}
		spread = append(spread, t)
	}
	// The same logins from many addresses, each naming a tenant of its
	// own (tenants that do not exist, which get the same answers and
	// shares as those that do): no tenant's share of the password checks
	// stops them, only the server's budget.
	var spreadTenants []vegeta.Target
	for i, t := range spread {
		t.Body = []byte(fmt.Sprintf(`{"tenant":"bench-guess-%d","email":"nobody@bench-noisy.test","password":"guess"}`, i))
		spreadTenants = append(spreadTenants, t)
	}
	// The control: the paced flood's requests, sent to a handler in this
	// process that answers each with a 429 and does nothing else. What it
	// does to the quiet tenant is what any flood at that pace costs this
	// machine (the load process, the loopback, the Go runtime's share of
	// the CPUs), before bulkhead does anything with a request.
	null, err := startNullServer()
	if err != nil {
		return out, err
	}
	defer null.Close()
	nullTargets := getTargets(bulk, noisy)
	for i := range nullTargets {
		nullTargets[i].URL = null.url + strings.TrimPrefix(nullTargets[i].URL, bulk)
	}
	planRate := int(httpapi.DefaultLimits["basic"].Rate)
	all := []floodKind{
		{"paced", fmt.Sprintf("%d rps (%dx its plan)", floodRate, floodRate/50), floodRate, false, getTargets(bulk, noisy), false, nil},
		{"paced-null", fmt.Sprintf("control: %d rps at a bare handler that only answers 429", floodRate), floodRate, false, nullTargets, true, nil},
		{"paced-niced", fmt.Sprintf("%d rps, load process niced", floodRate), floodRate, true, getTargets(bulk, noisy), false, nil},
		{"paced-null-niced", fmt.Sprintf("control: %d rps at a bare handler, load process niced", floodRate), floodRate, true, nullTargets, true, nil},
		{"404", fmt.Sprintf("%d rps of 404s (an unknown table)", floodRate), floodRate, false, misses, false, nil},
		{"forged", fmt.Sprintf("%d rps with one forged token (401)", floodRate), floodRate, false, forged, false, nil},
		{"forged-new", fmt.Sprintf("%d rps, a new forged token each time (401)", floodRate), floodRate, false, unique, false, nil},
		{"forged-spread", fmt.Sprintf("%d rps, a new forged token each time, each from its own address", floodRate), floodRate, false, uniqueSpread, false, nil},
		{"logins", fmt.Sprintf("%d rps of failed logins (401)", floodRate), floodRate, false, logins, false, nil},
		{"logins-spread", fmt.Sprintf("%d rps of failed logins, each from its own address", floodRate), floodRate, false, spread, false, nil},
		{"logins-tenants", fmt.Sprintf("%d rps of failed logins, each from its own address and naming its own tenant", floodRate), floodRate, false, spreadTenants, false, nil},
		{"expensive", fmt.Sprintf("%d rps of queries that scan all of a tenant's 300,000 rows", floodRate), floodRate, false, heavy, false, nil},
		{"expensive-plan", fmt.Sprintf("%d rps of the same scans (the basic plan's rate)", planRate), planRate, false, heavy, false, nil},
		{key: "expensive-direct", name: fmt.Sprintf("control: the same scans through the library, one at a time at the basic plan's %s of statement time a second", httpapi.DefaultLimits["basic"].StatementTime), control: true, direct: heavyDirect},
		{key: "logins-direct", name: fmt.Sprintf("control: password checks in this process at the server's budget (%.0f a second), without HTTP", httpapi.DefaultPasswordChecks().Rate), control: true, direct: pacedChecks(httpapi.DefaultPasswordChecks().Rate, false)},
		{key: "logins-hashing", name: fmt.Sprintf("control: the same checks through a password hashing process at nice 19, as the server's (%.0f a second)", httpapi.DefaultPasswordChecks().Rate), control: true, direct: pacedChecks(httpapi.DefaultPasswordChecks().Rate, true)},
		{key: "logins-process", name: fmt.Sprintf("control: the same checks in a process of their own (%.0f a second)", httpapi.DefaultPasswordChecks().Rate), control: true, direct: checksProcess(httpapi.DefaultPasswordChecks().Rate)},
		{key: "function", name: fmt.Sprintf("outside the API: a function's %d connections (its role's limit) running CPU-bound statements", postgres.DefaultFunctionConnections), control: true, direct: fnAll},
		{key: "function-1", name: "outside the API: the same statements on one connection", control: true, direct: fnOne},
		{"closed-niced", "32 clients, closed loop, load process niced", 0, true, getTargets(bulk, noisy), false, nil},
		{"closed", "32 clients, closed loop", 0, false, getTargets(bulk, noisy), false, nil},
	}
	var kinds []floodKind
	for _, f := range all {
		if only == nil || only[f.key] {
			kinds = append(kinds, f)
		}
	}
	// The first measurement would otherwise find the server and
	// PostgreSQL cold (the seeding just ended): its "alone" p99 came out
	// several times the later ones, a first pair with a ratio far below 1.
	if warmup > 0 {
		logf("noisy neighbour: quiet tenant warming up for %s (not measured)", warmup)
		warm := quiet
		warm.Name, warm.Duration = "quiet warm-up", warmup
		if _, err := runAttack(ctx, warm); err != nil {
			return out, err
		}
	}
	runs := make([][]floodResult, len(kinds))
	for r := 1; r <= rounds; r++ {
		for k, f := range kinds {
			prefix := "noisy neighbour"
			if rounds > 1 {
				prefix = fmt.Sprintf("noisy neighbour, round %d of %d", r, rounds)
			}
			logf("%s: quiet tenant alone for %s", prefix, d)
			before, start := cfg.meter.read(), time.Now()
			alone, err := runAttack(ctx, quiet)
			if err != nil {
				return out, err
			}
			aloneCPU := cpuPerSecond(before, cfg.meter.read(), time.Since(start))
			logf("%s: quiet tenant while a basic-plan tenant floods, %s", prefix, f.name)
			flood := attackSpec{Name: "flood " + f.name, Targets: f.targets, Workers: 32, Duration: lead + d + 200*time.Millisecond, Rate: f.rate, Niced: f.niced}
			if f.rate > 0 {
				// Enough clients that answers held by the server do not slow
				// the pace: an open loop.
				flood.Workers = 512
			}
			type res struct {
				r   attackResult
				err error
			}
			fc := make(chan res, 1)
			go func() {
				if f.direct != nil {
					r, err := f.direct(ctx, flood.Duration)
					fc <- res{r, err}
					return
				}
				r, err := runAttackAllowing(ctx, flood, 0) // most of the flood is refused with 429, as it should be
				fc <- res{r, err}
			}()
			time.Sleep(lead)
			q := quiet
			q.Name = "quiet during the flood, " + f.name
			stop := func() {}
			if cfg.profile != "" && f.key == cfg.profileFlood && r == 1 {
				if stop, err = startProfile(cfg.profile); err != nil {
					return out, err
				}
			}
			before, start = cfg.meter.read(), time.Now()
			qr, err := runAttack(ctx, q)
			floodCPU := cpuPerSecond(before, cfg.meter.read(), time.Since(start))
			stop()
			fr := <-fc
			if err == nil {
				err = fr.err
			}
			if err != nil {
				return out, err
			}
			pair := floodResult{name: f.name, control: f.control, alone: alone, flood: fr.r, quiet: qr, aloneCPU: aloneCPU, floodCPU: floodCPU}
			logf("%s: quiet p99 %s alone, %s during (ratio %.2f); the flood sent %.0f rps, %d of them not refused (%s)%s", prefix,
				round(alone.P99), round(qr.P99), pair.ratio(), fr.r.Rate, int(fr.r.Requests)-fr.r.Status["429"]-fr.r.Status["503"], statusNote(fr.r.Status), pair.cpuNote())
			if cfg.timeline {
				logf("%s: quiet p99 by second, alone: %s", prefix, timelineNote(bySecond(alone.Latencies, d)))
				logf("%s: quiet p99 by second, during: %s", prefix, timelineNote(bySecond(qr.Latencies, d)))
			}
			runs[k] = append(runs[k], pair)
		}
	}
	for _, rs := range runs {
		out.floods = append(out.floods, medianFlood(rs))
	}
	return out, nil
}

// functionStatement is the function flood's statement: about 0.16 s of
// one CPU and no temporary files. The series is a set-returning function
// in the target list, so it is counted as it is made; in FROM it would be
// stored first, spilling about 27 MB to temporary files per statement,
// and the flood would be one of writes as much as of CPU.
const functionStatement = `SELECT count(*) FROM (SELECT generate_series(1, 2000000)) s`

// functionLoad is what a compromised function can do to PostgreSQL without
// the API: conns sessions as its login role, each running a CPU-bound
// statement (no table, no tenant) over and over for d. PostgreSQL bounds it
// only by the role's connection limit, and the watchdog's statement limit
// (minutes, far past d).
func functionLoad(parent context.Context, admin *pgxpool.Pool, cc *pgx.ConnConfig, conns int, d time.Duration) (attackResult, error) {
	ctx, cancel := context.WithTimeout(parent, d)
	defer cancel()
	start := time.Now()
	// The statements in flight at the end are canceled and their sessions
	// closed; wait until PostgreSQL has ended them, so that the next
	// measurement of the quiet tenant alone does not run beside them.
	defer func() {
		for i := 0; i < 300; i++ {
			var n int
			if err := admin.QueryRow(parent, `SELECT count(*) FROM pg_stat_activity WHERE usename = $1`, cc.User).Scan(&n); err != nil || n == 0 {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	counts := make(chan int, conns)
	errs := make(chan error, conns)
	for range conns {
		go func() {
			n := 0
			defer func() { counts <- n }()
			c, err := pgx.ConnectConfig(ctx, cc)
			if err != nil {
				errs <- err
				return
			}
			defer c.Close(context.Background())
			for ctx.Err() == nil {
				if _, err := c.Exec(ctx, functionStatement); err == nil {
					n++
				} else if ctx.Err() == nil {
					errs <- err
					return
				}
			}
		}()
	}
	n := 0
	for range conns {
		n += <-counts
	}
	select {
	case err := <-errs:
		return attackResult{}, fmt.Errorf("function load: %w", err)
	default:
	}
	took := time.Since(start)
	return attackResult{Name: "function", Requests: uint64(n), Rate: float64(n) / took.Seconds(),
		Throughput: float64(n) / took.Seconds(), Success: 1, Status: map[string]int{"200": n}}, nil
}

// pacedScans is the control of the expensive flood: the same scan of the
// heavy tenant's rows that its requests ask for, as that tenant (row
// security and the verified context as on the data API, parallel workers
// off as the plan sets them), but through the library instead of the
// HTTP API, and one at a time at the pace a budget of perSecond of
// statement time a second settles into: after a scan that took t, it
// waits t·(1s/perSecond − 1), so that scans take perSecond of each
// second. What it does to the quiet tenant is what the work the plan
// allows costs the machine, whatever bulkhead does around it.
func pacedScans(db *bulkhead.DB, p tenant.Principal, perSecond time.Duration) func(context.Context, time.Duration) (attackResult, error) {
	return func(ctx context.Context, d time.Duration) (attackResult, error) {
		scan := func() error {
			return db.Tx(tenant.NewContext(ctx, p), func(tx pgx.Tx) error {
				if _, err := tx.Exec(ctx, `SET LOCAL max_parallel_workers_per_gather = 0`); err != nil {
					return err
				}
				var id string
				err := tx.QueryRow(ctx, `SELECT id::text FROM app.projects WHERE description LIKE '%zzz%' LIMIT 1`).Scan(&id)
				if errors.Is(err, pgx.ErrNoRows) {
					return nil
				}
				return err
			})
		}
		return runPaced(ctx, "expensive-direct", d, scan, func(took time.Duration) time.Duration { return idleAfter(took, perSecond) })
	}
}

// runPaced runs work over and over for d, one at a time, waiting
// pause(took) after each run that took took, and reports the runs as a
// load run named name would be.
func runPaced(ctx context.Context, name string, d time.Duration, work func() error, pause func(took time.Duration) time.Duration) (attackResult, error) {
	start := time.Now()
	end := start.Add(d)
	var n int
	for time.Now().Before(end) {
		t0 := time.Now()
		if err := work(); err != nil {
			return attackResult{}, fmt.Errorf("%s: %w", name, err)
		}
		n++
		select {
		case <-time.After(min(pause(time.Since(t0)), time.Until(end))):
		case <-ctx.Done():
			return attackResult{}, ctx.Err()
		}
	}
	took := time.Since(start)
	return attackResult{Name: name, Requests: uint64(n), Rate: float64(n) / took.Seconds(),
		Throughput: float64(n) / took.Seconds(), Success: 1, Status: map[string]int{"200": n}}, nil
}

// pacedChecks is the control of the login floods: failed password checks
// (a user that does not exist, which costs a whole check) with a hasher
// made as the server's default one is, in this process, which runs the
// server, at perSecond, the server's budget of password checks, which
// bounds the floods of logins from many addresses. What it does to the
// quiet tenant is what the checks the budget allows cost, without the
// flood's HTTP requests.
//
// With child, the hasher sends its work to a password hashing process of
// its own, started for the run, as the bench's server does by default:
// the checks the budget allows, where the server runs them, still
// without the flood's HTTP requests.
func pacedChecks(perSecond float64, child bool) func(context.Context, time.Duration) (attackResult, error) {
	return func(ctx context.Context, d time.Duration) (attackResult, error) {
		h := &identity.Hasher{}
		name := "logins-direct"
		if child {
			p, err := startHashing()
			if err != nil {
				return attackResult{}, fmt.Errorf("logins-hashing: %w", err)
			}
			defer p.Close(5 * time.Second)
			h.Deriver, name = p, "logins-hashing"
		}
		every := time.Duration(float64(time.Second) / perSecond)
		check := func() error {
			_, err := h.Check(ctx, "", "guess")
			return err
		}
		return runPaced(ctx, name, d, check, func(took time.Duration) time.Duration { return every - took })
	}
}

// checksProcess is pacedChecks in a process of its own (this executable's
// checks command), so that the checks share the machine with the server
// but not its process: its Go scheduler, its threads and its collector.
func checksProcess(perSecond float64) func(context.Context, time.Duration) (attackResult, error) {
	return func(ctx context.Context, d time.Duration) (attackResult, error) {
		self, err := os.Executable()
		if err != nil {
			return attackResult{}, err
		}
		out, err := exec.CommandContext(ctx, self, "checks", strconv.FormatFloat(perSecond, 'f', -1, 64), d.String()).Output()
		if err != nil {
			return attackResult{}, fmt.Errorf("the checks process: %w", err)
		}
		var r attackResult
		if err := json.Unmarshal(out, &r); err != nil {
			return attackResult{}, fmt.Errorf("the checks process's result: %w", err)
		}
		return r, nil
	}
}

// checks is the checks command: pacedChecks at args[0] a second for the
// duration args[1], its result as JSON on out.
func checks(ctx context.Context, args []string, out io.Writer) error {
	if len(args) != 2 {
		return errors.New("usage: bulkhead-bench checks PER_SECOND DURATION")
	}
	rate, err := strconv.ParseFloat(args[0], 64)
	if err != nil || rate <= 0 || rate > 1000 {
		return fmt.Errorf("checks: the rate must be a number of checks a second, above 0 and at most 1000: %q", args[0])
	}
	d, err := time.ParseDuration(args[1])
	if err != nil || d <= 0 || d > 10*time.Minute {
		return fmt.Errorf("checks: the duration must be above 0 and at most 10m: %q", args[1])
	}
	r, err := pacedChecks(rate, false)(ctx, d)
	if err != nil {
		return err
	}
	return json.NewEncoder(out).Encode(r)
}

// idleAfter is how long a budget of perSecond of statement time a second
// keeps a tenant out after a request that took took, once it has settled:
// took·(1s/perSecond − 1).
func idleAfter(took, perSecond time.Duration) time.Duration {
	return time.Duration(float64(took) * (float64(time.Second)/float64(perSecond) - 1))
}

// bySecond splits latencies, in the order their requests were sent, into
// one part for each whole second of d and returns each part's p99. With
// the quiet tenant paced, each part is the requests of one second; in a
// closed loop, an equal share of them, which is close to a second.
func bySecond(lat []time.Duration, d time.Duration) []time.Duration {
	n := max(1, int(d/time.Second))
	if len(lat) == 0 {
		return nil
	}
	n = min(n, len(lat))
	out := make([]time.Duration, 0, n)
	for i := range n {
		out = append(out, quantile(lat[i*len(lat)/n:(i+1)*len(lat)/n], 0.99))
	}
	return out
}

// timelineNote formats bySecond's p99s in milliseconds.
func timelineNote(ps []time.Duration) string {
	parts := make([]string, len(ps))
	for i, p := range ps {
		parts[i] = strconv.FormatFloat(float64(p)/float64(time.Millisecond), 'f', 1, 64)
	}
	return strings.Join(parts, " ") + " (ms)"
}

// pooledRatio is the p99 of the quiet tenant's latencies during the flood
// in all rounds together, against the p99 of its latencies alone in all
// rounds together: with 5 rounds of 10 s at 200 requests a second, each
// p99 rests on 100 requests rather than one round's 20, so it moves less
// with one slow moment than the median round's ratio does.
func pooledRatio(rs []floodResult) float64 {
	var alone, during []time.Duration
	for _, r := range rs {
		alone = append(alone, r.alone.Latencies...)
		during = append(during, r.quiet.Latencies...)
	}
	a, d := quantile(alone, 0.99), quantile(during, 0.99)
	if a <= 0 || d <= 0 {
		return 0
	}
	return float64(d) / float64(a)
}

// quantile is the q-quantile of ls (nearest rank); 0 for none.
func quantile(ls []time.Duration, q float64) time.Duration {
	if len(ls) == 0 {
		return 0
	}
	s := slices.Clone(ls)
	slices.Sort(s)
	i := int(math.Ceil(q*float64(len(s)))) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// medianFlood picks the run with the median p99 ratio (the lower middle
// one for an even count) and notes the range over all runs.
func medianFlood(rs []floodResult) floodResult {
	sorted := append([]floodResult(nil), rs...)
	sort.Slice(sorted, func(i, j int) bool { return sorted[i].ratio() < sorted[j].ratio() })
	m := sorted[(len(sorted)-1)/2]
	m.minRatio, m.maxRatio = sorted[0].ratio(), sorted[len(sorted)-1].ratio()
	m.pooled = pooledRatio(rs)
	return m
}

func oneTenant(ctx context.Context, db *bulkhead.DB, auth *bulkhead.Auth, slug string, tier tenant.Tier, plan string, rows int) (benchTenant, error) {
	t, _, err := db.Postgres().CreateTenant(ctx, postgres.TenantCreate{Slug: tenant.Slug(slug), Tier: tier, Plan: plan})
	if err != nil {
		return benchTenant{}, err
	}
	h := &identity.Hasher{Params: identity.Params{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}}
	hash, _ := h.Hash(ctx, "bench-password")
	u, err := db.Postgres().CreateUser(ctx, t.ID, "admin@"+slug+".test", hash, tenant.Admin)
	if err != nil {
		return benchTenant{}, err
	}
	tok, _, err := auth.IssueUserToken(ctx, u, t)
	if err != nil {
		return benchTenant{}, err
	}
	bt := benchTenant{t: t, token: tok, admin: tenant.Principal{Subject: u.ID, TenantID: t.ID, Role: tenant.Admin}}
	schema, _ := postgres.Schema(t.Placement)
	pctx := tenant.NewContext(ctx, bt.admin)
	err = db.Tx(pctx, func(tx pgx.Tx) error {
		rs, err := tx.Query(ctx, `INSERT INTO `+schema+`.projects (name) SELECT 'p' || g FROM generate_series(1, $1) g RETURNING id::text`, rows)
		if err != nil {
			return err
		}
		defer rs.Close()
		for rs.Next() {
			var id string
			rs.Scan(&id)
			bt.ids = append(bt.ids, id)
		}
		return rs.Err()
	})
	return bt, err
}

type scalePoint struct {
	tenants int
	added   int           // tenants onboarded through the API for this step
	took    time.Duration // onboarding them
	res     attackResult
}

// runScale onboards pool tenants up to each count, through the API's
// POST /v1/tenants/batch, and measures get-by-id latency for the first
// tenants at each.
func runScale(ctx context.Context, db *bulkhead.DB, auth *bulkhead.Auth, bulk string, ts []benchTenant, spec string, d time.Duration) ([]scalePoint, error) {
	var out []scalePoint
	have := len(ts)
	for _, f := range strings.Split(spec, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 1 {
			return nil, fmt.Errorf("--scale: %q is not a count", f)
		}
		start := time.Now()
		added := max(0, n-have)
		if added > 0 {
			if err := onboardBatch(ctx, auth, bulk, func(i int) string { return fmt.Sprintf("scale-%06d", i) }, have, n); err != nil {
				return nil, err
			}
			fmt.Fprintln(os.Stderr)
		}
		took := time.Since(start)
		have = max(have, n)
		// Measure the steady state, not autovacuum catching up with the
		// rows just written: vacuum, analyze and checkpoint first, at
		// every step alike.
		logf("scale: VACUUM ANALYZE and CHECKPOINT")
		if _, err := db.Postgres().Admin().Exec(ctx, `VACUUM (ANALYZE)`); err != nil {
			return nil, err
		}
		if _, err := db.Postgres().Admin().Exec(ctx, `CHECKPOINT`); err != nil {
			return nil, err
		}
		logf("scale: get by id with %d tenants present", have)
		r, err := runAttack(ctx, attackSpec{Name: fmt.Sprintf("%d tenants", have), Targets: getTargets(bulk, ts[0]), Workers: 4, Duration: d})
		if err != nil {
			return nil, err
		}
		out = append(out, scalePoint{tenants: have, res: r, took: took, added: added})
	}
	return out, nil
}

type siloReport struct {
	silos       int
	onboard     time.Duration
	res         attackResult
	connections int // the server's app pool (the data API's, on the gateway role)
	poolMax     int32
	total       int // every connection to the database: also the admin pool and the baseline server's
	rssKB       int
	migrate     siloMigration
}

// siloMigration is the time `bulkhead migrate` took to bring every silo
// forward.
type siloMigration struct {
	silos       int // silos that were behind
	from, to    int // tenant-table versions
	concurrency int
	took        time.Duration
}

// runSilos onboards silo tenants through `bulkhead tenants import`, gives
// a sample of them a user and rows, spreads get-by-id over the sample, and
// reports how many connections the server holds, its memory, and how long
// migrating every silo takes.
func runSilos(ctx context.Context, db *bulkhead.DB, auth *bulkhead.Auth, bin, adminURL, dir, bulk string, n int, d time.Duration, workers uint64) (*siloReport, error) {
	slug := func(i int) string { return fmt.Sprintf("silo-%05d", i) }
	sampled := func(i int) bool { return i%(max(n/50, 1)) == 0 }
	lines := make([]importLine, n)
	for i := range lines {
		lines[i] = importLine{ID: slug(i), Tier: string(tenant.Silo), Plan: "basic"}
		if sampled(i) {
			lines[i].Plan = "premium"
		}
	}
	logf("silos: onboarding %d silos with %s tenants import", n, bin)
	start := time.Now()
	if err := importTenants(ctx, bin, adminURL, dir, lines); err != nil {
		return nil, err
	}
	took := time.Since(start)
	var sample []benchTenant
	for i := range n {
		if !sampled(i) {
			continue
		}
		// The tenant is there: oneTenant finds it, and adds a user and rows.
		bt, err := oneTenant(ctx, db, auth, slug(i), tenant.Silo, "premium", 10)
		if err != nil {
			return nil, err
		}
		sample = append(sample, bt)
	}
	rep := &siloReport{silos: n, onboard: took}
	var targets []vegeta.Target
	for _, t := range sample {
		targets = append(targets, getTargets(bulk, t)...)
	}
	logf("silos: get by id over %d of %d silos", len(sample), n)
	r, err := runAttack(ctx, attackSpec{Name: "silos", Targets: targets, Workers: workers, Duration: d})
	if err != nil {
		return nil, err
	}
	rep.res = r
	err = db.Postgres().Admin().QueryRow(ctx, `SELECT count(*) FILTER (WHERE usename = $1 AND application_name = $2), count(*) FROM pg_stat_activity WHERE datname = current_database()`,
		db.Postgres().AppRole, postgres.GatewayApplicationName).Scan(&rep.connections, &rep.total)
	if err != nil {
		return nil, err
	}
	rep.poolMax = db.Postgres().App().Config().MaxConns
	rep.rssKB = rssKB()
	if rep.migrate, err = migrateSilos(ctx, db, bin, adminURL, n); err != nil {
		return nil, err
	}
	return rep, nil
}

// migrateSilos puts every silo back on tenant-table version 1 in the
// catalog and times `bin migrate`, the command an operator runs to
// upgrade, bringing them all to the latest version: each silo re-applies
// every later version's DDL in its own transaction (the steps are
// idempotent, so this is real work on real schemas), after the command's
// own pass over the database (roles, hardening, migrations, keys). It
// checks the command's summary and the catalog: all n silos made it.
func migrateSilos(ctx context.Context, db *bulkhead.DB, bin, adminURL string, n int) (siloMigration, error) {
	m := siloMigration{from: 1, to: postgres.TenantSchemaVersion, concurrency: 4}
	tag, err := db.Postgres().Admin().Exec(ctx, `UPDATE bulkhead_control.tenants SET schema_version = $1 WHERE tier = 'silo'`, m.from)
	if err != nil {
		return m, fmt.Errorf("put the silos back on version %d: %w", m.from, err)
	}
	if int(tag.RowsAffected()) != n {
		return m, fmt.Errorf("%d silos in the catalog, want %d", tag.RowsAffected(), n)
	}
	logf("silos: %s migrate, %d silos from tenant-table version %d to %d, %d at once", bin, n, m.from, m.to, m.concurrency)
	var stdout bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "migrate", "--database-url", adminURL, "--concurrency", strconv.Itoa(m.concurrency))
	cmd.Stdout = &stdout
	cmd.Stderr = os.Stderr
	start := time.Now()
	err = cmd.Run()
	m.took = time.Since(start)
	if err != nil {
		return m, fmt.Errorf("%s migrate: %w\n%s", bin, err, stdout.Bytes())
	}
	want := fmt.Sprintf("silos: %d behind, %d migrated to version %d, 0 failed", n, n, m.to)
	if !strings.Contains(stdout.String(), want) {
		return m, fmt.Errorf("%s migrate did not say %q:\n%s", bin, want, stdout.Bytes())
	}
	var behind int
	if err := db.Postgres().Admin().QueryRow(ctx, `SELECT count(*) FROM bulkhead_control.tenants WHERE tier = 'silo' AND schema_version <> $1`, m.to).Scan(&behind); err != nil {
		return m, err
	}
	if behind != 0 {
		return m, fmt.Errorf("after %s migrate the catalog has %d silos not on version %d", bin, behind, m.to)
	}
	m.silos = n
	return m, nil
}

func rssKB() int {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "VmRSS:") {
			n, _ := strconv.Atoi(strings.Fields(sc.Text())[1])
			return n
		}
	}
	return 0
}

func printExtra(w io.Writer, noisy noisyReport, scale []scalePoint, silos *siloReport) {
	if len(noisy.floods) > 0 {
		printNoisy(w, noisy)
	}
	if len(scale) > 0 {
		fmt.Fprintf(w, "\ntenants present (get by id, 4 clients; tenants onboarded through POST /v1/tenants/batch, %d a request)\n", batchSize)
		tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
		fmt.Fprintln(tw, "tenants\tonboarded\tin\trate\trps\tp50\tp99\tp99 / first\t")
		for _, p := range scale {
			fmt.Fprintf(tw, "%d\t%d\t%s\t%.0f/s\t%.0f\t%s\t%s\t%.2f\t\n", p.tenants, p.added, p.took.Round(time.Millisecond), perSecond(p.added, p.took),
				p.res.Throughput, round(p.res.P50), round(p.res.P99), float64(p.res.P99)/float64(scale[0].res.P99))
		}
		tw.Flush()
	}
	if silos != nil {
		fmt.Fprintf(w, "\n%d silo tenants: onboarded through bulkhead tenants import in %s (%.0f/s); get by id over a sample: %.0f rps, p50 %s, p99 %s; the server's app pool holds %d PostgreSQL connections (at most %d) for all of them, %d to the database in all (with the admin pool, the pool the bench seeds through and the baseline's); bench process RSS %d MiB\n",
			silos.silos, silos.onboard.Round(time.Millisecond), perSecond(silos.silos, silos.onboard), silos.res.Throughput,
			round(silos.res.P50), round(silos.res.P99), silos.connections, silos.poolMax, silos.total, silos.rssKB/1024)
		m := silos.migrate
		fmt.Fprintf(w, "bulkhead migrate --concurrency %d, every silo from tenant-table version %d to %d: %d silos in %s (%.0f/s), the command's pass over the database included\n",
			m.concurrency, m.from, m.to, m.silos, m.took.Round(time.Millisecond), perSecond(m.silos, m.took))
	}
}

// pace says how the quiet tenant was paced, or "" for the closed loop.
func (n noisyReport) pace() string {
	if n.quietRate > 0 {
		return fmt.Sprintf("paced at %d rps", n.quietRate)
	}
	return ""
}

// printNoisy prints the noisy-neighbour table.
func printNoisy(w io.Writer, noisy noisyReport) {
	quiet := "2 clients, closed loop"
	if p := noisy.pace(); p != "" {
		quiet = p
	}
	fmt.Fprintf(w, "\nnoisy neighbour (a quiet premium tenant, %s; a basic-plan tenant, 50 rps burst 100, flooding; each flood paired with the quiet tenant alone just before it", quiet)
	if noisy.rounds > 1 {
		fmt.Fprintf(w, "; the round with the median p99 ratio of %d, and the range", noisy.rounds)
	}
	fmt.Fprintln(w, ")")
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	head := "flood\tflood rps\trefused (429, 503)\tquiet rps alone\tduring\tquiet p50 alone\tduring\tquiet p99 alone\tduring\tp99 ratio\t"
	if noisy.rounds > 1 {
		head += "lowest\thighest\tall rounds pooled\t"
	}
	fmt.Fprintln(tw, head)
	for _, f := range noisy.floods {
		share := 0.0
		if f.flood.Requests > 0 {
			share = float64(f.flood.Status["429"]+f.flood.Status["503"]) / float64(f.flood.Requests)
		}
		fmt.Fprintf(tw, "%s\t%.0f\t%.0f%%\t%.0f\t%.0f\t%s\t%s\t%s\t%s\t%.2f\t", f.name, f.flood.Rate, 100*share,
			f.alone.Throughput, f.quiet.Throughput, round(f.alone.P50), round(f.quiet.P50), round(f.alone.P99), round(f.quiet.P99), f.ratio())
		if noisy.rounds > 1 {
			fmt.Fprintf(tw, "%.2f\t%.2f\t%.2f\t", f.minRatio, f.maxRatio, f.pooled)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
}
