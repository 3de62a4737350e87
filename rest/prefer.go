package rest

import (
	"net/http"
	"strings"
)

// prefer is the parsed Prefer header.
type prefer struct {
	ret            string // "representation", "minimal", "headers-only" or ""
	count          bool
	resolution     string // "merge-duplicates", "ignore-duplicates" or ""
	missingDefault bool
	rollback       bool
	maxAffected    int64
}

// parsePrefer reads every Prefer header; each may hold several
// comma-separated preferences. As in PostgREST, preferences it does not
// know or cannot honour are ignored unless handling=strict is among them.
func parsePrefer(h http.Header) (prefer, error) {
	var p prefer
	var bad []string
	strict := false
	for _, line := range h.Values("Prefer") {
		for item := range strings.SplitSeq(line, ",") {
			item = strings.TrimSpace(item)
			if item == "" {
				continue
			}
			k, v, _ := strings.Cut(item, "=")
			k, v = strings.TrimSpace(k), strings.TrimSpace(v)
			ok := true
			switch k {
			case "return":
				ok = v == "representation" || v == "minimal" || v == "headers-only"
				if ok {
					p.ret = v
				}
			case "count":
				// Isolation: planned and estimated counts come from planner
				// statistics over every tenant's rows. They are answered
				// with an exact count, which row security filters.
				ok = v == "exact" || v == "planned" || v == "estimated"
				p.count = p.count || ok
			case "resolution":
				ok = v == "merge-duplicates" || v == "ignore-duplicates"
				if ok {
					p.resolution = v
				}
			case "missing":
				ok = v == "default" || v == "null"
				if ok {
					p.missingDefault = v == "default"
				}
			case "handling":
				ok = v == "strict" || v == "lenient"
				if ok {
					strict = v == "strict"
				}
			case "tx":
				ok = v == "commit" || v == "rollback"
				if ok {
					p.rollback = v == "rollback"
				}
			case "max-affected":
				n, err := parseCount(v)
				ok = err == nil
				if ok {
					p.maxAffected = n
				}
			default:
				// timezone, params and anything newer: not honoured.
				ok = false
			}
			if !ok {
				bad = append(bad, item)
			}
		}
	}
	if strict && len(bad) > 0 {
		return prefer{}, errorf(ErrInvalidPrefer, "The Prefer header has the preference %s, which is not supported, and handling=strict.", echo(bad[0]))
	}
	return p, nil
}

// accept is the parsed Accept header.
type accept struct {
	single bool // application/vnd.pgrst.object+json
	strip  bool // nulls=stripped
}

// parseAccept picks the first media range in Accept that the data API can
// produce. An empty Accept means JSON.
func parseAccept(h http.Header) (accept, error) {
	lines := h.Values("Accept")
	if len(lines) == 0 {
		return accept{}, nil
	}
	for _, line := range lines {
		for mr := range strings.SplitSeq(line, ",") {
			typ, params, _ := strings.Cut(mr, ";")
			typ = strings.ToLower(strings.TrimSpace(typ))
			var a accept
			switch typ {
			case "", "*/*", "application/*", "application/json", "application/vnd.pgrst.array+json":
			case "application/vnd.pgrst.object+json":
				a.single = true
			case "application/vnd.pgrst.plan", "application/vnd.pgrst.plan+json", "application/vnd.pgrst.plan+text":
				// Isolation: EXPLAIN output counts rows removed by row
				// security, other tenants' rows included.
				return accept{}, errorf(ErrUnsupported, "Execution plans are not available.")
			default:
				continue
			}
			for p := range strings.SplitSeq(params, ";") {
				k, v, _ := strings.Cut(p, "=")
				if strings.EqualFold(strings.TrimSpace(k), "nulls") && strings.EqualFold(strings.TrimSpace(v), "stripped") {
					a.strip = true
				}
			}
			return a, nil
		}
	}
	return accept{}, errorf(ErrUnsupported, "The Accept header asks only for formats other than JSON.")
}
