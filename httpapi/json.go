package httpapi

import "encoding/json"

// rawJSON embeds already-encoded JSON in a response.
type rawJSON []byte

func (r rawJSON) MarshalJSON() ([]byte, error) {
	if len(r) == 0 {
		return []byte("null"), nil
	}
	return r, nil
}

func jsonMarshal(v any) ([]byte, error) { return json.Marshal(v) }
