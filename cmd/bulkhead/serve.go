package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/bulkhead-dev/bulkhead"
	"github.com/bulkhead-dev/bulkhead/audit"
	"github.com/bulkhead-dev/bulkhead/httpapi"
	"github.com/bulkhead-dev/bulkhead/identity"
	"github.com/bulkhead-dev/bulkhead/identity/hashproc"
	"github.com/bulkhead-dev/bulkhead/internal/buildinfo"
	"github.com/bulkhead-dev/bulkhead/postgres"
)

// serveOptions are the flags serve and dev share.
type serveOptions struct {
	addr        string
	cors        string
	idpIssuer   string
	idpJWKS     string
	idpAudience string
	idpTenant   string
	jsonLogs    bool
	auditLog    string
	metricsAddr string
	alarmLimit  int
	alarmWindow time.Duration
	alarmHook   string
	anchorHook  string
	pgLog       string
	alarmFile   string
	planFile    string
	anonDenials int
	anonTotal   int
	failedLogin int
	checks      int
	proxies     string
	hashing     string
	maxStmt     time.Duration
	maxIdle     time.Duration
	// shutdownDelay is how long the server keeps serving after a signal,
	// with GET /readyz answering 503, before it closes its listener.
	shutdownDelay time.Duration
}

func (o *serveOptions) register(fs interface {
	StringVar(*string, string, string, string)
	BoolVar(*bool, string, bool, string)
	IntVar(*int, string, int, string)
	DurationVar(*time.Duration, string, time.Duration, string)
}) {
	fs.StringVar(&o.addr, "addr", "127.0.0.1:8080", "address to listen on")
	fs.StringVar(&o.cors, "cors-origins", "", "comma-separated exact origins allowed to call the API from browsers (never a wildcard)")
	fs.StringVar(&o.idpIssuer, "idp-issuer", "", "an external identity provider's issuer (iss); with --idp-jwks-url")
	fs.StringVar(&o.idpJWKS, "idp-jwks-url", "", "the provider's JWKS URL (https, public address)")
	fs.StringVar(&o.idpAudience, "idp-audience", "", "the audience (aud) the provider's tokens must carry")
	fs.StringVar(&o.idpTenant, "idp-tenant-claim", "tenant_id", `claim path of the tenant, e.g. "tenant_id", "app_metadata.tenant_id", "custom:tenant_id"`)
	fs.BoolVar(&o.jsonLogs, "log-json", false, "log JSON lines instead of text")
	fs.IntVar(&o.alarmLimit, "alarm-denials", 20, "fire an alarm when one principal is denied more than this many times within --alarm-window (0: off)")
	fs.DurationVar(&o.alarmWindow, "alarm-window", time.Minute, "the window of --alarm-denials")
	fs.StringVar(&o.planFile, "plan-limits", "", "read each plan's limits (rate, burst, concurrent, statement_timeout, statement_time, parallel_workers) from this JSON file; those left out keep their defaults (see docs/api.md#limits-per-plan)")
	fs.StringVar(&o.alarmFile, "alarm-rules", "", "read the alarm rules from this JSON file instead of --alarm-denials and --alarm-window (see docs/audit.md#alarms)")
	fs.StringVar(&o.alarmHook, "alarm-webhook", "", "POST alarm transitions as JSON to this URL, signed with BULKHEAD_ALARM_WEBHOOK_SECRET (X-Bulkhead-Signature: sha256=<hex HMAC>)")
	fs.StringVar(&o.anchorHook, "checkpoint-webhook", "", "also POST each signed audit checkpoint to this URL (signed like --alarm-webhook, with BULKHEAD_ALARM_WEBHOOK_SECRET), an anchor outside the database")
	fs.StringVar(&o.pgLog, "pg-log", "", "follow this PostgreSQL server log: each context that was present but did not verify becomes an audit event and fires the invalid_context alarm (bulkhead dev sets it)")
	fs.StringVar(&o.metricsAddr, "metrics-addr", "", "serve Prometheus /metrics on this separate (admin) address, e.g. 127.0.0.1:9090; none by default")
	fs.IntVar(&o.anonDenials, "anonymous-denials", int(httpapi.DefaultAnonymousRefusals.Rate), "denials per second (burst ten times as many) each client address may get for requests without valid credentials; past it, 429 too_many_refusals (see docs/api.md#limits-per-plan)")
	fs.IntVar(&o.checks, "password-checks", int(httpapi.DefaultPasswordChecks().Rate), "password checks per second (burst twice as many) the whole server may start, for logins and new users' passwords; past it, 503 password_checks_busy before any password is checked; logins naming one tenant take a quarter at most (the default is 2 for each CPU)")
	fs.IntVar(&o.anonTotal, "anonymous-denials-total", int(httpapi.DefaultAnonymousRefusalsTotal.Rate), "denials per second (burst as many) the whole server gives to requests without valid credentials, from all addresses together; past it, 429 too_many_refusals, and tokens the server has not seen pass are not checked")
	fs.IntVar(&o.failedLogin, "failed-logins", int(httpapi.DefaultFailedLogins.Rate), "failed logins per second (burst ten times as many) each client address may have; past it, its logins get 429 too_many_refusals before any password is checked")
	fs.StringVar(&o.hashing, "password-hashing", "process", `where argon2id password work runs: "process" (a child process of this executable at nice 19, out of the server's scheduler and heap, so that logins slow tenants' requests less) or "inline" (in the server's process)`)
	fs.StringVar(&o.proxies, "trusted-proxies", "", "comma-separated addresses or CIDR prefixes of the reverse proxies in front of the server: a request from one of them is put down to the rightmost address in X-Forwarded-For that is not one of them (none by default: the header is never read)")
	fs.DurationVar(&o.maxStmt, "watchdog-max-statement", postgres.DefaultMaxStatement, "the watchdog cancels a statement of an app role (business code, which may set its own statement_timeout) that has run for longer, and ends its session at twice that; never below the longest plan's statement_timeout plus 10s")
	fs.DurationVar(&o.maxIdle, "watchdog-max-idle-in-transaction", postgres.DefaultMaxIdleInTransaction, "the watchdog ends the session of an app role that has been idle inside a transaction for longer (its locks and snapshot hold up others)")
	fs.DurationVar(&o.shutdownDelay, "shutdown-delay", 0, "on SIGINT or SIGTERM, keep serving this long with GET /readyz answering 503 before closing the listener, so that load balancers stop sending first (0: close at once; at most "+maxShutdownDelay.String()+")")
	fs.StringVar(&o.auditLog, "audit-log", "", `also write chained audit events and signed checkpoints as JSON lines to this file ("-" for stdout), for log shippers and as an anchor outside the database`)
}

