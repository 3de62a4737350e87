package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulkhead-dev/bulkhead/internal/apitest"
)

// TestPostgrestJS drives the data API with the official
// @supabase/postgrest-js client (testdata/postgrestjs: the pinned package,
// its lock file and client.mjs). The script only makes the calls and prints
// what the client returned; every assertion is here.
//
// For each pair of tiers, tenant A runs the CRUD scenario and seeds a victim
// and a control row; B runs the same scenario (its counts and lists must not
// see A's rows) and then attacks A's victim rows through the client; A runs
// the same attack on its own control rows, which shows that every probe can
// reach a row when it is allowed to; and a snapshot of each tenant at the end
// must be exactly what it wrote.
func TestPostgrestJS(t *testing.T) {
	dir := pgjsInstall(t)
	for _, tt := range []struct {
		name  string
		tierA string
		tierB string
	}{
		{name: "PoolAttacksSilo", tierA: "silo", tierB: "pool"},
		{name: "SiloAttacksPool", tierA: "pool", tierB: "silo"},
		{name: "PoolAttacksPool", tierA: "pool", tierB: "pool"},
		{name: "SiloAttacksSilo", tierA: "silo", tierB: "silo"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			s := apitest.Start(t, apitest.Options{})
			a := s.CreateTenant(t, "js-a", tt.tierA)
			b := s.CreateTenant(t, "js-b", tt.tierB)
			// Both scenarios upsert rows with the same fresh ids: an
			// upsert whose conflict target crossed tenants would show.
			ids := pgjsScenarioIDs{new: pgjsUUID(), new2: pgjsUUID(), missing: pgjsUUID()}

			aProjects, aTasks := pgjsScenario(t, dir, s, a, ids)
			victim, victimTask := pgjsSeed(t, dir, s, a, "victim")
			control, controlTask := pgjsSeed(t, dir, s, a, "control")
			bProjects, bTasks := pgjsScenario(t, dir, s, b, ids)

			planted := pgjsAttack(t, dir, s, b, a, victim, victimTask, ids.missing)
			leftover := pgjsControl(t, dir, s, a, control, controlTask, ids.missing)

			pgjsSnapshot(t, dir, s, a, slices.Concat(aProjects, leftover, []pgjsProject{victim}), slices.Concat(aTasks, []pgjsTask{victimTask}))
			pgjsSnapshot(t, dir, s, b, slices.Concat(bProjects, []pgjsProject{planted}), bTasks)
		})
	}
}

// pgjsScenarioIDs are the ids the scenario cannot make itself.
type pgjsScenarioIDs struct {
	new, new2 string // ids of rows that upserts insert
	missing   string // an id no row has
}

