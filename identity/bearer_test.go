package identity_test

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/bulkhead-dev/bulkhead/identity"
)

func TestExtractBearer(t *testing.T) {
	t.Parallel()
	const tok = "eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1In0.c2ln"
	for _, tt := range []struct {
		name    string
		h       http.Header
		want    string
		wantErr error
	}{
		{name: "OK", h: http.Header{"Authorization": {"Bearer " + tok}}, want: tok},
		{name: "LowercaseScheme", h: http.Header{"Authorization": {"bearer " + tok}}, want: tok},
		{name: "UppercaseScheme", h: http.Header{"Authorization": {"BEARER " + tok}}, want: tok},
		{name: "ExtraSpaces", h: http.Header{"Authorization": {"Bearer   " + tok}}, want: tok},
		{name: "B64TokenPadding", h: http.Header{"Authorization": {"Bearer abc+/~=="}}, want: "abc+/~=="},
		{name: "MaxLength", h: http.Header{"Authorization": {"Bearer " + strings.Repeat("a", identity.MaxTokenLen)}}, want: strings.Repeat("a", identity.MaxTokenLen)},
		{name: "Missing", h: http.Header{}, wantErr: identity.ErrMissingToken},
		{name: "Nil", h: nil, wantErr: identity.ErrMissingToken},
		{name: "Two", h: http.Header{"Authorization": {"Bearer " + tok, "Bearer " + tok}}, wantErr: identity.ErrInvalidToken},
		{name: "TwoSpellings", h: http.Header{"Authorization": {"Bearer " + tok}, "authorization": {"Bearer x"}}, wantErr: identity.ErrInvalidToken},
		{name: "Basic", h: http.Header{"Authorization": {"Basic dXNlcjpwdw=="}}, wantErr: identity.ErrInvalidToken},
		{name: "SchemeOnly", h: http.Header{"Authorization": {"Bearer"}}, wantErr: identity.ErrInvalidToken},
		{name: "EmptyToken", h: http.Header{"Authorization": {"Bearer "}}, wantErr: identity.ErrInvalidToken},
		{name: "Empty", h: http.Header{"Authorization": {""}}, wantErr: identity.ErrInvalidToken},
		{name: "BearerPrefixOnly", h: http.Header{"Authorization": {"Bearerx " + tok}}, wantErr: identity.ErrInvalidToken},
		{name: "TwoTokens", h: http.Header{"Authorization": {"Bearer " + tok + " " + tok}}, wantErr: identity.ErrInvalidToken},
		{name: "CommaList", h: http.Header{"Authorization": {"Bearer " + tok + ", Bearer " + tok}}, wantErr: identity.ErrInvalidToken},
		{name: "TrailingSpace", h: http.Header{"Authorization": {"Bearer " + tok + " "}}, wantErr: identity.ErrInvalidToken},
		{name: "Tab", h: http.Header{"Authorization": {"Bearer\t" + tok}}, wantErr: identity.ErrInvalidToken},
		{name: "Quote", h: http.Header{"Authorization": {`Bearer "` + tok + `"`}}, wantErr: identity.ErrInvalidToken},
		{name: "NonASCII", h: http.Header{"Authorization": {"Bearer tök"}}, wantErr: identity.ErrInvalidToken},
		{name: "OnlyPadding", h: http.Header{"Authorization": {"Bearer =="}}, wantErr: identity.ErrInvalidToken},
		{name: "PaddingInMiddle", h: http.Header{"Authorization": {"Bearer ab=cd"}}, wantErr: identity.ErrInvalidToken},
		{name: "TooLong", h: http.Header{"Authorization": {"Bearer " + strings.Repeat("a", identity.MaxTokenLen+1)}}, wantErr: identity.ErrInvalidToken},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := identity.ExtractBearer(tt.h)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) || got != "" {
					t.Errorf("ExtractBearer() = %.20q, %v, want %v", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("ExtractBearer() = %.20q, %v, want %.20q", got, err, tt.want)
			}
		})
	}
}
