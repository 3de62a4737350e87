package gameday_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/verify/gameday"
)

// shop is a small multi-tenant schema of its own, with roles of its own
// (roles are cluster-wide, so their names are unique per test), built
// strong or with exactly one weakness.
type shop struct {
	db                *pgtest.DB
	schema, app, pw   string
	tenantA, tenantB  string
	contextA, context string
	contextB          string
}

func randHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// The weaknesses, each the one thing that differs from the strong shop.
const (
	strong          = ""
	ownerNotForced  = "the app logs in as the table owner and row security is not forced"
	definerView     = "a view without security_invoker (row security not forced)"
	rawSetting      = "the policy reads a raw setting, current_setting('app.tenant_id')"
	insertCheckTrue = "a split INSERT policy WITH CHECK (true)"
	definerFunction = "a SECURITY DEFINER function returning every row"
	singleColumnFK  = "a single-column foreign key"
	globalUnique    = "a unique email without the tenant column"
	truncateGranted = "TRUNCATE granted to the app"
	bypassMember    = "the app login is a member of a BYPASSRLS role"
	sessionContext  = "the context is set for the session, not the transaction"
	failOpen        = "the policy falls back to every row when no context is set"
	selfEnrol       = "members may add themselves to any tenant"
	sideTable       = "a side table without row security"
	statFunctions   = "the functions behind pg_stat_activity and pg_locks granted to PUBLIC"
	loginBypass     = "the app login itself has BYPASSRLS"
	updateCheckTrue = "a split UPDATE policy WITH CHECK (true)"
	referencesOwn   = "REFERENCES on the table and CREATE on a schema granted to the app"
	tenantStats     = "statistics kept on the tenant column"
	serverFiles     = "the app login is a member of pg_read_server_files"
	signalling      = "pg_cancel_backend and pg_terminate_backend granted to PUBLIC"
	unindexable     = "a policy whose tenant comparison no index can serve"
	plainViewIsol   = "a plain view isolates by its WHERE, and the app may create functions"
	matview         = "a materialized view of the table readable by the app"
	permissiveOr    = "a second permissive read policy for PUBLIC, USING (true)"
)