// pgjsScenario runs the CRUD scenario as tn and returns the projects and
// tasks it leaves.
func pgjsScenario(t *testing.T, dir string, s *apitest.Server, tn *apitest.Tenant, ids pgjsScenarioIDs) ([]pgjsProject, []pgjsTask) {
	t.Helper()
	r := pgjsRun(t, dir, s, tn, "scenario", "OWN_TENANT="+tn.UUID, "OTHER_TENANT="+pgjsUUID(),
		"NEW_ID="+ids.new, "NEW_ID2="+ids.new2, "MISSING_ID="+ids.missing)

	// Inserts. Rows come back with ids and the tenant the database filled.
	want := map[string]pgjsProject{} // by name: what the tenant has now
	alpha := r.project("insertOne", 201, true)
	r.newRow("insertOne", alpha.ID, alpha.CreatedAt)
	r.equal("insertOne", alpha, pgjsProject{TenantID: tn.UUID, ID: alpha.ID, Name: "alpha", Description: pgjsPtr("first project"), CreatedAt: alpha.CreatedAt})
	want["alpha"] = alpha
	if got := r.object("insertOneSingle", 201); got != nil {
		r.equal("insertOneSingle", got, map[string]any{"id": got["id"], "name": "bravo", "tenant_id": tn.UUID})
		id, _ := got["id"].(string)
		r.newRow("insertOneSingle", id, "")
		want["bravo"] = pgjsProject{TenantID: tn.UUID, ID: id, Name: "bravo"}
	}
	many := r.projects("insertMany", 201)
	slices.SortFunc(many, func(x, y pgjsProject) int { return strings.Compare(x.Name, y.Name) })
	var wantMany []pgjsProject
	for i, d := range []struct {
		name string
		desc *string
	}{{"charlie", pgjsPtr("has, comma (and parens)")}, {"delta", nil}, {"echo", pgjsPtr("mixed case")}} {
		p := pgjsProject{TenantID: tn.UUID, Name: d.name, Description: d.desc}
		if i < len(many) {
			p.ID, p.CreatedAt = many[i].ID, many[i].CreatedAt
			r.newRow("insertMany", p.ID, p.CreatedAt)
		}
		wantMany = append(wantMany, p)
		want[d.name] = p
	}
	r.equal("insertMany", many, wantMany)
	r.noData("insertMinimal", 201)
	if got := r.object("foxtrotByName", 200); got != nil {
		id, _ := got["id"].(string)
		r.equal("foxtrotByName", got, map[string]any{"id": id})
		want["foxtrot"] = pgjsProject{TenantID: tn.UUID, ID: id, Name: "foxtrot"}
	}
	tasks := r.tasks("insertTasks", 201)
	slices.SortFunc(tasks, func(x, y pgjsTask) int { return strings.Compare(x.Title, y.Title) })
	var wantTasks []pgjsTask
	for i, d := range []struct {
		project, title string
		done           bool
	}{{"alpha", "a1", false}, {"alpha", "a2", true}, {"bravo", "b1", false}, {"echo", "e1", false}} {
		k := pgjsTask{TenantID: tn.UUID, ProjectID: want[d.project].ID, Title: d.title, Done: d.done}
		if i < len(tasks) {
			k.ID, k.CreatedAt = tasks[i].ID, tasks[i].CreatedAt
			r.newRow("insertTasks", k.ID, k.CreatedAt)
		}
		wantTasks = append(wantTasks, k)
	}
	r.equal("insertTasks", tasks, wantTasks)
	r.count("insertTasks", 4)
	r.fails("insertTaskMissingProject", 400, "invalid_reference")
	r.fails("insertOtherTenant", 403, "tenant_mismatch")

	// Reads. listAll has the created_at the inserts without a full row
	// did not return.
	all := r.projects("listAll", 200)
	for _, p := range all {
		if w, ok := want[p.Name]; ok && w.CreatedAt == "" {
			w.CreatedAt = p.CreatedAt
			r.newRow("listAll", w.ID, w.CreatedAt)
			want[p.Name] = w
		}
	}
	byName := func(names ...string) []pgjsProject {
		var out []pgjsProject
		for _, n := range names {
			out = append(out, want[n])
		}
		return out
	}
	r.equal("listAll", all, byName("alpha", "bravo", "charlie", "delta", "echo", "foxtrot"))
	var idNames []map[string]any
	for _, p := range byName("alpha", "bravo", "charlie", "delta", "echo", "foxtrot") {
		idNames = append(idNames, map[string]any{"id": p.ID, "name": p.Name})
	}
	r.rows("selectColumns", 200, idNames)
	r.rows("selectRename", 200, []map[string]any{{"title": "alpha", "id": want["alpha"].ID}})
	r.equal("eq", r.projects("eq", 200), byName("charlie"))
	r.names("eqID", "alpha")
	r.names("neq", "bravo", "charlie", "delta", "echo", "foxtrot")
	r.names("gt", "echo", "foxtrot")
	r.names("gte", "delta", "echo", "foxtrot")
	r.names("lt", "alpha", "bravo")
	r.names("lte", "alpha", "bravo", "charlie")
	r.names("like", "alpha", "charlie")
	r.names("likeStar", "bravo", "echo")
	r.names("ilike", "echo")
	r.names("in", "bravo", "delta")
	r.names("inID", "alpha", "charlie")
	r.names("inQuoted", "alpha", "charlie")
	r.names("isNull", "bravo", "delta", "foxtrot")
	r.names("notIsNull", "alpha", "charlie", "echo")
	r.names("notIn", "delta", "echo", "foxtrot")
	r.names("filterIn", "alpha", "bravo")
	r.names("likeUnderscore", "alpha")
	r.names("eqTimestamp", "charlie", "delta", "echo") // one insert, one now()
	r.names("or", "alpha", "echo")
	r.names("orAnd", "bravo", "echo")
	r.names("match", "charlie")
	r.names("orderDescLimit", "foxtrot", "echo")
	r.rows("orderNullsFirst", 200, []map[string]any{
		{"name": "bravo", "description": nil}, {"name": "delta", "description": nil}, {"name": "foxtrot", "description": nil},
		{"name": "alpha", "description": "first project"}, {"name": "charlie", "description": "has, comma (and parens)"},
		{"name": "echo", "description": "mixed case"},
	})
	r.names("limit", "alpha", "bravo")
	r.names("range", "bravo", "charlie", "delta")
	r.names("rangeCount", "echo", "foxtrot")
	r.count("rangeCount", 6)
	r.count("countExact", 6)
	if got := r.projects("countExact", 200); len(got) != 6 {
		r.t.Errorf("%s: countExact returned %d rows, want 6", r.who, len(got))
	}
	r.noData("countHead", 200)
	r.count("countHead", 6)
	r.noData("countHeadFiltered", 200)
	r.count("countHeadFiltered", 3) // bravo, echo, foxtrot
	r.noData("countPlanned", 200)
	r.count("countPlanned", 6) // answered exactly
	r.rows("stripNulls", 200, []map[string]any{{"name": "alpha", "description": "first project"}, {"name": "bravo"}})
	r.rows("tasksDone", 200, []map[string]any{{"title": "a2"}})
	r.rows("tasksNotDone", 200, []map[string]any{{"title": "a1"}, {"title": "b1"}, {"title": "e1"}})
	r.rows("tasksByProject", 200, []map[string]any{
		{"title": "a1", "project_id": want["alpha"].ID}, {"title": "a2", "project_id": want["alpha"].ID},
	})
	r.equal("single", r.project("single", 200, false), want["alpha"])
	r.fails("singleMissing", 404, "not_found")
	r.fails("singleMany", 400, "not_single")
	r.equal("maybeSingle", r.object("maybeSingle", 200), map[string]any{"name": "bravo"})
	r.noData("maybeSingleNone", 200)
	r.fails("maybeSingleMany", 406, "PGRST116") // decided by the client
	r.fails("badUUID", 400, "invalid_filter")
	r.fails("unknownColumn", 400, "unknown_column")
	r.fails("explain", 400, "unsupported")
	r.fails("textSearch", 400, "unsupported")
	r.fails("embed", 400, "unsupported")

	// A value with characters that mean something in URLs and in lists.
	const weird = "q&a=1, (y).z+%"
	r.rows("insertWeird", 201, []map[string]any{{"name": weird}})
	r.names("eqWeird", weird)
	r.names("inWeird", "alpha", weird)
	r.rows("deleteWeird", 200, []map[string]any{{"name": weird}})

	// Transactions. What the failed or rolled back writes would have done
	// must not show in projectsAfter and tasksAfter.
	r.rows("rollback", 200, []map[string]any{{"name": "rolled back"}})
	r.fails("maxAffectedExceeded", 400, "max_affected_exceeded")
	r.rows("maxAffected", 200, []map[string]any{{"name": "alpha"}})
	r.fails("updateSingleMany", 400, "not_single")
	r.fails("updateSingleNone", 404, "not_found")

	// Updates change only the rows they name.
	bravo := want["bravo"]
	bravo.Description = pgjsPtr("updated")
	want["bravo"] = bravo
	r.equal("update", r.projects("update", 200), byName("bravo"))
	r.noData("updateMinimal", 204)
	delta := want["delta"]
	delete(want, "delta")
	delta.Name = "delta2"
	want["delta2"] = delta
	r.noData("updateCount", 204)
	r.count("updateCount", 2)
	for i := range wantTasks {
		if wantTasks[i].ProjectID == want["alpha"].ID {
			wantTasks[i].Done = true
		}
	}
	r.fails("updateNoFilter", 400, "filter_required")
	r.fails("updateOtherTenant", 403, "tenant_mismatch")

	// Deletes remove only the rows they name; echo's task goes with it.
	r.noData("delete", 204)
	delete(want, "foxtrot")
	r.rows("deleteSelect", 200, []map[string]any{{"name": "echo"}})
	delete(want, "echo")
	r.noData("deleteCount", 204)
	r.count("deleteCount", 1)
	r.noData("deleteMissing", 204)
	r.count("deleteMissing", 0)
	r.fails("deleteNoFilter", 400, "filter_required")
	wantTasks = slices.DeleteFunc(wantTasks, func(k pgjsTask) bool { return k.Title == "b1" || k.Title == "e1" })

	// Upserts on the primary key (tenant_id, id).
	alpha = want["alpha"]
	alpha.Description = pgjsPtr("upserted")
	r.equal("upsertUpdate", r.projects("upsertUpdate", 201), []pgjsProject{alpha})
	// on_conflict=id names no unique constraint (the key is tenant_id, id):
	// a client error, which must not be a 500.
	r.fails("upsertOnConflictID", 400, "invalid_conflict_target")
	golf := r.project("upsertInsert", 201, true)
	r.newRow("upsertInsert", golf.ID, golf.CreatedAt)
	r.equal("upsertInsert", golf, pgjsProject{TenantID: tn.UUID, ID: ids.new, Name: "golf", CreatedAt: golf.CreatedAt})
	want["golf"] = golf
	r.equal("upsertIgnore", r.projects("upsertIgnore", 201), []pgjsProject{})
	alpha.Description = pgjsPtr("upserted twice")
	want["alpha"] = alpha
	upserted := r.projects("upsertMany", 201)
	hotel := pgjsProject{TenantID: tn.UUID, ID: ids.new2, Name: "hotel"}
	for _, p := range upserted {
		if p.Name == "hotel" {
			hotel.CreatedAt = p.CreatedAt
			r.newRow("upsertMany", p.ID, p.CreatedAt)
		}
	}
	want["hotel"] = hotel
	slices.SortFunc(upserted, func(x, y pgjsProject) int { return strings.Compare(x.Name, y.Name) })
	r.equal("upsertMany", upserted, byName("alpha", "hotel"))
	india := r.project("insertOwnTenant", 201, true)
	r.newRow("insertOwnTenant", india.ID, india.CreatedAt)
	r.equal("insertOwnTenant", india, pgjsProject{TenantID: tn.UUID, ID: india.ID, Name: "india", CreatedAt: india.CreatedAt})
	want["india"] = india

	// What is left is exactly what the steps above say.
	final := byName("alpha", "bravo", "charlie", "delta2", "golf", "hotel", "india")
	r.equal("projectsAfter", r.projects("projectsAfter", 200), final)
	r.equal("tasksAfter", r.tasks("tasksAfter", 200), wantTasks)
	return final, wantTasks
}

