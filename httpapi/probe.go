package httpapi

import (
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/bulkhead-dev/bulkhead/audit"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

var uuidText = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// probedIDs keeps, of the values a data request's filters compare id with
// (rest.Compared: any spelling the parser accepts, id=eq.X, id=in.(X,Y),
// "id"=eq.X, or=(id.eq.X), id=eq(any).{X}, …), the UUIDs, at most 100:
// when the request found none of them, it may be probing for another
// tenant's rows.
func probedIDs(ids []string) []string {
	out := make([]string, 0, len(ids))
	for _, id := range ids {
		if uuidText.MatchString(id) && len(out) < 100 {
			out = append(out, strings.ToLower(id))
		}
	}
	return out
}

// checkProbe runs after the response, on the control plane's own
// connection and role: for every request by id that found nothing, it asks
// whether those ids exist in another tenant, the same work for every such
// request. A hit becomes a "probe" audit event visible to platform
// administrators only: neither tenant's admins learn from the trail that
// the id exists elsewhere. The caller's answer was already sent, the same
// as for an id that exists nowhere.
func (s *Server) checkProbe(r *http.Request, p tenant.Principal, table string, ids []string) {
	if s.audit == nil || len(ids) == 0 {
		return
	}
	base := event(r, audit.Probe, "cross_tenant_probe", 0)
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 30*time.Second)
	go func() {
		defer cancel()
		owners, err := s.pg.OwnersOf(ctx, table, ids, string(p.TenantID))
		if err != nil {
			s.log.WarnContext(ctx, "cross-tenant probe check failed", "err", err)
			return
		}
		for id, owner := range owners {
			e := base
			e.Action = "data:Probe"
			e.Visibility = audit.VisiblePlatform
			e.Detail, _ = json.Marshal(map[string]string{"table": table, "id": id, "owner_tenant_id": owner})
			if err := s.audit.Record(ctx, e); err != nil {
				s.log.WarnContext(ctx, "cross-tenant probe not recorded", "err", err)
				continue
			}
			s.log.WarnContext(ctx, "cross-tenant probe", "tenant_id", string(p.TenantID), "sub", p.Subject, "table", table, "request_id", base.RequestID)
		}
	}()
}
