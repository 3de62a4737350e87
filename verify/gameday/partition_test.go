package gameday_test

import (
	"context"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/verify/gameday"
)

// A13 through unique indexes that exist only on the partitions of a
// range-partitioned table (the parent cannot have UNIQUE (email) without
// the partition key). Inserts through the parent hit them, so they answer
// whether B holds an email. gameday reads the keys of the parent only.
func TestPartitionUniqueOracle(t *testing.T) {
	t.Parallel()
	rep := runPartitioned(t, true)
	rs := rep.Find("A13 unique constraint oracle")
	if len(rs) == 0 {
		t.Fatalf("A13: no result")
	}
	for _, r := range rs {
		if r.Verdict != gameday.Leaked {
			t.Errorf("A13 = %s (%s), want leaked: the partitions' UNIQUE (email) answers whether B holds an email", r.Verdict, r.Summary)
		}
	}
}

// A10 COPY TO on a partitioned table: under row security PostgreSQL
// rewrites COPY t TO as SELECT … FROM ONLY t, which is empty for a
// partitioned parent, so B's own control would see 0 rows and the
// scenario be inconclusive, failing every partitioned table however safe.
// gameday copies a partitioned table as COPY (SELECT * FROM t) TO.
func TestPartitionedCopyTo(t *testing.T) {
	t.Parallel()
	rep := runPartitioned(t, false)
	rs := rep.Find("A10 COPY TO")
	if len(rs) == 0 {
		t.Fatalf("A10 COPY TO: no result")
	}
	for _, r := range rs {
		if r.Verdict == gameday.Inconclusive {
			t.Errorf("A10 COPY TO = %s (%s): a partitioned table fails the run", r.Verdict, r.Summary)
		}
	}
}

// runPartitioned builds a range-partitioned docs table (with or without
// per-partition UNIQUE (email)) and runs gameday on it.
func runPartitioned(t *testing.T, uniquePerPartition bool) *gameday.Report {
	ctx := t.Context()
	d := pgtest.NewDB(t)
	id := randHex(4)
	schema, app, owner, pw := "ptshop_"+id, "pt_app_"+id, "pt_owner_"+id, randHex(12)
	tenantA, tenantB := "acme-"+id, "globex-"+id
	q := schema + ".docs"
	stmts := []string{
		`CREATE ROLE ` + owner + ` NOLOGIN`,
		`CREATE ROLE ` + app + ` LOGIN PASSWORD '` + pw + `'`,
		`CREATE SCHEMA ` + schema + ` AUTHORIZATION ` + owner,
		`GRANT USAGE ON SCHEMA ` + schema + ` TO ` + app,
		`CREATE TABLE ` + q + ` (tenant_id text NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(),
			email text, title text NOT NULL, secret text, created date NOT NULL DEFAULT current_date,
			PRIMARY KEY (tenant_id, id, created)) PARTITION BY RANGE (created)`,
		`CREATE TABLE ` + q + `_p0 PARTITION OF ` + q + ` FOR VALUES FROM ('2000-01-01') TO ('2100-01-01')`,
		`CREATE TABLE ` + q + `_p1 PARTITION OF ` + q + ` DEFAULT`,
	}
	if uniquePerPartition {
		stmts = append(stmts, `CREATE UNIQUE INDEX docs_p0_email ON `+q+`_p0 (email)`,
			`CREATE UNIQUE INDEX docs_p1_email ON `+q+`_p1 (email)`)
	}
	for _, tb := range []string{q, q + "_p0", q + "_p1"} {
		stmts = append(stmts, `ALTER TABLE `+tb+` OWNER TO `+owner,
			`ALTER TABLE `+tb+` ENABLE ROW LEVEL SECURITY`, `ALTER TABLE `+tb+` FORCE ROW LEVEL SECURITY`)
	}
	using := "tenant_id = current_setting('app.tenant_id', true)"
	stmts = append(stmts,
		`CREATE POLICY tenant_all ON `+q+` FOR ALL TO `+app+` USING (`+using+`) WITH CHECK (`+using+`)`,
		`GRANT SELECT, INSERT, UPDATE, DELETE ON `+q+` TO `+app)
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
	t.Cleanup(func() {
		c, err := pgx.Connect(context.Background(), d.AdminURL)
		if err != nil {
			return
		}
		defer c.Close(context.Background())
		for _, r := range []string{app, owner} {
			c.Exec(context.Background(), `DROP OWNED BY `+r+` CASCADE`)
			c.Exec(context.Background(), `DROP ROLE IF EXISTS `+r)
		}
	})
	set := func(tn string) string { return `SELECT pg_catalog.set_config('app.tenant_id', '` + tn + `', true)` }

	// The oracle, by hand: B holds ceo@globex; A probes it.
	if _, err := conn.Exec(ctx, `INSERT INTO `+q+` (tenant_id, email, title) VALUES ($1, 'ceo@globex.example', 'b')`, tenantB); err != nil {
		t.Fatal(err)
	}
	probe := func(email string) error {
		tx, err := conn.Begin(ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(ctx)
		tx.Exec(ctx, `SET LOCAL ROLE `+app)
		tx.Exec(ctx, set(tenantA))
		_, err = tx.Exec(ctx, `INSERT INTO `+q+` (tenant_id, email, title) VALUES ($1, $2, 'a')`, tenantA, email)
		return err
	}
	hit, miss := probe("ceo@globex.example"), probe("nobody@example")
	t.Logf("A probes B's email: %v\nA probes an absent email: %v", hit, miss)
	if uniquePerPartition && (hit == nil || miss != nil) {
		t.Fatalf("precondition: the partitions' unique indexes should answer the probe")
	}
	if _, err := conn.Exec(ctx, `DELETE FROM `+q); err != nil {
		t.Fatal(err)
	}

	rep, err := gameday.Run(ctx, gameday.Config{
		AppURL: d.URL(app, pw), AdminURL: d.AdminURL, Table: q, TenantA: tenantA, TenantB: tenantB,
		ContextA: set(tenantA), ContextB: set(tenantB), CanaryColumn: "secret",
	})
	if err != nil {
		t.Fatalf("Run: %v", err)
	}
	var b strings.Builder
	rep.WriteText(&b, false)
	t.Log("\n" + b.String())
	return rep
}