// pgjsSeed inserts a project called name, with one task, as tn.
func pgjsSeed(t *testing.T, dir string, s *apitest.Server, tn *apitest.Tenant, name string) (pgjsProject, pgjsTask) {
	t.Helper()
	r := pgjsRun(t, dir, s, tn, "seed", "SEED_NAME="+name)
	p := r.project("project", 201, true)
	r.newRow("project", p.ID, p.CreatedAt)
	r.equal("project", p, pgjsProject{TenantID: tn.UUID, ID: p.ID, Name: name, Description: pgjsPtr("seed " + name), CreatedAt: p.CreatedAt})
	ks := r.tasks("task", 201)
	if p.ID == "" || len(ks) != 1 {
		t.Fatalf("%s: seeding failed; the attacks need its rows\n%s\n%s", r.who, r.sent("project"), r.sent("task"))
	}
	k := ks[0]
	r.newRow("task", k.ID, k.CreatedAt)
	r.equal("task", k, pgjsTask{TenantID: tn.UUID, ID: k.ID, ProjectID: p.ID, Title: "task of " + name, CreatedAt: k.CreatedAt})
	return p, k
}

// pgjsAttackEnv is the environment of an attack on project p and task k of
// the tenant victim.
func pgjsAttackEnv(victim *apitest.Tenant, p pgjsProject, k pgjsTask, missing string) []string {
	return []string{"VICTIM_PROJECT=" + p.ID, "VICTIM_TASK=" + k.ID, "VICTIM_TENANT=" + victim.UUID,
		"VICTIM_NAME=" + p.Name, "MISSING_ID=" + missing}
}

