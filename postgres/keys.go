package postgres

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/policy"
)

// KeyPurpose says what a key is for. One key never serves two purposes.
type KeyPurpose string

// The key purposes.
const (
	KeyContext  KeyPurpose = "context"   // HMAC key of signed tenant contexts
	KeyJWT      KeyPurpose = "jwt"       // Ed25519 seed of the built-in user-token issuer
	KeyAdminJWT KeyPurpose = "admin-jwt" // Ed25519 seed of platform-admin tokens
	KeyRecord   KeyPurpose = "record"    // HMAC key of signed records (offboarding)
	KeyAudit    KeyPurpose = "audit"     // HMAC key of audit checkpoints
)

// Valid reports whether p is a known purpose.
func (p KeyPurpose) Valid() bool {
	switch p {
	case KeyContext, KeyJWT, KeyAdminJWT, KeyRecord, KeyAudit:
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

// Signing reports whether k is the kind of key that may sign at t: one
// that has started signing and has no end set. A key with an end (one a
// rotation replaced, now only verifying for its grace period, or one
// retired) never signs again, so retiring the current signer leaves no
// signer rather than handing signing back to the key it replaced.
func (k Key) Signing(t time.Time) bool {
	return k.SigningSince != nil && !k.SigningSince.After(t) && k.NotAfter == nil
}

// Verifying reports whether k still verifies at t.
func (k Key) Verifying(t time.Time) bool { return k.NotAfter == nil || t.Before(*k.NotAfter) }

// String keeps the secret out of logs.
func (k Key) String() string { return fmt.Sprintf("Key{%s %s}", k.Purpose, k.ID) }

type rowQuerier interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}

func insertKey(ctx context.Context, conn rowQuerier, purpose KeyPurpose) (string, error) {
	return insertKeyAt(ctx, conn, purpose, true)
}

// insertKeyAt makes a key; signing says whether it signs from now or is
// published verify-only.
func insertKeyAt(ctx context.Context, conn rowQuerier, purpose KeyPurpose, signing bool) (string, error) {
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return "", err
	}
	// A key id never starts with "-" or "_", so that it never reads as a
	// flag on a command line (bulkhead keys retire KID).
	var kid string
	for kid == "" || kid[0] == '-' || kid[0] == '_' {
		idb := make([]byte, 9)
		if _, err := rand.Read(idb); err != nil {
			return "", err
		}
		kid = base64.RawURLEncoding.EncodeToString(idb)
	}
	var got string
	err := conn.QueryRow(ctx, `INSERT INTO bulkhead_control.keys (kid, purpose, secret, signing_since)
		VALUES ($1, $2, $3, CASE WHEN $4 THEN now() END) RETURNING kid`, kid, string(purpose), secret, signing).Scan(&got)
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

// PublishKey adds a verify-only key for purpose: the first phase of a
// rotation, for verifiers that cache keys (JWKS). It does not sign until
// RotateKey switches to it.
func (db *DB) PublishKey(ctx context.Context, purpose KeyPurpose) (kid string, err error) {
	defer fault.Wrap(&err, "postgres.PublishKey(%s)", purpose)
	if !purpose.Valid() {
		return "", fault.Errorf(fault.Invalid, "invalid_key_purpose", "Unknown key purpose %q.", purpose)
	}
	err = db.ownerTx(ctx, func(tx pgx.Tx) error {
		if kid, err = insertKeyAt(ctx, tx, purpose, false); err != nil {
			return err
		}
		return db.changeEvent(ctx, tx, "keys:Publish", controlResource("", policy.KindKey, kid), "", "", map[string]string{"purpose": string(purpose)})
	})
	db.keys.invalidate()
	return kid, err
}

// RotateKey switches the signer of purpose: to the newest published,
// verify-only key if there is one, else to a new key. Older keys of the
// purpose keep verifying until grace has passed (their not_after becomes
// now + grace unless it is already sooner), so what they signed stays
// valid for its lifetime; a grace of zero or less retires them now (after
// a restore into another environment, or a leak). It returns the signer.
func (db *DB) RotateKey(ctx context.Context, purpose KeyPurpose, grace time.Duration) (kid string, err error) {
	defer fault.Wrap(&err, "postgres.RotateKey(%s)", purpose)
	if !purpose.Valid() {
		return "", fault.Errorf(fault.Invalid, "invalid_key_purpose", "Unknown key purpose %q.", purpose)
	}
	if grace < 0 {
		grace = 0
	}
	err = db.ownerTx(ctx, func(tx pgx.Tx) error {
		err := tx.QueryRow(ctx, `SELECT kid FROM bulkhead_control.keys
			WHERE purpose = $1 AND signing_since IS NULL AND (not_after IS NULL OR not_after > now())
			ORDER BY created_at DESC LIMIT 1 FOR UPDATE`, string(purpose)).Scan(&kid)
		if err != nil && !errors.Is(err, pgx.ErrNoRows) {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE bulkhead_control.keys
			SET not_after = now() + make_interval(secs => $2)
			WHERE purpose = $1 AND kid IS DISTINCT FROM $3
			  AND (not_after IS NULL OR not_after > now() + make_interval(secs => $2))`,
			string(purpose), grace.Seconds(), kid); err != nil {
			return err
		}
		if kid != "" {
			if _, err := tx.Exec(ctx, `UPDATE bulkhead_control.keys SET signing_since = now() WHERE kid = $1`, kid); err != nil {
				return err
			}
		} else if kid, err = insertKeyAt(ctx, tx, purpose, true); err != nil {
			return err
		}
		return db.changeEvent(ctx, tx, "keys:Rotate", controlResource("", policy.KindKey, kid), "", "",
			map[string]string{"purpose": string(purpose), "grace": grace.String()})
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
	err = db.ownerTx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE bulkhead_control.keys SET not_after = now() WHERE kid = $1 AND (not_after IS NULL OR not_after > now())`, kid)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fault.E(fault.NotFound, "key_not_found", "No such active key.")
		}
		return db.changeEvent(ctx, tx, "keys:Retire", controlResource("", policy.KindKey, kid), "", "", nil)
	})
	if err != nil {
		return err
	}
	db.keys.invalidate()
	return nil
}
