package rest

import (
	"strconv"
	"unicode/utf8"

	"github.com/bulkhead-dev/bulkhead/fault"
)

// The errors Build returns. Each is a sentinel for errors.Is: the errors
// actually returned carry the same Kind and Code and a more specific Message
// that names the offending parameter.
var (
	// ErrUnknownColumn is returned when a name in select, a filter, order,
	// on_conflict, columns or a body key is not a column of the table, or is
	// a system column.
	ErrUnknownColumn = fault.E(fault.Invalid, "unknown_column", "The request names a column that the table does not have.")

	// ErrInvalidSelect is returned for a malformed select parameter or a cast
	// to a type that is not on the list.
	ErrInvalidSelect = fault.E(fault.Invalid, "invalid_select", "The select parameter is malformed.")

	// ErrInvalidFilter is returned for a malformed filter, an unknown
	// operator, or a value that cannot be of the column's type.
	ErrInvalidFilter = fault.E(fault.Invalid, "invalid_filter", "A filter is malformed.")

	// ErrInvalidOrder is returned for a malformed order parameter.
	ErrInvalidOrder = fault.E(fault.Invalid, "invalid_order", "The order parameter is malformed.")

	// ErrInvalidLimit is returned when limit is not a non-negative integer.
	ErrInvalidLimit = fault.E(fault.Invalid, "invalid_limit", "The limit parameter must be a non-negative integer.")

	// ErrInvalidOffset is returned when offset is not a non-negative integer.
	ErrInvalidOffset = fault.E(fault.Invalid, "invalid_offset", "The offset parameter must be a non-negative integer.")

	// ErrInvalidParameter is returned for a reserved parameter given twice
	// or used where it means nothing, such as on_conflict on a PATCH.
	ErrInvalidParameter = fault.E(fault.Invalid, "invalid_parameter", "A query parameter is repeated or misplaced.")

	// ErrInvalidPrefer is returned for a Prefer header that
	// handling=strict makes an error.
	ErrInvalidPrefer = fault.E(fault.Invalid, "invalid_prefer", "The Prefer header has a preference that cannot be honoured.")

	// ErrInvalidBody is returned for a body that is not a JSON object or
	// array of objects, or that repeats a key.
	ErrInvalidBody = fault.E(fault.Invalid, "invalid_body", "The body must be a JSON object or an array of objects.")

	// ErrTooManyRows is returned for a body array longer than
	// [Builder.MaxRows].
	ErrTooManyRows = fault.E(fault.TooLarge, "too_many_rows", "The body has too many rows.")

	// ErrTenantMismatch is returned when a body sets the tenant column to
	// anything but the caller's tenant: a write aimed outside the caller's
	// tenant.
	ErrTenantMismatch = fault.E(fault.Denied, "tenant_mismatch", "The body names a tenant other than the caller's.")

	// ErrFilterRequired is returned for a PATCH or DELETE without a filter.
	ErrFilterRequired = fault.E(fault.Invalid, "filter_required", "An update or delete needs at least one filter.")

	// ErrUnsupported is returned for parts of the PostgREST dialect that
	// bulkhead does not implement, such as embedded resources.
	ErrUnsupported = fault.E(fault.Invalid, "unsupported", "The request uses a feature that is not supported.")

	// ErrInvalidTable is returned when the table description itself is
	// unusable: a bug in the caller, not in the request.
	ErrInvalidTable = fault.E(fault.Internal, "invalid_table", "The table description is invalid.")
)

// errorf returns an error with sentinel's kind and code and a message made
// from format.
func errorf(sentinel *fault.Error, format string, args ...any) *fault.Error {
	return fault.Errorf(sentinel.Kind, sentinel.Code, format, args...)
}

// maxEcho is how many bytes of caller input a message repeats.
const maxEcho = 64

// echo quotes caller input for a message, cut so that the quoted form has
// at most maxEcho bytes inside its quotes: a huge parameter, or one made of
// bytes that quote long, is never sent back whole.
func echo(s string) string {
	cut := min(len(s), maxEcho)
	for {
		for cut > 0 && cut < len(s) && !utf8.RuneStart(s[cut]) {
			cut--
		}
		q := strconv.Quote(s[:cut])
		switch {
		case len(q) > maxEcho+2:
			cut--
		case cut < len(s):
			return q + "…"
		default:
			return q
		}
	}
}