// pgjsAttack runs the attack as attacker on victim's project p and task k
// and returns the row the closing upsert made in the attacker's tenant.
// Nothing may be seen or changed; pgjsSnapshot checks the victim's rows
// afterwards.
func pgjsAttack(t *testing.T, dir string, s *apitest.Server, attacker, victim *apitest.Tenant, p pgjsProject, k pgjsTask, missing string) pgjsProject {
	t.Helper()
	r := pgjsRun(t, dir, s, attacker, "attack", pgjsAttackEnv(victim, p, k, missing)...)
	for _, got := range r.projects("listProjects", 200) {
		if got.ID == p.ID || got.TenantID != attacker.UUID {
			t.Errorf("%s: listProjects returned %+v: a row of tenant %s or with the victim's id %s\n%s", r.who, got, got.TenantID, p.ID, r.sent("listProjects"))
		}
	}
	for _, got := range r.tasks("listTasks", 200) {
		if got.ID == k.ID || got.ProjectID == p.ID || got.TenantID != attacker.UUID {
			t.Errorf("%s: listTasks returned %+v: a row of tenant %s or with the victim's ids\n%s", r.who, got, got.TenantID, r.sent("listTasks"))
		}
	}
	for _, step := range []string{"eqProject", "inProject", "orProject", "likeName", "updateProject", "updateIn"} {
		r.equal(step, r.projects(step, 200), []pgjsProject{})
	}
	// Naming another tenant as a leading key is refused by the policy
	// before any SQL runs (data:LeadingKeys), whatever that tenant holds.
	r.fails("eqTenant", 403, "policy_denied")
	for _, step := range []string{"eqTask", "tasksByProject", "updateTask"} {
		r.equal(step, r.tasks(step, 200), []pgjsTask{})
	}
	r.fails("singleProject", 404, "not_found")
	r.noData("maybeSingleProject", 200)
	r.noData("updateCount", 204)
	r.count("updateCount", 0)
	r.fails("updateSetTenant", 403, "tenant_mismatch")
	r.fails("insertTaskOnProject", 400, "invalid_reference")
	r.fails("insertProjectWithTenant", 403, "tenant_mismatch")
	r.fails("insertTaskWithTenant", 403, "tenant_mismatch")
	r.equal("deleteTask", r.tasks("deleteTask", 200), []pgjsTask{})
	r.count("deleteTask", 0)
	r.equal("deleteProject", r.projects("deleteProject", 200), []pgjsProject{})
	r.count("deleteProject", 0)
	// The upsert names the victim's id but conflicts only within the
	// attacker's tenant: it makes a new row there.
	up := r.project("upsertProject", 201, true)
	r.equal("upsertProject", up, pgjsProject{TenantID: attacker.UUID, ID: p.ID, Name: "pwned upsert", CreatedAt: up.CreatedAt})
	return up
}

