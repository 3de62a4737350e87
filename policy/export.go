package policy

import (
	"bytes"
	"encoding/json"
	"regexp"

	"github.com/bulkhead-dev/bulkhead/fault"
)

var (
	dynamoTableName = regexp.MustCompile(`^[A-Za-z0-9_.-]{3,255}$`)
	dynamoTableARN  = regexp.MustCompile(`^arn:aws[a-z-]*:dynamodb:[a-z0-9-]+:[0-9]{12}:table/[A-Za-z0-9_.-]{3,255}$`)
	dynamoAction    = regexp.MustCompile(`^dynamodb:[A-Za-z]+$`)
)

// ExportDynamoDB returns an AWS IAM policy that gives the same tenant
// isolation on a DynamoDB table as bulkhead gives on PostgreSQL: actions on
// table (a table name, which becomes arn:aws:dynamodb:*:*:table/<name>, or
// a table ARN) only for items whose partition key is the caller's tenant,
// read from the session tag TenantID.
//
// Besides the ForAllValues:StringEquals on dynamodb:LeadingKeys, the policy
// requires the key to be present ("Null": "false"): ForAllValues is true on
// a request with no leading keys at all, so without it a Scan would read
// every tenant's items. Actions are named exactly (no wildcards), so the
// policy grants what its reader sees.
func ExportDynamoDB(table string, actions []string) ([]byte, error) {
	const op = "policy.ExportDynamoDB"
	var res string
	switch {
	case dynamoTableARN.MatchString(table):
		res = table
	case dynamoTableName.MatchString(table):
		res = "arn:aws:dynamodb:*:*:table/" + table
	default:
		return nil, invalid(op, "%s is not a DynamoDB table name or table ARN", quote(table))
	}
	if len(actions) == 0 {
		return nil, invalid(op, "no actions")
	}
	for _, a := range actions {
		if !dynamoAction.MatchString(a) {
			return nil, invalid(op, "%s is not a DynamoDB action such as dynamodb:GetItem (wildcards are not exported)", quote(a))
		}
	}
	type statement struct {
		Sid       string
		Effect    string
		Action    []string
		Resource  string
		Condition Condition
	}
	doc := struct {
		Version   string
		Statement []statement
	}{
		Version: Version2012,
		Statement: []statement{{
			Sid:      "TenantItemsOnly",
			Effect:   "Allow",
			Action:   actions,
			Resource: res,
			Condition: Condition{
				"ForAllValues:StringEquals": {"dynamodb:LeadingKeys": {"${aws:PrincipalTag/TenantID}"}},
				"Null":                      {"dynamodb:LeadingKeys": {"false"}},
			},
		}},
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		return nil, err
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	// What we hand to AWS must be a document we accept ourselves.
	if _, err := Parse(b); err != nil {
		return nil, invalid(op, "the exported policy does not validate: %s", fault.MessageOf(err))
	}
	return b, nil
}