// newShop builds the shop with weakness w in a fresh database.
func newShop(t *testing.T, w string) *shop {
	t.Helper()
	ctx := t.Context()
	d := pgtest.NewDB(t)
	id := randHex(4)
	s := &shop{db: d, schema: "shop_" + id, app: "gd_app_" + id, pw: randHex(12),
		tenantA: "acme-" + id, tenantB: "globex-" + id}
	owner, svc := "gd_owner_"+id, "gd_svc_"+id
	key := randHex(16)
	sign := func(tn string) string {
		sum := sha256.Sum256([]byte(key + "|" + tn))
		return tn + "." + hex.EncodeToString(sum[:])
	}
	s.contextA = `SELECT pg_catalog.set_config('app.ctx', '` + sign(s.tenantA) + `', true)`
	s.contextB = `SELECT pg_catalog.set_config('app.ctx', '` + sign(s.tenantB) + `', true)`
	tenantExpr := "(SELECT " + s.schema + ".tenant())"
	switch w {
	case rawSetting:
		s.contextA = `SELECT pg_catalog.set_config('app.tenant_id', '` + s.tenantA + `', true)`
		s.contextB = `SELECT pg_catalog.set_config('app.tenant_id', '` + s.tenantB + `', true)`
		tenantExpr = "current_setting('app.tenant_id', true)"
	case sessionContext:
		s.contextA = strings.Replace(s.contextA, "true)", "false)", 1)
		s.contextB = strings.Replace(s.contextB, "true)", "false)", 1)
	}
	s.context = s.contextA
	using := "tenant_id = " + tenantExpr
	switch w {
	case failOpen:
		using = "tenant_id = coalesce(" + tenantExpr + ", tenant_id)"
	case unindexable:
		using = "tenant_id || '' = " + tenantExpr
	}
	insertCheck, updateCheck := using, using
	switch w {
	case insertCheckTrue:
		insertCheck = "true"
	case updateCheckTrue:
		updateCheck = "true"
	}
	docsKeys := "PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, email)"
	switch w {
	case globalUnique:
		docsKeys = "PRIMARY KEY (tenant_id, id), UNIQUE (email)"
	case singleColumnFK:
		docsKeys = "PRIMARY KEY (tenant_id, id), UNIQUE (tenant_id, email), UNIQUE (id)"
	}
	notesFK := "FOREIGN KEY (tenant_id, doc_id) REFERENCES " + s.schema + ".docs (tenant_id, id)"
	if w == singleColumnFK {
		notesFK = "FOREIGN KEY (doc_id) REFERENCES " + s.schema + ".docs (id)"
	}
	tableOwner := owner
	if w == ownerNotForced {
		tableOwner = s.app
	}
	stmts := []string{
		`CREATE ROLE ` + owner + ` NOLOGIN`,
		`CREATE ROLE ` + s.app + ` LOGIN PASSWORD '` + s.pw + `'`,
		`CREATE SCHEMA ` + s.schema + ` AUTHORIZATION ` + owner,
		`GRANT USAGE ON SCHEMA ` + s.schema + ` TO ` + s.app,
		`CREATE TABLE ` + s.schema + `.ctx_key (secret text NOT NULL)`,
		`INSERT INTO ` + s.schema + `.ctx_key VALUES ('` + key + `')`,
		`CREATE FUNCTION ` + s.schema + `.tenant() RETURNS text LANGUAGE plpgsql STABLE SECURITY DEFINER
			SET search_path = pg_catalog, pg_temp AS $f$
			DECLARE v text := nullif(current_setting('app.ctx', true), ''); k text;
			BEGIN
				IF v IS NULL THEN RETURN NULL; END IF;
				SELECT secret INTO k FROM ` + s.schema + `.ctx_key;
				IF encode(sha256(convert_to(k || '|' || split_part(v, '.', 1), 'UTF8')), 'hex') <> split_part(v, '.', 2) THEN RETURN NULL; END IF;
				RETURN split_part(v, '.', 1);
			END $f$`,
		`REVOKE ALL ON FUNCTION ` + s.schema + `.tenant() FROM PUBLIC`,
		`GRANT EXECUTE ON FUNCTION ` + s.schema + `.tenant() TO ` + s.app,
		`CREATE TABLE ` + s.schema + `.docs (tenant_id text NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(),
			email text, title text NOT NULL, secret text, ` + docsKeys + `)`,
		`CREATE TABLE ` + s.schema + `.notes (tenant_id text NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(),
			doc_id uuid NOT NULL, body text, PRIMARY KEY (tenant_id, id), ` + notesFK + `)`,
		`ALTER TABLE ` + s.schema + `.ctx_key OWNER TO ` + owner,
		`ALTER FUNCTION ` + s.schema + `.tenant() OWNER TO ` + owner,
	}
	if w != tenantStats {
		// The tenant column keeps no statistics: estimates say nothing
		// about one tenant's row count (A17).
		stmts = append(stmts,
			`ALTER TABLE `+s.schema+`.docs ALTER COLUMN tenant_id SET STATISTICS 0`,
			`ALTER TABLE `+s.schema+`.notes ALTER COLUMN tenant_id SET STATISTICS 0`)
	}
	for _, tb := range []string{"docs", "notes"} {
		q := s.schema + "." + tb
		rls := "ENABLE"
		if w == sideTable && tb == "notes" {
			rls = "DISABLE"
		}
		stmts = append(stmts,
			`ALTER TABLE `+q+` OWNER TO `+tableOwner,
			`ALTER TABLE `+q+` `+rls+` ROW LEVEL SECURITY`,
			`CREATE POLICY sel ON `+q+` FOR SELECT TO `+s.app+` USING (`+using+`)`,
			`CREATE POLICY ins ON `+q+` FOR INSERT TO `+s.app+` WITH CHECK (`+insertCheck+`)`,
			`CREATE POLICY upd ON `+q+` FOR UPDATE TO `+s.app+` USING (`+using+`) WITH CHECK (`+updateCheck+`)`,
			`CREATE POLICY del ON `+q+` FOR DELETE TO `+s.app+` USING (`+using+`)`,
			`REVOKE ALL ON `+q+` FROM PUBLIC`,
		)
		if w != ownerNotForced && w != definerView && w != definerFunction && w != plainViewIsol {
			stmts = append(stmts, `ALTER TABLE `+q+` FORCE ROW LEVEL SECURITY`)
		}
		if w != ownerNotForced {
			stmts = append(stmts, `GRANT SELECT, INSERT, UPDATE, DELETE ON `+q+` TO `+s.app)
		}
	}
	enrolCheck := "tenant_id = " + tenantExpr
	if w == selfEnrol {
		enrolCheck = "user_name = current_user"
	}
	stmts = append(stmts,
		`CREATE TABLE `+s.schema+`.members (tenant_id text NOT NULL, user_name text NOT NULL, PRIMARY KEY (tenant_id, user_name))`,
		`ALTER TABLE `+s.schema+`.members OWNER TO `+owner,
		`ALTER TABLE `+s.schema+`.members ENABLE ROW LEVEL SECURITY`,
		`ALTER TABLE `+s.schema+`.members FORCE ROW LEVEL SECURITY`,
		`CREATE POLICY sel ON `+s.schema+`.members FOR SELECT TO `+s.app+` USING (tenant_id = `+tenantExpr+`)`,
		`CREATE POLICY ins ON `+s.schema+`.members FOR INSERT TO `+s.app+` WITH CHECK (`+enrolCheck+`)`,
		`GRANT SELECT, INSERT ON `+s.schema+`.members TO `+s.app,
		`INSERT INTO `+s.schema+`.members VALUES ('`+s.tenantA+`', '`+s.app+`')`,
	)
	switch w {
	case definerView:
		stmts = append(stmts,
			`CREATE VIEW `+s.schema+`.docs_v AS SELECT id, title, secret FROM `+s.schema+`.docs`,
			`ALTER VIEW `+s.schema+`.docs_v OWNER TO `+owner,
			`GRANT SELECT ON `+s.schema+`.docs_v TO `+s.app)
	case strong:
		stmts = append(stmts,
			`CREATE VIEW `+s.schema+`.docs_v WITH (security_invoker = true) AS SELECT id, title, secret FROM `+s.schema+`.docs`,
			`ALTER VIEW `+s.schema+`.docs_v OWNER TO `+owner,
			`GRANT SELECT ON `+s.schema+`.docs_v TO `+s.app)
	case definerFunction:
		stmts = append(stmts,
			`CREATE FUNCTION `+s.schema+`.all_docs() RETURNS SETOF `+s.schema+`.docs LANGUAGE sql STABLE SECURITY DEFINER
				SET search_path = '' AS $f$ SELECT * FROM `+s.schema+`.docs $f$`,
			`ALTER FUNCTION `+s.schema+`.all_docs() OWNER TO `+owner)
	case sideTable:
		// B has a note: a note of B's must not show to A.
		stmts = append(stmts,
			`INSERT INTO `+s.schema+`.docs (tenant_id, id, title) VALUES ('`+s.tenantB+`', '00000000-0000-4000-8000-000000000001', 'b''s doc')`,
			`INSERT INTO `+s.schema+`.notes (tenant_id, doc_id, body) VALUES ('`+s.tenantB+`', '00000000-0000-4000-8000-000000000001', 'b''s note')`)
	case plainViewIsol:
		// The owner reads every row (not forced); the view's own WHERE
		// is all that keeps tenants apart, and without security_barrier a
		// caller's function runs before it.
		stmts = append(stmts,
			`CREATE VIEW `+s.schema+`.my_docs AS SELECT * FROM `+s.schema+`.docs WHERE tenant_id = `+tenantExpr,
			`ALTER VIEW `+s.schema+`.my_docs OWNER TO `+owner,
			`GRANT SELECT ON `+s.schema+`.my_docs TO `+s.app,
			`GRANT TEMPORARY ON DATABASE `+d.Name+` TO `+s.app)
	case matview:
		// Built by the superuser, who bypasses row security, after B
		// has a row: it holds that row for every reader.
		stmts = append(stmts,
			`INSERT INTO `+s.schema+`.docs (tenant_id, title, secret) VALUES ('`+s.tenantB+`', 'b''s doc', 'b''s secret')`,
			`CREATE MATERIALIZED VIEW `+s.schema+`.docs_mv AS SELECT * FROM `+s.schema+`.docs`,
			`GRANT SELECT ON `+s.schema+`.docs_mv TO `+s.app)
	case permissiveOr:
		stmts = append(stmts, `CREATE POLICY public_read ON `+s.schema+`.docs FOR SELECT USING (true)`)
	case loginBypass:
		stmts = append(stmts, `ALTER ROLE `+s.app+` BYPASSRLS`)
	case referencesOwn:
		stmts = append(stmts,
			`GRANT REFERENCES ON `+s.schema+`.docs TO `+s.app,
			`GRANT CREATE ON SCHEMA `+s.schema+` TO `+s.app)
	case serverFiles:
		stmts = append(stmts, `GRANT pg_read_server_files TO `+s.app)
	case signalling:
		stmts = append(stmts,
			`GRANT EXECUTE ON FUNCTION pg_catalog.pg_cancel_backend(integer) TO PUBLIC`,
			`GRANT EXECUTE ON FUNCTION pg_catalog.pg_terminate_backend(integer, bigint) TO PUBLIC`)
	case statFunctions:
		// The views stay revoked (the template is hardened); the
		// functions behind them answer the same questions.
		stmts = append(stmts,
			`GRANT EXECUTE ON FUNCTION pg_catalog.pg_stat_get_activity(integer) TO PUBLIC`,
			`GRANT EXECUTE ON FUNCTION pg_catalog.pg_lock_status() TO PUBLIC`)
	case truncateGranted:
		stmts = append(stmts, `GRANT TRUNCATE ON `+s.schema+`.docs TO `+s.app)
	case bypassMember:
		stmts = append(stmts,
			`CREATE ROLE `+svc+` NOLOGIN BYPASSRLS`,
			`GRANT USAGE ON SCHEMA `+s.schema+` TO `+svc,
			`GRANT SELECT ON `+s.schema+`.docs TO `+svc,
			`GRANT `+svc+` TO `+s.app)
	}
	conn, err := pgx.Connect(ctx, d.AdminURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	for _, st := range stmts {
		if _, err := conn.Exec(ctx, st); err != nil {
			t.Fatalf("%s: %v", st, err)
		}
	}
	// Roles outlive the database: drop them with it.
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), d.AdminURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		for _, r := range []string{s.app, svc, owner} {
			c.Exec(context.Background(), `DROP OWNED BY `+r+` CASCADE`)
			c.Exec(context.Background(), `DROP ROLE IF EXISTS `+r)
		}
	})
	return s
}