// pgjsControl runs the attack as tn on its own project p and task k: every
// probe must reach them. It returns the projects the attack leaves behind
// (the row it inserts, and p made again by the closing upsert).
func pgjsControl(t *testing.T, dir string, s *apitest.Server, tn *apitest.Tenant, p pgjsProject, k pgjsTask, missing string) []pgjsProject {
	t.Helper()
	r := pgjsRun(t, dir, s, tn, "attack", pgjsAttackEnv(tn, p, k, missing)...)
	if got := r.projects("listProjects", 200); !slices.ContainsFunc(got, func(x pgjsProject) bool { return cmp.Equal(x, p) }) {
		t.Errorf("%s: listProjects = %+v, want it to hold %+v\n%s", r.who, got, p, r.sent("listProjects"))
	}
	if got := r.tasks("listTasks", 200); !slices.Contains(got, k) { // pgjsTask is comparable
		t.Errorf("%s: listTasks = %+v, want it to hold %+v\n%s", r.who, got, k, r.sent("listTasks"))
	}
	for _, step := range []string{"eqProject", "inProject", "orProject", "likeName"} {
		r.equal(step, r.projects(step, 200), []pgjsProject{p})
	}
	r.equal("eqTask", r.tasks("eqTask", 200), []pgjsTask{k})
	r.equal("tasksByProject", r.tasks("tasksByProject", 200), []pgjsTask{k})
	own := r.projects("eqTenant", 200)
	if !slices.ContainsFunc(own, func(x pgjsProject) bool { return cmp.Equal(x, p) }) {
		t.Errorf("%s: eqTenant = %+v, want it to hold %+v\n%s", r.who, own, p, r.sent("eqTenant"))
	}
	r.count("eqTenant", int64(len(own)))
	r.equal("singleProject", r.project("singleProject", 200, false), p)
	r.equal("maybeSingleProject", r.project("maybeSingleProject", 200, false), p)

	p.Name = "pwned"
	r.equal("updateProject", r.projects("updateProject", 200), []pgjsProject{p})
	k.Title, k.Done = "pwned", true
	r.equal("updateTask", r.tasks("updateTask", 200), []pgjsTask{k})
	r.noData("updateCount", 204)
	r.count("updateCount", 1)
	p.Description = pgjsPtr("pwned in")
	r.equal("updateIn", r.projects("updateIn", 200), []pgjsProject{p})
	r.equal("updateSetTenant", r.projects("updateSetTenant", 200), []pgjsProject{p})

	if got := r.tasks("insertTaskOnProject", 201); len(got) != 1 || got[0].ProjectID != p.ID || got[0].TenantID != tn.UUID {
		t.Errorf("%s: insertTaskOnProject = %+v, want one task of project %s\n%s", r.who, got, p.ID, r.sent("insertTaskOnProject"))
	}
	planted := r.project("insertProjectWithTenant", 201, true)
	r.equal("insertProjectWithTenant", planted, pgjsProject{TenantID: tn.UUID, ID: planted.ID, Name: "planted", CreatedAt: planted.CreatedAt})
	if got := r.tasks("insertTaskWithTenant", 201); len(got) != 1 || got[0].ProjectID != p.ID || got[0].TenantID != tn.UUID {
		t.Errorf("%s: insertTaskWithTenant = %+v, want one task of project %s\n%s", r.who, got, p.ID, r.sent("insertTaskWithTenant"))
	}
	r.equal("deleteTask", r.tasks("deleteTask", 200), []pgjsTask{k})
	r.count("deleteTask", 1)
	r.equal("deleteProject", r.projects("deleteProject", 200), []pgjsProject{p})
	r.count("deleteProject", 1)
	up := r.project("upsertProject", 201, true)
	r.equal("upsertProject", up, pgjsProject{TenantID: tn.UUID, ID: p.ID, Name: "pwned upsert", CreatedAt: up.CreatedAt})
	return []pgjsProject{planted, up}
}

// pgjsSnapshot checks that tn sees exactly projects and tasks.
func pgjsSnapshot(t *testing.T, dir string, s *apitest.Server, tn *apitest.Tenant, projects []pgjsProject, tasks []pgjsTask) {
	t.Helper()
	r := pgjsRun(t, dir, s, tn, "snapshot")
	projects = slices.SortedFunc(slices.Values(projects), func(x, y pgjsProject) int { return strings.Compare(x.ID, y.ID) })
	tasks = slices.SortedFunc(slices.Values(tasks), func(x, y pgjsTask) int { return strings.Compare(x.ID, y.ID) })
	r.equal("projects", r.projects("projects", 200), projects)
	r.equal("tasks", r.tasks("tasks", 200), tasks)
}