func (o *serveOptions) external() ([]identity.Trust, error) {
	if o.idpIssuer == "" && o.idpJWKS == "" && o.idpAudience == "" {
		return nil, nil
	}
	if o.idpIssuer == "" || o.idpJWKS == "" || o.idpAudience == "" {
		return nil, usageError{"an external identity provider needs --idp-issuer, --idp-jwks-url and --idp-audience"}
	}
	return []identity.Trust{{Issuer: o.idpIssuer, JWKSURL: o.idpJWKS, Audience: o.idpAudience, TenantClaim: o.idpTenant}}, nil
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", "serve [--addr 127.0.0.1:8080] [--database-url URL] [flags]", stderr)
	dbURL := fs.String("database-url", "", "the control plane's PostgreSQL URL")
	var o serveOptions
	o.register(fs)
	if err := parseNoArgs(fs, args); err != nil {
		return err
	}
	if err := o.checkFlags(fs); err != nil {
		return err
	}
	u, err := databaseURL(*dbURL)
	if err != nil {
		return err
	}
	log := newLogger(stderr, o.jsonLogs)
	if _, err := postgres.Setup(ctx, u, log); err != nil {
		return err
	}
	app, err := startServer(ctx, u, o, log)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "bulkhead serving on http://%s\n", app.addr)
	return app.wait(ctx)
}

// app is a running server.
type app struct {
	db     *bulkhead.DB
	auth   *bulkhead.Auth
	srv    *http.Server
	addr   string
	errc   chan error
	log    *slog.Logger
	audit  *audit.Writer
	seqd   chan struct{} // closed when the audit sequencer has stopped
	api    *httpapi.Server
	cancel context.CancelFunc
	sink   io.Closer
	// hashing is the password hashing process; nil with inline hashing.
	hashing *hashproc.Process
	// shutdownDelay is --shutdown-delay.
	shutdownDelay time.Duration
	// hooks are the webhook sinks, waited for at shutdown so that the
	// last checkpoint and alarms are delivered before the process exits.
	hooks []*audit.WebhookSink
}

// maxShutdownDelay bounds --shutdown-delay: platforms kill a process that
// takes longer to stop (Kubernetes after 30 s by default).
const maxShutdownDelay = 5 * time.Minute

