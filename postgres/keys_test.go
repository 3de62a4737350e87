package postgres_test

import (
	"testing"
	"time"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/internal/pgtest"
	"github.com/bulkhead-dev/bulkhead/postgres"
)

// TestRetiredSignerIsNotReplacedByTheOldOne: after a rotation, the key it
// replaced only verifies for its grace period; retiring the new signer
// leaves no signer, rather than handing signing back to the old key (which
// would then sign tokens it stops verifying before they expire, and a key
// rotated out because it leaked would sign again).
func TestRetiredSignerIsNotReplacedByTheOldOne(t *testing.T) {
	t.Parallel()
	db, _ := pgtest.Open(t)
	ctx := t.Context()
	old, err := db.SigningKey(ctx, postgres.KeyContext)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := db.RotateKey(ctx, postgres.KeyContext, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if k, err := db.SigningKey(ctx, postgres.KeyContext); err != nil || k.ID != kid {
		t.Fatalf("after the rotation the signer is %v (%v), want %s", k, err, kid)
	}
	if err := db.RetireKey(ctx, kid); err != nil {
		t.Fatal(err)
	}
	k, err := db.SigningKey(ctx, postgres.KeyContext)
	if fault.CodeOf(err) != "no_signing_key" {
		t.Fatalf("after retiring the new signer: %v (%v), want no_signing_key (the old key %s must not sign again)", k, err, old.ID)
	}
	ks, err := db.Keys(ctx, postgres.KeyContext)
	if err != nil {
		t.Fatal(err)
	}
	verifies := false
	for _, k := range ks {
		verifies = verifies || k.ID == old.ID
	}
	if !verifies {
		t.Fatalf("the old key %s stopped verifying during its grace period", old.ID)
	}
}
