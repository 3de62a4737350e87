package policy_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/policy"
)

// st is a statement with Sid "S" allowing data:Select on * under cond.
func st(cond string) string {
	return doc(`{"Sid":"S","Effect":"Allow","Action":"data:Select","Resource":"*","Condition":` + cond + `}`)
}

func TestParseErrors(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
		want string // the error's Message
	}{
		{"NotJSON", `{"Version":`, `malformed JSON`},
		{"NotObject", `[]`, `the document must be a JSON object`},
		{"DuplicateKey", `{"Version":"2012-10-17","Version":"2012-10-17","Statement":[]}`, `JSON: duplicate key "Version"`},
		{"CaseCollidingKeys", doc(`{"Effect":"Allow","effect":"Deny","Action":"*","Resource":"*"}`), `JSON: keys "Effect" and "effect" differ only in case`},
		{"TrailingData", doc(allowSelect) + `{}`, `JSON: trailing data after the JSON value`},
		{"UnknownTopField", `{"Version":"2012-10-17","Statement":` + allowSelect + `,"Foo":1}`, `unknown field "Foo"`},
		{"TopFieldCase", `{"version":"2012-10-17","Statement":[]}`, `unknown field "version" (names are case-sensitive: use "Version")`},
		{"VersionMissing", `{"Statement":` + allowSelect + `}`, `Version is required (use "2012-10-17")`},
		{"VersionWrong", `{"Version":"2012-10-18","Statement":` + allowSelect + `}`, `Version "2012-10-18" is not "2012-10-17" or "2008-10-17"`},
		{"VersionNotString", `{"Version":2012,"Statement":` + allowSelect + `}`, `Version must be a string`},
		{"StatementMissing", `{"Version":"2012-10-17"}`, `Statement is required`},
		{"StatementEmpty", `{"Version":"2012-10-17","Statement":[]}`, `Statement is empty`},
		{"StatementNotObject", `{"Version":"2012-10-17","Statement":["x"]}`, `Statement[0]: a statement must be a JSON object`},
		{"TooManyStatements", doc(strings.Repeat(`{"Effect":"Allow","Action":"*","Resource":"*"},`, 100) + allowSelect), `101 statements, more than the limit of 100`},
		{"TooLarge", doc(`{"Sid":"` + strings.Repeat("a", policy.MaxSize) + `","Effect":"Allow","Action":"*","Resource":"*"}`), `the document is 10334 bytes, more than the limit of 10240`},
		{"UnknownStatementField", doc(`{"Sid":"AllowReads","Effect":"Allow","Actions":"*","Resource":"*"}`), `Statement[0] ("AllowReads"): unknown field "Actions"`},
		{"StatementFieldCase", doc(allowSelect, `{"Effect":"Allow","action":"*","Resource":"*"}`), `Statement[1]: unknown field "action" (names are case-sensitive: use "Action")`},
		{"Principal", doc(`{"Effect":"Allow","Principal":"*","Action":"*","Resource":"*"}`), `Statement[0]: Principal is not supported: bulkhead policies are identity policies, which apply to the principal they are attached to`},
		{"NotPrincipal", doc(`{"Effect":"Deny","NotPrincipal":{"AWS":"x"},"Action":"*","Resource":"*"}`), `Statement[0]: NotPrincipal is not supported: bulkhead policies are identity policies, which apply to the principal they are attached to`},
		{"EffectMissing", doc(`{"Action":"*","Resource":"*"}`), `Statement[0]: Effect is required`},
		{"EffectLowercase", doc(`{"Sid":"X","Effect":"allow","Action":"*","Resource":"*"}`), `Statement[0] ("X"): Effect must be "Allow" or "Deny", not "allow"`},
		{"EffectNotString", doc(`{"Effect":true,"Action":"*","Resource":"*"}`), `Statement[0]: Effect must be a string`},
		{"BothActions", doc(`{"Effect":"Allow","Action":"*","NotAction":"data:Delete","Resource":"*"}`), `Statement[0]: both Action and NotAction are set`},
		{"NoAction", doc(`{"Effect":"Allow","Resource":"*"}`), `Statement[0]: one of Action and NotAction is required`},
		{"EmptyActionList", doc(`{"Effect":"Allow","Action":[],"Resource":"*"}`), `Statement[0]: Action is empty`},
		{"ActionNotString", doc(`{"Effect":"Allow","Action":[1],"Resource":"*"}`), `Statement[0]: Action must be a string or an array of strings`},
		{"ActionEmptyString", doc(`{"Effect":"Allow","Action":"","Resource":"*"}`), `Statement[0]: Action: "" is not an action (want service:name or *)`},
		{"ActionNoService", doc(`{"Effect":"Allow","Action":"Select","Resource":"*"}`), `Statement[0]: Action: "Select" is not an action (want service:name or *)`},
		{"ActionBadChar", doc(`{"Effect":"Allow","NotAction":"data:Sel ect","Resource":"*"}`), `Statement[0]: NotAction: "data:Sel ect" is not an action (want service:name or *)`},
		{"ActionTypo", doc(`{"Sid":"Reads","Effect":"Allow","Action":["data:Select","data:Selct"],"Resource":"*"}`), `Statement[0] ("Reads"): Action: "data:Selct" matches no bulkhead action`},
		{"BothResources", doc(`{"Effect":"Allow","Action":"*","Resource":"*","NotResource":"*"}`), `Statement[0]: both Resource and NotResource are set`},
		{"NoResource", doc(`{"Effect":"Allow","Action":"*"}`), `Statement[0]: one of Resource and NotResource is required`},
		{"EmptyResourceList", doc(`{"Effect":"Allow","Action":"*","NotResource":[]}`), `Statement[0]: NotResource is empty`},
		{"EmptyResource", doc(`{"Effect":"Allow","Action":"*","Resource":["*",""]}`), `Statement[0]: Resource: an entry is empty`},
		{"ResourceNotName", doc(`{"Effect":"Allow","Action":"*","Resource":"table/orders"}`), `Statement[0]: Resource: "table/orders" is not *, a brn (brn:bulkhead:<service>:<tenant>:<kind>/<name>) or an arn`},
		{"ResourceTooShort", doc(`{"Effect":"Allow","Action":"*","Resource":"brn:bulkhead:data:acme"}`), `Statement[0]: Resource: "brn:bulkhead:data:acme" has 4 of the 5 colon-separated segments of its scheme; a shorter pattern must end in *`},
		{"ResourceUnterminatedVariable", doc(`{"Effect":"Allow","Action":"*","Resource":"brn:bulkhead:data:${bulkhead:TenantID:table/*"}`), `Statement[0]: Resource: unterminated policy variable at "${bulkhead:TenantID:table/*"`},
		{"ResourceUnknownVariable", doc(`{"Effect":"Allow","Action":"*","Resource":"brn:bulkhead:data:${bulkhead:Tenant}:table/*"}`), `Statement[0]: Resource: policy variable "${bulkhead:Tenant}": unknown condition key "bulkhead:Tenant"`},
		{"ResourceBadVariable", doc(`{"Effect":"Allow","Action":"*","Resource":"brn:bulkhead:data:${tenant}:table/*"}`), `Statement[0]: Resource: policy variable "${tenant}": "tenant" is not a condition key (want service:name)`},
		{"ResourceMultivaluedVariable", doc(`{"Effect":"Allow","Action":"*","Resource":"brn:bulkhead:data:${data:LeadingKeys}:table/*"}`), `Statement[0]: Resource: policy variable "${data:LeadingKeys}": "data:LeadingKeys" is multivalued and cannot be a variable`},
		{"ResourceBadDefault", doc(`{"Effect":"Allow","Action":"*","Resource":"brn:bulkhead:data:${aws:PrincipalTag/t, none}:table/*"}`), `Statement[0]: Resource: policy variable "${aws:PrincipalTag/t, none}": a default value must be in single quotes, as in ${aws:PrincipalTag/t, 'default'}`},
		{"SidBadChars", doc(`{"Sid":"allow-reads","Effect":"Allow","Action":"*","Resource":"*"}`), `Statement[0] ("allow-reads"): Sid must be 1 to 128 ASCII letters and digits`},
		{"SidDuplicate", doc(`{"Sid":"A","Effect":"Allow","Action":"*","Resource":"*"}`, `{"Sid":"A","Effect":"Deny","Action":"*","Resource":"*"}`), `Statement[1] ("A"): Sid is also used by Statement[0]`},
		{"ConditionNotObject", st(`[]`), `Statement[0] ("S"): Condition: must be an object of operators`},
		{"UnknownOperator", doc(allowSelect, allowAll, `{"Sid":"AllowReads","Effect":"Allow","Action":"data:Select","Resource":"*","Condition":{"StringEqualz":{"bulkhead:Tier":"basic"}}}`), `Statement[2] ("AllowReads"): Condition: unknown operator "StringEqualz"`},
		{"UnsupportedOperator", st(`{"ArnLike":{"ext:Arn":"arn:*"}}`), `Statement[0] ("S"): Condition: unsupported operator "ArnLike"`},
		{"NullIfExists", st(`{"NullIfExists":{"ext:A":"true"}}`), `Statement[0] ("S"): Condition: "NullIfExists": Null does not take IfExists`},
		{"NullSetQualifier", st(`{"ForAnyValue:Null":{"ext:A":"true"}}`), `Statement[0] ("S"): Condition: "ForAnyValue:Null": Null does not take ForAllValues: or ForAnyValue:`},
		{"NullNotBoolean", st(`{"Null":{"ext:A":"maybe"}}`), `Statement[0] ("S"): Condition: Null: "ext:A": "maybe" is not true or false`},
		{"OperatorNotObject", st(`{"StringEquals":"basic"}`), `Statement[0] ("S"): Condition: "StringEquals" must be an object of condition keys`},
		{"OperatorNoKeys", st(`{"StringEquals":{}}`), `Statement[0] ("S"): Condition: "StringEquals" has no condition keys`},
		{"KeyNoValues", st(`{"StringEquals":{"bulkhead:Tier":[]}}`), `Statement[0] ("S"): Condition: "StringEquals": "bulkhead:Tier" has no values`},
		{"KeyNullValue", st(`{"StringEquals":{"bulkhead:Tier":null}}`), `Statement[0] ("S"): Condition: "StringEquals": "bulkhead:Tier": values must be strings, numbers or booleans, or an array of them`},
		{"KeyObjectValue", st(`{"StringEquals":{"bulkhead:Tier":[{"a":1}]}}`), `Statement[0] ("S"): Condition: "StringEquals": "bulkhead:Tier": values must be strings, numbers or booleans, or an array of them`},
		{"UnknownKey", st(`{"StringEquals":{"bulkhead:Plan":"basic"}}`), `Statement[0] ("S"): Condition: StringEquals: unknown condition key "bulkhead:Plan"`},
		{"UnknownDataKey", st(`{"ForAllValues:StringEquals":{"data:LeadingKey":"a"}}`), `Statement[0] ("S"): Condition: ForAllValues:StringEquals: unknown condition key "data:LeadingKey"`},
		{"KeyWithoutNamespace", st(`{"StringEquals":{"Tier":"basic"}}`), `Statement[0] ("S"): Condition: StringEquals: "Tier" is not a condition key (want service:name)`},
		{"EmptyTagKey", st(`{"StringEquals":{"aws:PrincipalTag/":"x"}}`), `Statement[0] ("S"): Condition: StringEquals: "aws:PrincipalTag/" names no tag`},
		{"MultivaluedWithoutQualifier", st(`{"StringEquals":{"data:LeadingKeys":"${bulkhead:TenantID}"}}`), `Statement[0] ("S"): Condition: StringEquals: "data:LeadingKeys" is multivalued: use ForAllValues:StringEquals or ForAnyValue:StringEquals`},
		{"SingleValuedWithQualifier", st(`{"ForAllValues:StringEquals":{"bulkhead:TenantID":"acme"}}`), `Statement[0] ("S"): Condition: ForAllValues:StringEquals: "bulkhead:TenantID" is single-valued: drop the set qualifier`},
		{"NotANumber", st(`{"NumericLessThan":{"ext:Rows":"ten"}}`), `Statement[0] ("S"): Condition: NumericLessThan: "ext:Rows": "ten" is not a number`},
		{"NumericNaN", st(`{"NumericEquals":{"ext:Rows":"NaN"}}`), `Statement[0] ("S"): Condition: NumericEquals: "ext:Rows": "NaN" is not a number`},
		{"NumericVariable", st(`{"NumericEquals":{"ext:Rows":"${aws:PrincipalTag/rows}"}}`), `Statement[0] ("S"): Condition: NumericEquals: "ext:Rows": "${aws:PrincipalTag/rows}" is not a number`},
		{"BadDate", st(`{"DateLessThan":{"aws:CurrentTime":"next tuesday"}}`), `Statement[0] ("S"): Condition: DateLessThan: "aws:CurrentTime": "next tuesday" is not an ISO 8601 date and time or epoch seconds`},
		{"BadDateMonth", st(`{"DateLessThan":{"aws:CurrentTime":"2025-13-01"}}`), `Statement[0] ("S"): Condition: DateLessThan: "aws:CurrentTime": "2025-13-01" is not an ISO 8601 date and time or epoch seconds`},
		{"BadBool", st(`{"Bool":{"ext:MFA":"yes"}}`), `Statement[0] ("S"): Condition: Bool: "ext:MFA": "yes" is not true or false`},
		{"BadCIDR", st(`{"IpAddress":{"aws:SourceIp":"10.0.0.0/33"}}`), `Statement[0] ("S"): Condition: IpAddress: "aws:SourceIp": "10.0.0.0/33" is not a CIDR block or IP address`},
		{"BadIPv6CIDR", st(`{"NotIpAddress":{"aws:SourceIp":["10.0.0.0/8","2001:db8::/129"]}}`), `Statement[0] ("S"): Condition: NotIpAddress: "aws:SourceIp": "2001:db8::/129" is not a CIDR block or IP address`},
		{"BadStringVariable", st(`{"StringEquals":{"ext:Owner":"${nope"}}`), `Statement[0] ("S"): Condition: StringEquals: "ext:Owner": unterminated policy variable at "${nope"`},
		{"LongNameShortened", doc(`{"Effect":"Allow","Action":"*","Resource":"*","` + strings.Repeat("x", 100) + `":1}`), `Statement[0]: unknown field "` + strings.Repeat("x", 64) + `"…`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := policy.Parse([]byte(tt.in))
			if err == nil {
				t.Fatalf("Parse(%.200s) = %+v, want error %q", tt.in, d, tt.want)
			}
			var fe *fault.Error
			if !errors.As(err, &fe) || fe.Kind != fault.Invalid || fe.Code != "invalid_policy" || !errors.Is(err, policy.ErrInvalid) {
				t.Fatalf("Parse(%.200s) = %#v, want a fault.Invalid invalid_policy error", tt.in, err)
			}
			if fe.Message != tt.want {
				t.Errorf("Parse(%.200s) message\n got %s\nwant %s", tt.in, fe.Message, tt.want)
			}
		})
	}
}