// webhookDrain bounds how long shutdown waits for webhook deliveries: a
// receiver that is down gets its retries (about 6 s) and no more.
const webhookDrain = 10 * time.Second

// refusalFlushEvery is how often the server writes the counts of
// refusals it did not audit one by one (httpapi.Config.AnonymousRefusals).
const refusalFlushEvery = 10 * time.Second

func startServer(ctx context.Context, dbURL string, o serveOptions, log *slog.Logger) (*app, error) {
	ext, err := o.external()
	if err != nil {
		return nil, err
	}
	rules, err := alarmRules(o.alarmFile, o.alarmLimit, o.alarmWindow)
	if err != nil {
		return nil, err
	}
	db, err := bulkhead.Open(ctx, bulkhead.Config{DatabaseURL: dbURL, Logger: log})
	if err != nil {
		return nil, err
	}
	if err := db.Postgres().PingApp(ctx); err != nil {
		db.Close()
		return nil, err
	}
	// Silos behind the current tenant-table version migrate before serving;
	// one that fails stays on its old version, and its requests still work
	// against the old tables.
	if rep, err := db.Postgres().MigrateSilos(ctx, postgres.MigrateOptions{}); err != nil {
		db.Close()
		return nil, err
	} else if rep.Total > 0 {
		log.Info("silos migrated", "behind", rep.Total, "migrated", rep.Migrated, "failed", len(rep.Failed))
	}
	auth, err := db.NewAuth(ctx, bulkhead.AuthConfig{External: ext})
	if err != nil {
		db.Close()
		return nil, err
	}
	origins, err := corsOrigins(o.cors)
	if err != nil {
		db.Close()
		return nil, err
	}
	var sink io.Writer
	var sinkCloser io.Closer
	switch o.auditLog {
	case "":
	case "-":
		sink = os.Stdout
	default:
		f, err := os.OpenFile(o.auditLog, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("audit log: %w", err)
		}
		sink, sinkCloser = f, f
	}
	writer := audit.NewWriter(db.Postgres(), 4096, 256)
	sinks := []audit.Sink{audit.LogSink{Logger: log}}
	var hooks []*audit.WebhookSink
	if o.alarmHook != "" {
		secret := os.Getenv("BULKHEAD_ALARM_WEBHOOK_SECRET")
		if len(secret) < 16 {
			writer.Close()
			db.Close()
			return nil, usageError{"--alarm-webhook needs BULKHEAD_ALARM_WEBHOOK_SECRET (16 bytes or more) to sign its requests"}
		}
		hook := &audit.WebhookSink{URL: o.alarmHook, Secret: []byte(secret), Logger: log}
		sinks, hooks = append(sinks, hook), append(hooks, hook)
	}
	var anchor *audit.WebhookSink
	if o.anchorHook != "" {
		secret := os.Getenv("BULKHEAD_ALARM_WEBHOOK_SECRET")
		if len(secret) < 16 {
			writer.Close()
			db.Close()
			return nil, usageError{"--checkpoint-webhook needs BULKHEAD_ALARM_WEBHOOK_SECRET (16 bytes or more) to sign its requests"}
		}
		anchor = &audit.WebhookSink{URL: o.anchorHook, Secret: []byte(secret), Logger: log, FailureMessage: "checkpoint webhook failed"}
		hooks = append(hooks, anchor)
	}
	alarms := audit.NewAlarms(rules, nil, sinks...)
	metrics := httpapi.NewMetrics()
	metrics.WatchAlarms(alarms)
	trusted, err := parseProxies(o.proxies)
	if err != nil {
		writer.Close()
		db.Close()
		return nil, err
	}
	limits, err := planLimits(o.planFile)
	if err != nil {
		writer.Close()
		db.Close()
		return nil, err
	}
	hasher := &identity.Hasher{}
	var hashing *hashproc.Process
	if o.hashing == "process" {
		if hashing, err = startHashing(log); err != nil {
			writer.Close()
			db.Close()
			return nil, err
		}
		hasher.Deriver = hashing
		metrics.WatchHashing(hashing)
	}
	h, err := httpapi.New(ctx, httpapi.Config{DB: db, Auth: auth, Logger: log, CORSOrigins: origins, Audit: writer, Metrics: metrics, Alarms: alarms, Limits: limits, Hasher: hasher,
		AnonymousRefusals:      httpapi.Bucket{Rate: float64(o.anonDenials), Burst: 10 * o.anonDenials},
		AnonymousRefusalsTotal: httpapi.Bucket{Rate: float64(o.anonTotal), Burst: o.anonTotal},
		FailedLogins:           httpapi.Bucket{Rate: float64(o.failedLogin), Burst: 10 * o.failedLogin},
		PasswordChecks:         httpapi.Bucket{Rate: float64(o.checks), Burst: 2 * o.checks},
		TrustedProxies:         trusted})
	if err != nil {
		closeHashing(hashing)
		writer.Close()
		db.Close()
		return nil, err
	}
	ln, err := net.Listen("tcp", o.addr)
	if err != nil {
		closeHashing(hashing)
		db.Close()
		return nil, fmt.Errorf("listen on %s: %w", o.addr, err)
	}
	bg, cancel := context.WithCancel(context.WithoutCancel(ctx))
	a := &app{db: db, auth: auth, shutdownDelay: o.shutdownDelay, addr: ln.Addr().String(), errc: make(chan error, 1), log: log, api: h,
		audit: writer, seqd: make(chan struct{}), cancel: cancel, sink: sinkCloser, hooks: hooks, hashing: hashing,
		srv: &http.Server{Handler: h.Handler(), ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 60 * time.Second,
			WriteTimeout: 60 * time.Second, IdleTimeout: 120 * time.Second, MaxHeaderBytes: 64 << 10}}
	go func() { a.errc <- a.srv.Serve(ln) }()
	if o.metricsAddr != "" {
		mln, err := net.Listen("tcp", o.metricsAddr)
		if err != nil {
			a.srv.Close()
			return nil, fmt.Errorf("listen on %s: %w", o.metricsAddr, err)
		}
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics.Handler())
		msrv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
		go msrv.Serve(mln)
		go func() { <-bg.Done(); msrv.Close() }()
		log.Info("serving metrics", "addr", mln.Addr().String())
	}
	// The watchdog ends app backends that lock tenant tables or idle in a
	// transaction, and resets settings planted on app roles.
	if limits, err := db.Postgres().WatchdogLimits(ctx); err != nil {
		log.Warn("watchdog: could not read the admin role's privileges", "err", err)
	} else {
		for _, l := range limits {
			log.Warn("watchdog limited", "why", l)
		}
	}
	wopts := o.watchdogOptions(limits)
	if wopts.MaxStatement != o.maxStmt {
		log.Info("watchdog: statement limit raised above the plans' statement timeouts", "max_statement", wopts.MaxStatement.String())
	}
	go db.Postgres().Watch(bg, 5*time.Second, wopts)
	if o.pgLog != "" {
		tail, err := audit.OpenLog(o.pgLog)
		if err != nil {
			a.srv.Close()
			return nil, fmt.Errorf("--pg-log: %w", err)
		}
		// Without CONTEXT lines a report cannot be told from an app role's
		// own RAISE LOG: say so once, where the operator looks.
		var verbosity string
		if err := db.Postgres().Admin().QueryRow(ctx, `SHOW log_error_verbosity`).Scan(&verbosity); err == nil && verbosity == "terse" {
			log.Warn("--pg-log: log_error_verbosity is terse, so PostgreSQL logs no CONTEXT lines and an app role can forge invalid_context reports; set it to default (the events say confirmed: false)")
		}
		go tail.Follow(bg, func(e audit.Event) {
			if err := writer.Record(bg, e); err != nil {
				log.Warn("invalid context not recorded", "err", err)
			}
		})
	}
	// Refusals of requests without credentials past their source's share
	// are counted, and the counts written every few seconds.
	go h.RunRefusalFlush(bg, refusalFlushEvery)
	// One trusted sequencer extends the audit chain, outside tenant
	// transactions.
	q := &sequencer{db: db.Postgres(), sink: sink, log: log, interval: 500 * time.Millisecond, checkpointEvery: 1000, checkpointAge: time.Minute, alarms: alarms, anchor: anchor}
	go func() { defer close(a.seqd); q.run(bg) }()
	bi := buildinfo.Read()
	log.Info("serving", "addr", a.addr, "version", bi.Version, "revision", bi.ShortRevision(), "schema_version", postgres.SchemaVersion())
	return a, nil
}