func (s *shop) config() gameday.Config {
	c := gameday.Config{
		AppURL:          s.db.URL(s.app, s.pw),
		AdminURL:        s.db.AdminURL,
		Table:           s.schema + ".docs",
		TenantColumn:    "tenant_id",
		TenantA:         s.tenantA,
		TenantB:         s.tenantB,
		ContextA:        s.contextA,
		ContextB:        s.contextB,
		CanaryColumn:    "secret",
		MembershipTable: s.schema + ".members",
	}
	if testing.Verbose() {
		c.Progress = os.Stderr
	}
	return c
}

func runShop(t *testing.T, s *shop) *gameday.Report {
	t.Helper()
	rep, err := gameday.Run(t.Context(), s.config())
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var b strings.Builder
	rep.WriteText(&b, false)
	t.Log("\n" + b.String())
	return rep
}

func TestUserDatabaseStrong(t *testing.T) {
	t.Parallel()
	rep := runShop(t, newShop(t, strong))
	for _, r := range rep.Results {
		if r.Verdict == gameday.Leaked || r.Verdict == gameday.Inconclusive {
			t.Errorf("strong shop: %s [%s] = %s: %s", r.Scenario, r.Pair, r.Verdict, r.Summary)
		}
	}
}

// TestUserDatabaseWeaknesses builds the shop with one weakness at a time
// and checks that gameday reports that weakness as leaked, by scenario
// name. TestUserDatabaseStrong checks that the strong shop leaks nothing.
func TestUserDatabaseWeaknesses(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		weakness string
		want     []string // scenarios that must leak
	}{
		{ownerNotForced, []string{"A01 connected role owns the table", "R1 read B's rows by filter", "R2 read B's row by key",
			"R3 read every row", "A08 update B's rows", "A08 delete B's rows", "A10 COPY TO", "A10 COPY FROM"}},
		{definerView, []string{"A03 views over the table"}},
		{rawSetting, []string{"A07 forge the context"}},
		{insertCheckTrue, []string{"A08 insert a row for tenant B"}},
		{definerFunction, []string{"A05 SECURITY DEFINER functions the role can execute"}},
		{singleColumnFK, []string{"A14 foreign key to B's row"}},
		{globalUnique, []string{"A13 unique constraint oracle"}},
		{truncateGranted, []string{"A09 TRUNCATE"}},
		{bypassMember, []string{"A22 SET ROLE into roles the login belongs to"}},
		{sessionContext, []string{"A21 context survives the transaction"}},
		{failOpen, []string{"A32 no context", "A32 empty context"}},
		{selfEnrol, []string{"A30 membership self-enrolment"}},
		{sideTable, []string{"A28 every other table the role can read"}},
		{statFunctions, []string{"D03 other sessions' query text"}},
		{loginBypass, []string{"A02 login role is superuser or BYPASSRLS", "R1 read B's rows by filter"}},
		{updateCheckTrue, []string{"A08 move own row to tenant B"}},
		{referencesOwn, []string{"A11 REFERENCES + CREATE foreign-key oracle"}},
		{tenantStats, []string{"A17 planner estimate oracle"}},
		{serverFiles, []string{"A24 server files and programs"}},
		{signalling, []string{"D01 cancel or terminate another session"}},
		{unindexable, []string{"A16 EXPLAIN ANALYZE rows removed by the policy"}},
		{plainViewIsol, []string{"A06 leaky function (NOTICE probe)"}},
		{matview, []string{"A04 materialized views over the table"}},
		{permissiveOr, []string{"R1 read B's rows by filter", "R3 read every row"}},
	} {
		t.Run(tt.weakness, func(t *testing.T) {
			t.Parallel()
			rep := runShop(t, newShop(t, tt.weakness))
			for _, name := range tt.want {
				rs := rep.Find(name)
				if len(rs) == 0 {
					t.Errorf("%s: no result", name)
				}
				for _, r := range rs {
					if r.Verdict != gameday.Leaked {
						t.Errorf("%s = %s (%s), want leaked", name, r.Verdict, r.Summary)
					}
				}
			}
			if !rep.Failed() {
				t.Errorf("Report.Failed() = false, want true")
			}
		})
	}
}