// TestParseAccepts covers forms that look unusual but are valid.
func TestParseAccepts(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   string
	}{
		{"Version2008", doc08(allowSelect)},
		{"WithID", `{"Version":"2012-10-17","Id":"p1","Statement":` + allowSelect + `}`},
		{"EmptyCondition", st(`{}`)},
		{"ForeignAction", doc(`{"Effect":"Allow","Action":"dynamodb:Get*","Resource":"arn:aws:dynamodb:*:*:table/app"}`)},
		{"ForeignKeyAnyQualifier", st(`{"ForAnyValue:StringLike":{"ext:Groups":"dev*"}}`)},
		{"NumberValues", st(`{"NumericLessThan":{"ext:Rows":[10, -1.5, 2e3]}}`)},
		{"BoolValue", st(`{"Bool":{"ext:MFA":false}}`)},
		{"EpochDate", st(`{"DateGreaterThan":{"aws:EpochTime":1700000000}}`)},
		{"IPv6AndSingle", st(`{"IpAddress":{"aws:SourceIp":["2001:db8::/32","203.0.113.9"]}}`)},
		{"VariableEscapes", st(`{"StringLike":{"ext:A":"${*}${?}${$}"}}`)},
		{"VariableDefault", st(`{"StringEquals":{"ext:A":"${aws:PrincipalTag/t, 'none'}"}}`)},
		{"Version2008BadVariable", doc08(`{"Effect":"Allow","Action":"*","Resource":"brn:bulkhead:data:${oops:table/*"}`)},
		{"NullOnMultivalued", st(`{"Null":{"data:LeadingKeys":"false"}}`)},
		{"ShortResource", doc(`{"Effect":"Allow","Action":"*","Resource":"brn:*"}`)},
		{"TagKeyWithSpace", st(`{"StringEquals":{"aws:PrincipalTag/cost center":"${bulkhead:PrincipalTag/cost center}"}}`)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := policy.Parse([]byte(tt.in)); err != nil {
				t.Errorf("Parse(%s) = %v, want nil", tt.in, err)
			}
		})
	}
}