// drainTimer starts the wait of --shutdown-delay; tests replace it.
var drainTimer = time.After

// drain keeps serving for the shutdown delay with GET /readyz failing, so
// that load balancers stop sending before the listener closes, and
// without keep-alives, so that clients on open connections reconnect
// elsewhere. A second signal or the server failing ends it early.
func (a *app) drain() error {
	again := make(chan os.Signal, 1)
	signal.Notify(again, os.Interrupt, syscall.SIGTERM)
	defer signal.Stop(again)
	a.api.Drain()
	a.srv.SetKeepAlivesEnabled(false)
	a.log.Info("draining: GET /readyz answers 503; still serving", "for", a.shutdownDelay.String())
	select {
	case <-drainTimer(a.shutdownDelay):
	case <-again:
		a.log.Info("second signal: the drain ends early")
	case err := <-a.errc:
		return err
	}
	return nil
}

// wait serves until ctx ends, then shuts down gracefully: in-flight
// requests finish, queued audit events are committed and chained, and a
// last checkpoint is written.
func (a *app) wait(ctx context.Context) error {
	var err error
	select {
	case err = <-a.errc:
	case <-ctx.Done():
		if a.shutdownDelay > 0 {
			err = a.drain()
		}
		a.log.Info("shutting down")
		sctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
		if serr := a.srv.Shutdown(sctx); serr != nil && !errors.Is(serr, http.ErrServerClosed) {
			err = serr
		}
		cancel()
	}
	fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	if ferr := a.api.FlushRefusals(fctx); ferr != nil {
		a.log.Error("counted refusals not written", "err", ferr)
	}
	cancel()
	a.audit.Close()
	a.cancel()
	<-a.seqd
	// The sequencer's last checkpoint, and the alarms of its last batch,
	// were handed to the webhooks: let them arrive (or run out of tries).
	hctx, hcancel := context.WithTimeout(context.Background(), webhookDrain)
	for _, w := range a.hooks {
		if herr := w.Close(hctx); herr != nil {
			a.log.Error("webhook deliveries not finished at shutdown", "err", herr)
		}
	}
	hcancel()
	if a.sink != nil {
		a.sink.Close()
	}
	closeHashing(a.hashing)
	a.auth.Close()
	a.db.Close()
	return err
}