// TestUserDatabaseWithoutAdmin runs gameday with less to work with: B's
// context but no admin (it plants through B's context), and neither (B's
// existing rows are the canaries, and nothing can be controlled).
func TestUserDatabaseWithoutAdmin(t *testing.T) {
	t.Parallel()
	t.Run("context-b only", func(t *testing.T) {
		t.Parallel()
		s := newShop(t, strong)
		c := s.config()
		c.AdminURL = ""
		rep, err := gameday.Run(t.Context(), c)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rep.Results {
			if r.Verdict == gameday.Leaked || r.Verdict == gameday.Inconclusive {
				t.Errorf("%s = %s: %s", r.Scenario, r.Verdict, r.Summary)
			}
		}
		if rs := rep.Find("R1 read B's rows by filter"); len(rs) != 1 || !strings.Contains(rs[0].Summary, "control: B's own context sees 20") {
			t.Errorf("R1 = %+v, want blocked against 20 canaries planted through B's context", rs)
		}
		var n int
		if err := s.adminRow(t, `SELECT count(*) FROM `+s.schema+`.docs`, &n); err != nil || n != 0 {
			t.Errorf("%d rows left after the run (%v), want 0", n, err)
		}
	})
	t.Run("neither", func(t *testing.T) {
		t.Parallel()
		s := newShop(t, rawSetting)
		var n int
		if err := s.adminRow(t, `WITH i AS (INSERT INTO `+s.schema+`.docs (tenant_id, title) VALUES ($1, 'b''s row') RETURNING 1) SELECT count(*) FROM i`, &n, s.tenantB); err != nil {
			t.Fatal(err)
		}
		c := s.config()
		c.AdminURL, c.ContextB, c.CanaryColumn = "", "", ""
		rep, err := gameday.Run(t.Context(), c)
		if err != nil {
			t.Fatal(err)
		}
		if rs := rep.Find("A07 forge the context"); len(rs) != 1 || rs[0].Verdict != gameday.Leaked {
			t.Errorf("A07 = %+v, want leaked with no admin and no control", rs)
		}
		if rs := rep.Find("R1 read B's rows by filter"); len(rs) != 1 || rs[0].Verdict != gameday.Blocked || !strings.Contains(rs[0].Summary, "no control") {
			t.Errorf("R1 = %+v, want blocked, saying there was no control", rs)
		}
		// PostgreSQL's default: no bound on temporary files.
		if rs := rep.Find("D11 temporary files and statement time"); len(rs) != 1 || rs[0].Verdict != gameday.Info || !strings.Contains(rs[0].Summary, "temp_file_limit is -1") || !strings.Contains(rs[0].Summary, "no connection limit") {
			t.Errorf("D11 temporary files = %+v, want info: temp_file_limit is -1, no connection limit", rs)
		}
	})
}

func (s *shop) adminRow(t *testing.T, sql string, dest any, args ...any) error {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), s.db.AdminURL)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	return conn.QueryRow(t.Context(), sql, args...).Scan(dest)
}