type pgjsProject struct {
	TenantID    string  `json:"tenant_id"`
	ID          string  `json:"id"`
	Name        string  `json:"name"`
	Description *string `json:"description"`
	CreatedAt   string  `json:"created_at"`
}

func (p pgjsProject) String() string {
	d := "null"
	if p.Description != nil {
		d = strconv.Quote(*p.Description)
	}
	return fmt.Sprintf("{tenant_id:%s id:%s name:%q description:%s created_at:%s}", p.TenantID, p.ID, p.Name, d, p.CreatedAt)
}

type pgjsTask struct {
	TenantID  string `json:"tenant_id"`
	ID        string `json:"id"`
	ProjectID string `json:"project_id"`
	Title     string `json:"title"`
	Done      bool   `json:"done"`
	CreatedAt string `json:"created_at"`
}

var (
	pgjsProjectKeys = []string{"created_at", "description", "id", "name", "tenant_id"}
	pgjsTaskKeys    = []string{"created_at", "done", "id", "project_id", "tenant_id", "title"}
)

func pgjsPtr(s string) *string { return &s }

// pgjsResult is what client.mjs prints for one step: the client's result and
// the requests it sent.
type pgjsResult struct {
	Data     json.RawMessage `json:"data"`
	Error    json.RawMessage `json:"error"`
	Status   int             `json:"status"`
	Count    *int64          `json:"count"`
	Requests []struct {
		Method  string            `json:"method"`
		URL     string            `json:"url"`
		Headers map[string]string `json:"headers"`
		Body    *string           `json:"body"`
	} `json:"requests"`
}

// pgjsOutput is one run of client.mjs, with helpers that check its steps.
// The helpers report with t.Errorf and carry on, so one run shows every
// failed step.
type pgjsOutput struct {
	t     *testing.T
	who   string // "mode as tenant (tier)", for messages
	steps map[string]*pgjsResult
}

// pgjsRun runs client.mjs in mode as tn's admin with the extra environment.
func pgjsRun(t *testing.T, dir string, s *apitest.Server, tn *apitest.Tenant, mode string, env ...string) *pgjsOutput {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", "client.mjs")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "BULKHEAD_URL="+s.URL, "BULKHEAD_TOKEN="+tn.AdminToken, "BULKHEAD_MODE="+mode)
	cmd.Env = append(cmd.Env, env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	who := fmt.Sprintf("%s as %s (%s)", mode, tn.Slug, tn.Tier)
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: node client.mjs: %v\nstderr:\n%s\nstdout:\n%s", who, err, stderr.Bytes(), stdout.Bytes())
	}
	o := &pgjsOutput{t: t, who: who}
	if err := json.Unmarshal(stdout.Bytes(), &o.steps); err != nil {
		t.Fatalf("%s: decode the output of client.mjs: %v\nstdout:\n%s\nstderr:\n%s", who, err, stdout.Bytes(), stderr.Bytes())
	}
	return o
}

func (o *pgjsOutput) step(name string) *pgjsResult {
	o.t.Helper()
	r, ok := o.steps[name]
	if !ok {
		o.t.Fatalf("%s: client.mjs printed no step %q", o.who, name)
	}
	return r
}

// sent describes the requests and the result of a step, for messages.
func (o *pgjsOutput) sent(name string) string {
	r := o.steps[name]
	if r == nil {
		return "(no such step)"
	}
	var b strings.Builder
	for _, q := range r.Requests {
		fmt.Fprintf(&b, "  sent: %s %s", q.Method, q.URL)
		for _, k := range slices.Sorted(maps.Keys(q.Headers)) {
			fmt.Fprintf(&b, " [%s: %s]", k, q.Headers[k])
		}
		if q.Body != nil {
			fmt.Fprintf(&b, " body %s", *q.Body)
		}
		b.WriteByte('\n')
	}
	fmt.Fprintf(&b, "  got: status %d, count %s, error %s, data %s", r.Status, pgjsCount(r.Count), pgjsOrNull(r.Error), pgjsOrNull(r.Data))
	return b.String()
}

func pgjsCount(n *int64) string {
	if n == nil {
		return "null"
	}
	return strconv.FormatInt(*n, 10)
}

func pgjsOrNull(m json.RawMessage) string {
	if len(m) == 0 {
		return "null"
	}
	return string(m)
}

func pgjsIsNull(m json.RawMessage) bool { return len(m) == 0 || string(m) == "null" }

// succeeded checks that a step has status and no error.
func (o *pgjsOutput) succeeded(name string, status int) bool {
	o.t.Helper()
	r := o.step(name)
	if r.Status != status || !pgjsIsNull(r.Error) {
		o.t.Errorf("%s: %s: status %d, error %s; want status %d and no error\n%s", o.who, name, r.Status, pgjsOrNull(r.Error), status, o.sent(name))
		return false
	}
	return true
}

