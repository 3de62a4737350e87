// Package policy parses, validates and evaluates bulkhead's access
// policies: IAM-style attribute-based (ABAC) documents that say which
// principal may do what to which tenant's resources.
//
// The package is pure logic. It does no I/O and reads no clock: the time of
// a request, the caller's address and the principal's attributes are passed
// in ([Request], [Principal]).
//
// # Documents
//
// A document is the AWS IAM JSON policy grammar for identity policies:
//
//	{
//	  "Version": "2012-10-17",
//	  "Statement": [{
//	    "Sid": "ReadOwnTables",
//	    "Effect": "Allow",
//	    "Action": ["data:Select"],
//	    "Resource": "brn:bulkhead:data:${bulkhead:TenantID}:table/*",
//	    "Condition": {"ForAllValues:StringEquals": {"data:LeadingKeys": "${bulkhead:TenantID}"}}
//	  }]
//	}
//
// Its rules:
//
//   - Version is required: "2012-10-17", or "2008-10-17", under which policy
//     variables are not substituted (as in AWS, "${…}" is then literal text;
//     beware that a Deny written with variables then never applies). Id is
//     optional. Statement is one object or an array of 1 to [MaxStatements].
//   - A statement has an optional Sid (ASCII letters and digits, unique in
//     the document), an Effect of exactly "Allow" or "Deny", exactly one of
//     Action and NotAction, exactly one of Resource and NotResource, and an
//     optional Condition. Action and Resource values are a string or a
//     non-empty array of strings.
//   - Principal and NotPrincipal are rejected: these are identity policies,
//     which apply to the principal they are attached to.
//   - The JSON is strict: unknown fields, field names in the wrong case,
//     duplicate keys and keys that differ only in case are errors, and a
//     document is at most [MaxSize] bytes.
//
// [Parse] decodes and validates; [Document.Validate] validates a document
// built in Go. Both compile the document (wildcards, variables, numbers,
// dates and CIDR blocks are parsed once), and both return a *fault.Error of
// kind Invalid and code "invalid_policy" whose message names the place,
// such as
//
//	Statement[2] ("AllowReads"): Condition: unknown operator "StringEqualz"
//
// A marshalled Document (encoding/json) is a canonical document that parses
// back to the same policy.
//
// # Actions and resources
//
// Actions are "service:name" or "*", and may hold the wildcards * (any run
// of characters) and ? (one character). They are matched without regard to
// case, as in AWS. A pattern in one of bulkhead's services must match at
// least one of its actions, so a typo is an error; other services (such as
// dynamodb, for [ExportDynamoDB]) are accepted as written.
//
// Resources are "*", a brn, or an AWS arn, matched with regard to case. A
// name is split at its colons into segments (five for a brn, six for an
// arn, the last taking the rest of the name), and wildcards match within
// their segment. A pattern with fewer segments than its scheme must end in
// *, which then also matches the remaining segments: "brn:bulkhead:data:*"
// is every data resource.
//
// # Vocabulary
//
// Data resources are tenant tables, "brn:bulkhead:data:<tenant>:table/<name>"
// ([DataResource]), with the actions data:Select, data:Insert, data:Update
// and data:Delete.
//
// Control resources are "brn:bulkhead:control:<tenant>:<kind>/<name>"
// ([ControlResource]). The tenant segment is the tenant the object belongs
// to, and is empty for the platform's own objects; a collection (what List
// and Create act on) has an empty name:
//
//	tenants:Create, tenants:List       brn:bulkhead:control::tenant/
//	tenants:Get, tenants:Update,
//	tenants:Delete                     brn:bulkhead:control:<tenant>:tenant/<tenant>
//	users:Create, users:List           brn:bulkhead:control:<tenant>:user/
//	policies:List                      brn:bulkhead:control:<tenant>:policy/
//	policies:Get, policies:Put,        brn:bulkhead:control:<tenant>:policy/<name>
//	policies:Delete, policies:Simulate brn:bulkhead:control:<tenant>:policy/<name>
//	audit:Read                         brn:bulkhead:control:<tenant>:audit/<stream>
//	keys:List                          brn:bulkhead:control::key/
//	keys:Rotate, keys:Retire           brn:bulkhead:control::key/<kid>
//
// Condition keys, matched without regard to case:
//
//	data:LeadingKeys               multivalued: the tenant ids whose rows a data request touches (Request.Context)
//	bulkhead:TenantID              the principal's tenant (Principal.TenantID)
//	bulkhead:Tier                  the principal's tenant's tier (Principal.Tier)
//	bulkhead:Role                  the principal's role in its tenant (Principal.Role)
//	bulkhead:PrincipalTag/<key>    a principal tag (Principal.Tags); aws:PrincipalTag/<key> is the same key
//	aws:SourceIp                   the caller's address (Request.SourceIP)
//	aws:CurrentTime                the request time (Request.Time), for Date operators
//	aws:EpochTime                  the request time in seconds, for Date and Numeric operators
//
// bulkhead:Tier is the tenant's plan ([TierBasic], [TierPremium]), not where
// its data lives (tenant.Tier, pool or silo). Other keys are read from
// Request.Context by name. An unknown key in the
// bulkhead or data namespace is an error. The principal's keys are read
// from the Principal only, never from Request.Context.
//
// # Conditions
//
// A condition block maps operators to keys to values. The operators are
// StringEquals, StringNotEquals, StringEqualsIgnoreCase,
// StringNotEqualsIgnoreCase, StringLike, StringNotLike; NumericEquals,
// NumericNotEquals, NumericLessThan, NumericLessThanEquals,
// NumericGreaterThan, NumericGreaterThanEquals; DateEquals, DateNotEquals,
// DateLessThan, DateLessThanEquals, DateGreaterThan, DateGreaterThanEquals;
// Bool; IpAddress, NotIpAddress; and Null. Every one but Null takes the
// suffix IfExists and the prefixes ForAllValues: and ForAnyValue:. Operator
// names are matched without regard to case (as AWS does); values are
// compared with regard to case except by the IgnoreCase operators.
//
// Numeric values are decimal numbers. Dates are ISO 8601 (2025-01-31,
// 2025-01-31T12:00:00Z, with or without seconds, fraction or zone; no zone
// means UTC) or epoch seconds. IP values are CIDR blocks or single
// addresses, IPv4 or IPv6; an IPv4-mapped IPv6 address is taken as IPv4.
// Bool and Null take true or false.
//
// Evaluation follows AWS:
//
//   - All operators of a block must hold (AND), and all keys of an
//     operator (AND).
//   - A key's values are alternatives: a positive operator holds when the
//     request value matches any of them (OR); a negated operator
//     (StringNotEquals, StringNotLike, NumericNotEquals, DateNotEquals,
//     NotIpAddress and their IgnoreCase forms) holds when it matches none
//     of them (NOR).
//   - A key absent from the request makes a positive operator false and a
//     negated one true; IfExists makes any operator true on an absent key;
//     Null "true" holds exactly when the key is absent and Null "false"
//     when it is present.
//   - ForAllValues holds when every request value passes (so an absent key
//     or an empty set passes: pair it with Null "false" when the key must
//     be there); ForAnyValue when at least one does (never on an absent key
//     or an empty set).
//   - A plain operator needs exactly one request value; on a set it is
//     false. So a plain operator on a multivalued key (data:LeadingKeys) is
//     an error, as is a set qualifier on one of the single-valued keys
//     above.
//   - A request key present with no values is an empty set: present for
//     Null and IfExists, empty for ForAllValues and ForAnyValue.
//   - A comparison that cannot be made, because the request value is not a
//     number, date or address, or a policy variable has no value, fails
//     for positive and negated operators alike.
//
// # Policy variables
//
// Under Version 2012-10-17, Resource values and the values of string
// operators may hold policy variables: "${bulkhead:TenantID}",
// "${bulkhead:PrincipalTag/team}", "${aws:PrincipalTag/team}" (the same
// tag) and any other single-valued key. "${key, 'default'}" gives a value
// for a key the request lacks, and "${*}", "${?}" and "${$}" are a literal
// *, ? and $. A substituted value is always literal text: a tag value of
// "*" matches only "*". A variable with no value (and no default) makes the
// Resource entry that holds it match nothing, keeps a NotResource statement
// from applying, and fails the condition comparisons it takes part in.
//
// # Evaluation
//
// [Evaluate] follows AWS's logic for identity policies: a matching Deny
// statement in any document wins (ExplicitDeny); otherwise a matching Allow
// statement allows (Allow); otherwise the request is denied (ImplicitDeny).
// The [Decision] names the deciding statement by Sid, or by place such as
// "doc[0].Statement[2]". [EvaluateWithBoundary] adds a permissions boundary:
// the request is allowed only when both the policies and the boundary allow
// it, and a Deny in either wins. Invalid input fails closed with
// ExplicitDeny.
//
// # Templates
//
// [Template] returns the policy for a tier. Templates keep their policy
// variables: one document serves every tenant of a tier, and the tenant
// comes from the Principal at each evaluation (the ABAC way), so there is
// no per-tenant copy to drift or to be rendered for the wrong tenant.
//
//   - basic: data:Select, data:Insert and data:Update on the tenant's own
//     tables, with every leading key the tenant's own; tenants:Get on the
//     tenant itself.
//   - premium: the same plus data:Delete; and a principal whose role is
//     admin may create and list users, manage policies and read the audit
//     log of its own tenant.
//
// Both carry explicit Deny statements for any data action outside the
// principal's tenant (by resource or by leading key) and any control action
// on another tenant's or the platform's objects, so an Allow that a tenant
// adds later cannot reach across tenants.
//
// # AWS
//
// [ExportDynamoDB] writes the matching AWS IAM policy for a DynamoDB table
// in the pool model: items only where dynamodb:LeadingKeys is the caller's
// TenantID session tag.
package policy
