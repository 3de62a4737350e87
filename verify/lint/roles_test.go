package lint

import "testing"

// TestNoAppRoles: when the default app roles find nobody, every check of
// what app roles reach looked at nobody, and lint must say so as an
// error instead of passing.
func TestNoAppRoles(t *testing.T) {
	c := &catalog{dbq: "shop"}
	fs := c.checkRoles()
	if len(fs) != 1 || fs[0].ID != "L06" || fs[0].Severity != Error || fs[0].Object.String() != "database shop" {
		t.Errorf("no app role found by default: %+v, want one L06 error on the database", fs)
	}
	c.opt.AppRoles = []string{"app"}
	c.apps = []role{{name: "app", q: "app", login: true}}
	if fs := c.checkRoles(); len(fs) != 0 {
		t.Errorf("with an app role: %+v, want nothing", fs)
	}
}