// hashWorkerCommand is the hidden command the password hashing process
// runs: this executable, reading derivations on its standard input.
const hashWorkerCommand = "hash-worker"

// startHashing starts the password hashing process: this executable
// with hashWorkerCommand. Its environment holds none of the server's
// (no database URL, no secrets), only the Go runtime's settings.
func startHashing(log *slog.Logger) (*hashproc.Process, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("--password-hashing process: finding this executable: %w (--password-hashing inline runs the work in the server)", err)
	}
	env := []string{}
	for _, k := range []string{"GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	// On Linux the child is this very file, through /proc/self/exe, even
	// when the path has since been replaced (an upgrade in place): a child
	// restarted after a crash runs the server's own version.
	path := self
	if _, err := os.Stat("/proc/self/exe"); err == nil {
		path = "/proc/self/exe"
	}
	p := &hashproc.Process{Logger: log, Command: func() *exec.Cmd {
		cmd := exec.Command(path, hashWorkerCommand)
		cmd.Args[0] = self // what ps shows
		cmd.Env = env
		return cmd
	}}
	if err := p.Start(); err != nil {
		return nil, fmt.Errorf("--password-hashing process: %w (--password-hashing inline runs the work in the server)", err)
	}
	return p, nil
}

func closeHashing(p *hashproc.Process) {
	if p != nil {
		p.Close(5 * time.Second)
	}
}

