package postgres

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/fault"
)

// KeyPurpose says what a key is for. One key never serves two purposes.
type KeyPurpose string

// The key purposes.
const (
	KeyContext  KeyPurpose = "context"   // HMAC key of signed tenant contexts
	KeyJWT      KeyPurpose = "jwt"       // Ed25519 seed of the built-in user-token issuer
	KeyAdminJWT KeyPurpose = "admin-jwt" // Ed25519 seed of platform-admin tokens
	KeyRecord   KeyPurpose = "record"    // HMAC key of signed records (offboarding)
)

// Valid reports whether p is a known purpose.
func (p KeyPurpose) Valid() bool {
	switch p {
	case KeyContext, KeyJWT, KeyAdminJWT, KeyRecord:
		return true
	}
	return false
}

// Key is a key as stored. Secret is key material: never log it.
type Key struct {
	ID           string
	Purpose      KeyPurpose
	Secret       []byte
	CreatedAt    time.Time
	SigningSince *time.Time // nil: verify-only (published, not yet signing)
	NotAfter     *time.Time // nil: no end
}

// Signing reports whether k is the kind of key that may sign at t.
func (k Key) Signing(t time.Time) bool {
	return k.SigningSince != nil && !k.SigningSince.After(t) && (k.NotAfter == nil || t.Before(*k.NotAfter))
}

// Verifying reports whether k still verifies at t.
func (k Key) Verifying(t time.Time) bool { return k.NotAfter == nil || t.Before(*k.NotAfter) }

// String keeps the secret out of logs.
func (k Key) String() string { return fmt.Sprintf("Key{%s %s}", k.Purpose, k.ID) }

func insertKey(ctx context.Context, conn interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, purpose KeyPurpose) (string, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", err
	}
	idb := make([]byte, 9)
	if _, err := rand.Read(idb); err != nil {
		return "", err
	}
	kid := base64.RawURLEncoding.EncodeToString(idb)
	var got string
	err := conn.QueryRow(ctx, `INSERT INTO bulkhead_control.keys (kid, purpose, secret, signing_since)
		VALUES ($1, $2, $3, now()) RETURNING kid`, kid, string(purpose), secret).Scan(&got)
	return got, err
}

// FindKeys returns the keys of purpose that still verify, the newest
// signer first. Only the control plane (the admin pool) can read keys.
func (db *DB) FindKeys(ctx context.Context, purpose KeyPurpose) (keys []Key, err error) {
	defer fault.Wrap(&err, "postgres.FindKeys(%s)", purpose)
	rows, err := db.admin.Query(ctx, `SELECT kid, purpose, secret, created_at, signing_since, not_after
		FROM bulkhead_control.keys
		WHERE purpose = $1 AND (not_after IS NULL OR not_after > now())
		ORDER BY signing_since DESC NULLS LAST, created_at DESC`, string(purpose))
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Key, error) {
		var k Key
		var p string
		err := r.Scan(&k.ID, &p, &k.Secret, &k.CreatedAt, &k.SigningSince, &k.NotAfter)
		k.Purpose = KeyPurpose(p)
		return k, err
	})
}

// RotateKey makes a new signing key for purpose. Older keys of the purpose
// keep verifying until grace has passed (their not_after is set to now +
// grace unless it is already sooner), so contexts and tokens already issued
// stay valid for their lifetime. It returns the new key id.
func (db *DB) RotateKey(ctx context.Context, purpose KeyPurpose, grace time.Duration) (kid string, err error) {
	defer fault.Wrap(&err, "postgres.RotateKey(%s)", purpose)
	if !purpose.Valid() {
		return "", fault.Errorf(fault.Invalid, "invalid_key_purpose", "Unknown key purpose %q.", purpose)
	}
	err = pgx.BeginFunc(ctx, db.admin, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL ROLE bulkhead_owner`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE bulkhead_control.keys
			SET not_after = now() + make_interval(secs => $2)
			WHERE purpose = $1 AND (not_after IS NULL OR not_after > now() + make_interval(secs => $2))`,
			string(purpose), grace.Seconds()); err != nil {
			return err
		}
		kid, err = insertKey(ctx, tx, purpose)
		return err
	})
	if err != nil {
		return "", err
	}
	db.keys.invalidate()
	return kid, nil
}

// RetireKey stops a key from verifying now: the emergency brake for a key
// that leaked. Contexts and tokens under it stop working at once.
func (db *DB) RetireKey(ctx context.Context, kid string) (err error) {
	defer fault.Wrap(&err, "postgres.RetireKey(%s)", kid)
	tag, err := db.admin.Exec(ctx, `UPDATE bulkhead_control.keys SET not_after = now() WHERE kid = $1 AND (not_after IS NULL OR not_after > now())`, kid)
	if err != nil {
		return err
	}
	if tag.RowsAffected() == 0 {
		return fault.E(fault.NotFound, "key_not_found", "No such active key.")
	}
	db.keys.invalidate()
	return nil
}