// TestValidateGoDocument covers documents built in Go, which JSON's own
// rules do not protect.
func TestValidateGoDocument(t *testing.T) {
	for _, tt := range []struct {
		name string
		doc  policy.Document
		want string // "" for valid
	}{
		{"OK", policy.Document{Version: policy.Version2012, Statement: []policy.Statement{{Effect: "Allow", Action: []string{"data:Select"}, Resource: []string{"*"}}}}, ""},
		{"EmptyActionSlice", policy.Document{Version: policy.Version2012, Statement: []policy.Statement{{Effect: "Allow", Action: []string{}, Resource: []string{"*"}}}}, `Statement[0]: Action is empty`},
		{"NoStatements", policy.Document{Version: policy.Version2012}, `Statement is empty`},
		{"SameOperatorTwice", policy.Document{Version: policy.Version2012, Statement: []policy.Statement{{Effect: "Allow", Action: []string{"*"}, Resource: []string{"*"},
			Condition: policy.Condition{"StringEquals": {"ext:A": {"1"}}, "stringEquals": {"ext:A": {"2"}}}}}}, `Statement[0]: Condition: operators "StringEquals" and "stringEquals" are the same`},
		{"KeysDifferInCase", policy.Document{Version: policy.Version2012, Statement: []policy.Statement{{Effect: "Allow", Action: []string{"*"}, Resource: []string{"*"},
			Condition: policy.Condition{"StringEquals": {"ext:A": {"1"}, "EXT:a": {"2"}}}}}}, `Statement[0]: Condition: StringEquals: keys "EXT:a" and "ext:A" differ only in case`},
		{"NoValues", policy.Document{Version: policy.Version2012, Statement: []policy.Statement{{Effect: "Allow", Action: []string{"*"}, Resource: []string{"*"},
			Condition: policy.Condition{"StringEquals": {"ext:A": nil}}}}}, `Statement[0]: Condition: StringEquals: "ext:A" has no values`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.doc.Validate()
			got := ""
			if err != nil {
				got = fault.MessageOf(err)
			}
			if got != tt.want {
				t.Errorf("Validate() = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestEvaluateUnvalidated checks that documents that were never validated,
// or are invalid or nil, fail closed.
func TestEvaluateUnvalidated(t *testing.T) {
	good := &policy.Document{Version: policy.Version2012, Statement: []policy.Statement{{Sid: "S", Effect: "Allow", Action: []string{"data:Select"}, Resource: []string{"*"}}}}
	bad := &policy.Document{Version: policy.Version2012, Statement: []policy.Statement{{Effect: "Deny", Action: []string{"data:Selct"}, Resource: []string{"*"}}}}
	for _, tt := range []struct {
		name string
		docs []*policy.Document
		want policy.Decision
	}{
		{"NeverValidated", []*policy.Document{good}, policy.Decision{Effect: policy.Allow, Statement: "S", Reason: "an Allow statement matched and no Deny statement did"}},
		{"Invalid", []*policy.Document{good, bad}, policy.Decision{Effect: policy.ExplicitDeny, Statement: "doc[1]", Reason: `the document is invalid: Statement[0]: Action: "data:Selct" matches no bulkhead action`}},
		{"Nil", []*policy.Document{good, nil}, policy.Decision{Effect: policy.ExplicitDeny, Statement: "doc[1]", Reason: "the document is nil"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got := policy.Evaluate(sel(), acme, tt.docs...)
			if got != tt.want {
				t.Errorf("Evaluate() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestUnmarshalJSONIsStrict(t *testing.T) {
	var d policy.Document
	err := d.UnmarshalJSON([]byte(doc(`{"Effect":"Allow","action":"*","Resource":"*"}`)))
	if !errors.Is(err, policy.ErrInvalid) {
		t.Fatalf("UnmarshalJSON(lowercase field) = %v, want ErrInvalid", err)
	}
	if err := d.UnmarshalJSON([]byte(doc(allowSelect))); err != nil {
		t.Fatalf("UnmarshalJSON(valid) = %v", err)
	}
	if got := policy.Evaluate(sel(), acme, &d); got.Effect != policy.Allow {
		t.Errorf("Evaluate(unmarshalled) = %+v, want Allow", got)
	}
}