// noData checks that a step succeeded with status and returned no data.
func (o *pgjsOutput) noData(name string, status int) {
	o.t.Helper()
	if o.succeeded(name, status) && !pgjsIsNull(o.step(name).Data) {
		o.t.Errorf("%s: %s: data = %s, want null\n%s", o.who, name, o.step(name).Data, o.sent(name))
	}
}

// fails checks that a step failed with status and the error code (any
// code when code is empty) and a message, and returned no data.
func (o *pgjsOutput) fails(name string, status int, code string) {
	o.t.Helper()
	r := o.step(name)
	var e struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	json.Unmarshal(r.Error, &e)
	if r.Status != status || (code != "" && e.Code != code) || e.Code == "" || e.Message == "" || !pgjsIsNull(r.Data) {
		o.t.Errorf("%s: %s: status %d, error code %q, data %s; want status %d, code %q, a message and no data\n%s",
			o.who, name, r.Status, e.Code, pgjsOrNull(r.Data), status, code, o.sent(name))
	}
}

// count checks the count the client read from Content-Range.
func (o *pgjsOutput) count(name string, want int64) {
	o.t.Helper()
	r := o.step(name)
	if r.Count == nil || *r.Count != want {
		o.t.Errorf("%s: %s: count = %s, want %d\n%s", o.who, name, pgjsCount(r.Count), want, o.sent(name))
	}
}

// pgjsDecode decodes a step's data, an object or an array of objects that have
// exactly keys, into T.
func pgjsDecode[T any](o *pgjsOutput, name string, data json.RawMessage, keys []string) (T, bool) {
	o.t.Helper()
	var zero T
	var raw any
	if err := json.Unmarshal(data, &raw); err != nil {
		o.t.Errorf("%s: %s: data %s: %v", o.who, name, data, err)
		return zero, false
	}
	var objs []any
	switch v := raw.(type) {
	case []any:
		objs = v
	case map[string]any:
		objs = []any{v}
	}
	for _, x := range objs {
		m, ok := x.(map[string]any)
		if !ok {
			o.t.Errorf("%s: %s: data %s holds a non-object\n%s", o.who, name, data, o.sent(name))
			return zero, false
		}
		if got := slices.Sorted(maps.Keys(m)); !slices.Equal(got, keys) {
			o.t.Errorf("%s: %s: a row has the keys %v, want %v\n%s", o.who, name, got, keys, o.sent(name))
			return zero, false
		}
	}
	var out T
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		o.t.Errorf("%s: %s: decode data %s: %v\n%s", o.who, name, data, err, o.sent(name))
		return zero, false
	}
	return out, true
}

// arrayData returns a successful step's data, which must be a JSON array.
func (o *pgjsOutput) arrayData(name string, status int) (json.RawMessage, bool) {
	o.t.Helper()
	if !o.succeeded(name, status) {
		return nil, false
	}
	d := o.step(name).Data
	if !bytes.HasPrefix(bytes.TrimSpace(d), []byte("[")) {
		o.t.Errorf("%s: %s: data = %s, want an array\n%s", o.who, name, pgjsOrNull(d), o.sent(name))
		return nil, false
	}
	return d, true
}

// objectData returns a successful step's data, which must be one JSON object.
func (o *pgjsOutput) objectData(name string, status int) (json.RawMessage, bool) {
	o.t.Helper()
	if !o.succeeded(name, status) {
		return nil, false
	}
	d := o.step(name).Data
	if !bytes.HasPrefix(bytes.TrimSpace(d), []byte("{")) {
		o.t.Errorf("%s: %s: data = %s, want one object\n%s", o.who, name, pgjsOrNull(d), o.sent(name))
		return nil, false
	}
	return d, true
}

// projects returns a step's rows, which must be whole projects.
func (o *pgjsOutput) projects(name string, status int) []pgjsProject {
	o.t.Helper()
	d, ok := o.arrayData(name, status)
	if !ok {
		return nil
	}
	ps, _ := pgjsDecode[[]pgjsProject](o, name, d, pgjsProjectKeys)
	return ps
}

// project returns the one project of a step: the only element of an array
// when array is set, else the object that .single() or .maybeSingle()
// returns.
func (o *pgjsOutput) project(name string, status int, array bool) pgjsProject {
	o.t.Helper()
	if array {
		ps := o.projects(name, status)
		if len(ps) != 1 {
			if ps != nil {
				o.t.Errorf("%s: %s: %d rows, want 1\n%s", o.who, name, len(ps), o.sent(name))
			}
			return pgjsProject{}
		}
		return ps[0]
	}
	d, ok := o.objectData(name, status)
	if !ok {
		return pgjsProject{}
	}
	p, _ := pgjsDecode[pgjsProject](o, name, d, pgjsProjectKeys)
	return p
}

// tasks returns a step's rows, which must be whole tasks.
func (o *pgjsOutput) tasks(name string, status int) []pgjsTask {
	o.t.Helper()
	d, ok := o.arrayData(name, status)
	if !ok {
		return nil
	}
	ks, _ := pgjsDecode[[]pgjsTask](o, name, d, pgjsTaskKeys)
	return ks
}

