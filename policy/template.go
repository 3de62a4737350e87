package policy

import (
	"embed"
	"slices"
)

//go:embed templates/*.json
var templateFS embed.FS

// Tiers returns the tiers that have a template.
func Tiers() []string { return []string{TierBasic, TierPremium} }

// Template returns a fresh, validated copy of the policy every principal of
// a tenant on tier gets. Templates keep their policy variables
// (${bulkhead:TenantID}): one document serves every tenant of the tier, and
// the tenant is filled in from the [Principal] at each evaluation, the ABAC
// way, so no per-tenant copy can drift or be rendered for the wrong tenant.
// The package doc describes what each tier allows.
func Template(tier string) (*Document, error) {
	if !slices.Contains(Tiers(), tier) {
		return nil, invalid("policy.Template", "no template for tier %s", quote(tier))
	}
	b, err := templateFS.ReadFile("templates/" + tier + ".json")
	if err != nil {
		return nil, err
	}
	return Parse(b)
}

// TemplateJSON returns the JSON text of tier's template, or nil when there is
// none.
func TemplateJSON(tier string) []byte {
	if !slices.Contains(Tiers(), tier) {
		return nil
	}
	b, _ := templateFS.ReadFile("templates/" + tier + ".json")
	return b
}
