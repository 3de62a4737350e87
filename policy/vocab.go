package policy

import "slices"

// Data-plane actions. Each acts on a table resource (see [DataResource]).
const (
	DataSelect = "data:Select"
	DataInsert = "data:Insert"
	DataUpdate = "data:Update"
	DataDelete = "data:Delete"
)

// Control-plane actions. Each acts on a control resource (see
// [ControlResource]); the doc comment of the package lists which kind.
const (
	TenantsCreate    = "tenants:Create"
	TenantsList      = "tenants:List"
	TenantsGet       = "tenants:Get"
	TenantsUpdate    = "tenants:Update" // suspend or resume
	TenantsDelete    = "tenants:Delete"
	UsersCreate      = "users:Create"
	UsersList        = "users:List"
	PoliciesGet      = "policies:Get"
	PoliciesList     = "policies:List"
	PoliciesPut      = "policies:Put"
	PoliciesDelete   = "policies:Delete"
	PoliciesSimulate = "policies:Simulate"
	AuditRead        = "audit:Read"
	KeysRotate       = "keys:Rotate"
	KeysList         = "keys:List"
	KeysRetire       = "keys:Retire"
)

// actions is every bulkhead action, in the order of the package doc.
var actions = []string{
	DataSelect, DataInsert, DataUpdate, DataDelete,
	TenantsCreate, TenantsList, TenantsGet, TenantsUpdate, TenantsDelete,
	UsersCreate, UsersList,
	PoliciesGet, PoliciesList, PoliciesPut, PoliciesDelete, PoliciesSimulate,
	AuditRead,
	KeysRotate, KeysList, KeysRetire,
}

// Actions returns every bulkhead action.
func Actions() []string { return slices.Clone(actions) }

// ownedServices are the action prefixes bulkhead defines. An action pattern
// in one of them must match at least one bulkhead action, so that a typo
// such as "data:Selct" is an error rather than a statement that silently
// never applies. Patterns for other services (such as "dynamodb:GetItem" in
// an exported AWS policy) are accepted as they are.
var ownedServices = map[string]bool{
	"data": true, "tenants": true, "users": true, "policies": true, "audit": true, "keys": true,
}

// Condition keys. Keys are matched without regard to case, as in AWS.
const (
	// KeyLeadingKeys is multivalued: the tenant ids whose rows a data
	// request reads or writes. Conditions on it need ForAllValues: or
	// ForAnyValue:.
	KeyLeadingKeys = "data:LeadingKeys"
	// KeyTenantID is the principal's tenant ([Principal.TenantID]).
	KeyTenantID = "bulkhead:TenantID"
	// KeyTier is the principal's tenant's tier ([Principal.Tier]).
	KeyTier = "bulkhead:Tier"
	// KeyRole is the principal's role in its tenant ([Principal.Role]).
	KeyRole = "bulkhead:Role"
	// KeyPrincipalTag is the prefix of the principal's tags
	// ([Principal.Tags]): "bulkhead:PrincipalTag/team".
	KeyPrincipalTag = "bulkhead:PrincipalTag/"
	// KeyAWSPrincipalTag is an alias of [KeyPrincipalTag], so that policies
	// written for AWS read the same tags.
	KeyAWSPrincipalTag = "aws:PrincipalTag/"
	// KeySourceIP is the caller's address ([Request.SourceIP]).
	KeySourceIP = "aws:SourceIp"
	// KeyCurrentTime is the time of the request ([Request.Time]) for the
	// Date operators.
	KeyCurrentTime = "aws:CurrentTime"
	// KeyEpochTime is the time of the request in seconds since 1970, for
	// the Date and Numeric operators.
	KeyEpochTime = "aws:EpochTime"
)

// ownedKeyNamespaces are the condition-key prefixes bulkhead defines; a key
// in one of them that bulkhead does not know is a validation error.
var ownedKeyNamespaces = map[string]bool{"bulkhead": true, "data": true}

// multivaluedKeys are the keys whose request values are sets. A condition
// on one of them needs a set qualifier (AWS evaluates a plain operator on a
// multivalued key to false, which would silently disable a Deny).
var multivaluedKeys = map[string]bool{
	"data:leadingkeys":     true,
	"dynamodb:leadingkeys": true,
}

// The tiers that have a [Template].
const (
	TierBasic   = "basic"
	TierPremium = "premium"
)

// Resource kinds, the part of a control resource before the slash.
const (
	KindTable  = "table"  // data: a tenant table, named by the table
	KindTenant = "tenant" // control: a tenant, named by its id
	KindUser   = "user"   // control: a user, named by its id
	KindPolicy = "policy" // control: a policy document, named by its name
	KindAudit  = "audit"  // control: a tenant's audit log, named by the stream ("" for all)
	KindKey    = "key"    // control: a signing key, named by its kid
	// Kinds that only name audit events' resources, never a policy's.
	KindToken    = "token"    // control: an issued token, named by its jti
	KindFunction = "function" // control: a registered function, named by its name
)

// DataResource returns the resource name of a tenant table:
// "brn:bulkhead:data:<tenantID>:table/<table>".
//
// Isolation: tenantID and table must not contain ':' (tenant ids are
// UUIDs or slugs, table names are identifiers from the allowlist), or the
// name would shift into another segment.
func DataResource(tenantID, table string) string {
	return "brn:bulkhead:data:" + tenantID + ":" + KindTable + "/" + table
}

// ControlResource returns the resource name of a control-plane object:
// "brn:bulkhead:control:<tenantID>:<kind>/<name>". A collection (the target
// of a List or Create action) has an empty name; an object that belongs to
// no tenant (the platform's tenant list, its signing keys) has an empty
// tenantID. The same isolation rule as [DataResource] applies.
func ControlResource(tenantID, kind, name string) string {
	return "brn:bulkhead:control:" + tenantID + ":" + kind + "/" + name
}