// object returns the one object a step returned, or nil.
func (o *pgjsOutput) object(name string, status int) map[string]any {
	o.t.Helper()
	d, ok := o.objectData(name, status)
	if !ok {
		return nil
	}
	var m map[string]any
	json.Unmarshal(d, &m)
	return m
}

// rows checks a step's rows, as generic objects, against want.
func (o *pgjsOutput) rows(name string, status int, want []map[string]any) {
	o.t.Helper()
	d, ok := o.arrayData(name, status)
	if !ok {
		return
	}
	var got []map[string]any
	if err := json.Unmarshal(d, &got); err != nil {
		o.t.Errorf("%s: %s: data %s: %v", o.who, name, d, err)
		return
	}
	o.equal(name, got, want)
}

// names checks that a step returned exactly the rows {"name": n} for names, in
// that order.
func (o *pgjsOutput) names(name string, names ...string) {
	o.t.Helper()
	want := []map[string]any{}
	for _, n := range names {
		want = append(want, map[string]any{"name": n})
	}
	o.rows(name, 200, want)
}

// equal reports a diff between got and want for a step.
func (o *pgjsOutput) equal(name string, got, want any) {
	o.t.Helper()
	if diff := cmp.Diff(want, got); diff != "" {
		o.t.Errorf("%s: %s: mismatch (-want +got):\n%s\n%s", o.who, name, diff, o.sent(name))
	}
}

// newRow checks that a row the database made has a UUID and a timestamp.
func (o *pgjsOutput) newRow(name, id, createdAt string) {
	o.t.Helper()
	if !pgjsUUIDPattern(id) {
		o.t.Errorf("%s: %s: id = %q, want a UUID\n%s", o.who, name, id, o.sent(name))
	}
	if createdAt != "" {
		if _, err := time.Parse(time.RFC3339Nano, createdAt); err != nil {
			o.t.Errorf("%s: %s: created_at = %q, want an RFC 3339 time: %v", o.who, name, createdAt, err)
		}
	}
}

func pgjsUUIDPattern(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i, c := range s {
		switch {
		case i == 8 || i == 13 || i == 18 || i == 23:
			if c != '-' {
				return false
			}
		case !('0' <= c && c <= '9' || 'a' <= c && c <= 'f'):
			return false
		}
	}
	return true
}

// pgjsUUID returns a random version 4 UUID.
func pgjsUUID() string {
	var b [16]byte
	rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// pgjsInstall returns the absolute path of testdata/postgrestjs after
// making sure that the pinned @supabase/postgrest-js is installed there. It
// runs npm ci only when node_modules lacks the pinned version. Without node
// and npm the test fails: it never skips.
func pgjsInstall(t *testing.T) string {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata", "postgrestjs"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []string{"node", "npm"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("TestPostgrestJS runs the official @supabase/postgrest-js client and needs node (18 or later) and npm: %v; install them with: apt-get install -y nodejs npm", err)
		}
	}
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, "node", "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("node --version: %v\n%s", err, out)
	}
	v := strings.TrimPrefix(strings.TrimSpace(string(out)), "v")
	if major, _, _ := strings.Cut(v, "."); pgjsAtoi(major) < 18 {
		t.Fatalf("node --version = %s, want 18 or later (the client needs fetch); install a newer one: apt-get install -y nodejs npm", out)
	}

	var pkg struct {
		Dependencies map[string]string `json:"dependencies"`
	}
	pgjsReadJSON(t, filepath.Join(dir, "package.json"), &pkg)
	pinned := pkg.Dependencies["@supabase/postgrest-js"]
	if pinned == "" || strings.ContainsAny(pinned, "^~<>=*x ") {
		t.Fatalf("testdata/postgrestjs/package.json pins @supabase/postgrest-js as %q, want an exact version", pinned)
	}
	installed := func() string {
		b, err := os.ReadFile(filepath.Join(dir, "node_modules", "@supabase", "postgrest-js", "package.json"))
		if err != nil {
			return ""
		}
		var p struct {
			Version string `json:"version"`
		}
		json.Unmarshal(b, &p)
		return p.Version
	}
	if installed() == pinned {
		return dir
	}
	args := []string{"ci", "--no-audit", "--no-fund"}
	if _, err := os.Stat(filepath.Join(dir, "package-lock.json")); err != nil {
		args = []string{"install", "--no-audit", "--no-fund"}
	}
	cmd := exec.CommandContext(ctx, "npm", args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("npm %s in %s: %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	if got := installed(); got != pinned {
		t.Fatalf("after npm %s, node_modules has @supabase/postgrest-js %q, want %q", args[0], got, pinned)
	}
	return dir
}

func pgjsAtoi(s string) int {
	n, err := strconv.Atoi(s)
	if err != nil {
		return -1
	}
	return n
}

func pgjsReadJSON(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}