// parseProxies reads --trusted-proxies: addresses or CIDR prefixes,
// separated by commas.
func parseProxies(v string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, f := range strings.Split(v, ",") {
		f = strings.TrimSpace(f)
		if f == "" {
			continue
		}
		if p, err := netip.ParsePrefix(f); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(f)
		if err != nil || a.Zone() != "" {
			return nil, usageError{fmt.Sprintf("--trusted-proxies: %q is neither an address nor a CIDR prefix", f)}
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

// watchdogOptions are the watchdog's bounds from the flags. Its bound on
// an app role's statement is --watchdog-max-statement, or more when a
// plan's statement timeout (which the data API's own statements run
// under, as the gateway's app role) would come near it.
func (o *serveOptions) watchdogOptions(limits map[string]httpapi.Limit) postgres.WatchdogOptions {
	w := postgres.WatchdogOptions{MaxStatement: o.maxStmt, MaxIdleInTransaction: o.maxIdle}
	for _, l := range limits {
		w.MaxStatement = max(w.MaxStatement, l.StatementTimeout+statementHeadroom)
	}
	return w
}

// statementHeadroom is how far above a plan's statement timeout the
// watchdog's bound stays: the data API's statements end by themselves
// well before it cancels them.
const statementHeadroom = 10 * time.Second

// checkFlags checks the alarm rules, the shares of anonymous denials and
// failed logins, the budget of password checks, and the trusted proxies before anything starts, and refuses --alarm-rules together with
// the flags it replaces.
func (o *serveOptions) checkFlags(fs *flag.FlagSet) error {
	if o.shutdownDelay < 0 || o.shutdownDelay > maxShutdownDelay {
		return usageError{"--shutdown-delay must be between 0s and " + maxShutdownDelay.String()}
	}
	if o.maxStmt < time.Second {
		return usageError{"--watchdog-max-statement must be at least 1s"}
	}
	if o.maxIdle < time.Second {
		return usageError{"--watchdog-max-idle-in-transaction must be at least 1s"}
	}
	if o.anonDenials < 1 || o.anonDenials > 1_000_000 {
		return usageError{"--anonymous-denials must be 1 to 1000000 per second"}
	}
	if o.failedLogin < 1 || o.failedLogin > 1_000_000 {
		return usageError{"--failed-logins must be 1 to 1000000 per second"}
	}
	if o.anonTotal < 1 || o.anonTotal > 1_000_000 {
		return usageError{"--anonymous-denials-total must be 1 to 1000000 per second"}
	}
	if o.checks < 1 || o.checks > 1_000_000 {
		return usageError{"--password-checks must be 1 to 1000000 per second"}
	}
	if o.hashing != "process" && o.hashing != "inline" {
		return usageError{fmt.Sprintf(`--password-hashing must be "process" or "inline", not %q`, o.hashing)}
	}
	if _, err := parseProxies(o.proxies); err != nil {
		return err
	}
	var err error
	fs.Visit(func(f *flag.Flag) {
		if o.alarmFile != "" && (f.Name == "alarm-denials" || f.Name == "alarm-window") {
			err = usageError{"--alarm-rules replaces --" + f.Name + ": set the rule in the file"}
		}
	})
	if err != nil {
		return err
	}
	if _, err := planLimits(o.planFile); err != nil {
		return err
	}
	if _, err = alarmRules(o.alarmFile, o.alarmLimit, o.alarmWindow); err != nil {
		return err
	}
	// Everything below is refused before the database is touched.
	ext, err := o.external()
	if err != nil {
		return err
	}
	if len(ext) == 0 && flagSet(fs, "idp-tenant-claim") {
		return usageError{"--idp-tenant-claim needs an external identity provider: --idp-issuer, --idp-jwks-url and --idp-audience"}
	}
	if len(ext) > 0 {
		v := &identity.Verifier{Trusted: ext}
		verr := v.Validate()
		v.Close()
		if verr != nil {
			return usageError{"the --idp-* flags: " + verr.Error()}
		}
	}
	for name, addr := range map[string]string{"--addr": o.addr, "--metrics-addr": o.metricsAddr} {
		if addr == "" && name == "--metrics-addr" {
			continue
		}
		if _, port, err := net.SplitHostPort(addr); err != nil || port == "" {
			return usageError{fmt.Sprintf("%s %q is not host:port", name, addr)}
		}
	}
	if _, err := corsOrigins(o.cors); err != nil {
		return err
	}
	for name, hook := range map[string]string{"--alarm-webhook": o.alarmHook, "--checkpoint-webhook": o.anchorHook} {
		if hook == "" {
			continue
		}
		if u, err := url.Parse(hook); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return usageError{fmt.Sprintf("%s must be an absolute http(s) URL, not %q", name, hook)}
		}
		if len(os.Getenv("BULKHEAD_ALARM_WEBHOOK_SECRET")) < 16 {
			return usageError{name + " needs BULKHEAD_ALARM_WEBHOOK_SECRET (16 bytes or more) to sign its requests"}
		}
	}
	return nil
}

// corsOrigins reads --cors-origins: exact origins, scheme://host[:port],
// with no path, wildcard or "null" (which any sandboxed page sends).
func corsOrigins(v string) ([]string, error) {
	var out []string
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if strings.Contains(s, "*") {
			return nil, usageError{"--cors-origins takes exact origins; a wildcard is refused"}
		}
		u, err := url.Parse(s)
		if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
			return nil, usageError{fmt.Sprintf("--cors-origins takes origins as browsers send them, scheme://host[:port] with no path (not %q)", s)}
		}
		out = append(out, s)
	}
	return out, nil
}
