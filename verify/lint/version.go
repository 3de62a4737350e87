package lint

import (
	"fmt"
	"strings"
)

// firstFixed is, per major version, the first minor release with the
// fixes for the row-security and statistics leaks L18 knows of
// (CVE-2024-10976 and CVE-2024-10978 in 13.17/14.14/15.9/16.5/17.1,
// CVE-2025-8713 in 13.22/14.19/15.14/16.10/17.6). 18.0 shipped with them.
var firstFixed = map[int]int{13: 22, 14: 19, 15: 14, 16: 10, 17: 6}

// oldestSupported is the oldest major version that still had these fixes
// backported; anything older gets no security releases.
const oldestSupported = 13

// versionProblem describes why server_version_num num is vulnerable, or
// returns "".
func versionProblem(num int) string {
	major, minor := num/10000, num%100
	if num < 100000 { // 9.x: 90624 is 9.6.24
		return fmt.Sprintf("PostgreSQL %d.%d.%d is long out of support and has known row-security and statistics leaks.", num/10000, num/100%100, minor)
	}
	if major < oldestSupported {
		return fmt.Sprintf("PostgreSQL %d.%d is out of support and has known row-security and statistics leaks.", major, minor)
	}
	if want, ok := firstFixed[major]; ok && minor < want {
		return fmt.Sprintf("PostgreSQL %d.%d predates %d.%d, which fixes known row-security and statistics leaks (CVE-2025-8713 and earlier).", major, minor, major, want)
	}
	return ""
}

// statsExtFixed reports whether the definitions of pg_stats_ext and
// pg_stats_ext_exprs carry the CVE-2024-4317 fix, which added an owner
// check (pg_has_role) to them. An absent view (before PostgreSQL 12, or
// not readable) counts as fixed: the version check covers those.
func statsExtFixed(statsExt, statsExprs string) bool {
	ok := func(def string) bool { return def == "" || strings.Contains(def, "pg_has_role") }
	return ok(statsExt) && ok(statsExprs)
}
