package gameday

import (
	"strings"
	"testing"
)

func TestPlanCounts(t *testing.T) {
	for _, tt := range []struct {
		name                    string
		plan                    string
		removed, examined, rows int64
	}{
		{"seq scan", `[{"Plan":{"Node Type":"Seq Scan","Plan Rows":21,"Actual Rows":1,"Rows Removed by Filter":20}}]`, 20, 21, 21},
		{"nested", `[{"Plan":{"Node Type":"Result","Plan Rows":1,"Actual Rows":0,"Plans":[{"Actual Rows":0,"Rows Removed by Filter":7},{"Rows Removed by Index Recheck":2}]}}]`, 9, 9, 1},
		{"not a plan", `nope`, -1, -1, -1},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := removed(tt.plan); got != tt.removed {
				t.Errorf("removed = %d, want %d", got, tt.removed)
			}
			if got := examined(tt.plan); got != tt.examined {
				t.Errorf("examined = %d, want %d", got, tt.examined)
			}
			if got := planRows(tt.plan); got != tt.rows {
				t.Errorf("planRows = %d, want %d", got, tt.rows)
			}
		})
	}
}

func TestRedact(t *testing.T) {
	sql := `SELECT set_config('app.ctx', 'acme.c95c2633298e7579b097609eff28b635785ff2d46dcdde1b9351db10c1c5ba91', true)`
	got := redact(sql)
	if strings.Contains(got, "9b097609eff28b6") || !strings.Contains(got, "acme.") {
		t.Errorf("redact(%q) = %q, want the signature shortened and the tenant kept", sql, got)
	}
	jwt := "eyJhbGciOiJIUzI1NiJ9.eyJ0ZW5hbnRfaWQiOiJCIn0.c2lnbmF0dXJlc2lnbmF0dXJlc2lnbmF0dXJl"
	if got := redact("select '" + jwt + "'"); strings.Contains(got, "eyJ0ZW5hbnRfaWQ") {
		t.Errorf("redact left a JWT's payload: %q", got)
	}
}

func TestDefinerArgs(t *testing.T) {
	tb := &table{cols: []column{{name: "tenant_id", typ: "uuid", category: "U"}, {name: "id", typ: "integer", category: "N"}},
		keys: []uniqueKey{{name: "pk", primary: true, cols: []string{"tenant_id", "id"}}}}
	tb.tcol = &tb.cols[0]
	p := &pair{b: side{tenant: "0b6c8f0e-6d1c-4a57-9b51-7d8f7c1b2a3e", tbl: tb}, marker: "gdc1",
		bRow: row{"tenant_id": strp("0b6c8f0e-6d1c-4a57-9b51-7d8f7c1b2a3e"), "id": strp("42")}}
	for _, tt := range []struct {
		types, cats []string
		want        string
	}{
		{nil, nil, "[[]]"},
		{[]string{"text"}, []string{"S"}, "[[0b6c8f0e-6d1c-4a57-9b51-7d8f7c1b2a3e] [%] [gdc1] [42]]"},
		{[]string{"uuid"}, []string{"U"}, "[[0b6c8f0e-6d1c-4a57-9b51-7d8f7c1b2a3e]]"},
		{[]string{"integer"}, []string{"N"}, "[[42]]"},
		{[]string{"point"}, []string{"G"}, "[]"},
	} {
		got := strings.ReplaceAll(strings.TrimSpace(fmtArgs(definerArgs(p, tt.types, tt.cats))), "\n", "")
		if got != tt.want {
			t.Errorf("definerArgs(%v) = %s, want %s", tt.types, got, tt.want)
		}
	}
}

func fmtArgs(a [][]string) string {
	var b strings.Builder
	b.WriteString("[")
	for i, x := range a {
		if i > 0 {
			b.WriteString(" ")
		}
		b.WriteString("[" + strings.Join(x, " ") + "]")
	}
	return b.String() + "]"
}

func TestRedactKeepsUUIDs(t *testing.T) {
	sql := `SELECT set_config('app.tenant_id', '0b6c8f0e-6d1c-4a57-9b51-7d8f7c1b2a3e', true)`
	if got := redact(sql); got != sql {
		t.Errorf("redact(%q) = %q, want it unchanged", sql, got)
	}
}
