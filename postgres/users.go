package postgres

import (
	"context"
	"errors"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/bulkhead-dev/bulkhead/fault"
	"github.com/bulkhead-dev/bulkhead/policy"
	"github.com/bulkhead-dev/bulkhead/tenant"
)

// User is a user of one tenant.
type User struct {
	ID           string
	TenantID     tenant.ID
	Email        string
	Role         tenant.Role
	PasswordHash string // never log
}

// MaxEmail is the longest email a user may have, in bytes.
const MaxEmail = 320

// ErrUserExists is returned for a second user with the same email in one tenant.
var ErrUserExists = fault.E(fault.Conflict, "user_exists", "A user with that email already exists in this tenant.")

// CheckEmail returns email without surrounding space, or the error
// CreateUser gives for it, so that a caller can refuse it before hashing a
// password.
func CheckEmail(email string) (string, error) {
	email = strings.TrimSpace(email)
	if len(email) < 3 || len(email) > MaxEmail || !strings.Contains(email, "@") ||
		strings.ContainsRune(email, 0) || !utf8.ValidString(email) {
		return "", fault.E(fault.Invalid, "invalid_email", "The email address is not valid.")
	}
	return email, nil
}

// CreateUser adds a user to an active tenant. hash is the argon2id hash.
func (db *DB) CreateUser(ctx context.Context, tid tenant.ID, email, hash string, role tenant.Role) (u *User, err error) {
	defer fault.Wrap(&err, "postgres.CreateUser(%s)", tid)
	if email, err = CheckEmail(email); err != nil {
		return nil, err
	}
	if !role.Valid() {
		return nil, fault.E(fault.Invalid, "invalid_role", `The role must be "admin" or "member".`)
	}
	u = &User{ID: uuid.New().String(), TenantID: tid, Email: email, Role: role, PasswordHash: hash}
	err = db.ownerTx(ctx, func(tx pgx.Tx) error {
		// The tenant's row, share-locked, holds off an offboarding until
		// this commits (its deletion of the users then includes this one);
		// one that has begun has changed the status, which the lock reads
		// again.
		var slug, status string
		err := tx.QueryRow(ctx, `SELECT t.slug, t.status FROM bulkhead_control.tenants t
			WHERE t.id = $1 FOR SHARE OF t`, string(tid)).Scan(&slug, &status)
		if errors.Is(err, pgx.ErrNoRows) {
			return tenant.ErrNotFound
		}
		if err != nil {
			return err
		}
		switch tenant.Status(status) {
		case tenant.Active:
		case tenant.Moving:
			return tenant.ErrMoving
		default:
			return tenant.ErrNotFound
		}
		if _, err := tx.Exec(ctx, `INSERT INTO bulkhead_control.users (id, tenant_id, email, password_hash, role)
			VALUES ($1, $2, $3, $4, $5)`, u.ID, string(tid), email, hash, string(role)); err != nil {
			return err
		}
		return db.changeEvent(ctx, tx, "users:Create", controlResource(string(tid), policy.KindUser, u.ID), string(tid), slug,
			map[string]string{"user": u.ID, "role": string(role)})
	})
	if err != nil {
		if fault.KindOf(Translate(err)) == fault.Conflict {
			return nil, ErrUserExists
		}
		return nil, Translate(err)
	}
	return u, nil
}

// FindUserForLogin returns the user with that email in the active tenant
// with that slug. Any miss is NotFound, the same for every reason.
func (db *DB) FindUserForLogin(ctx context.Context, slug tenant.Slug, email string) (*User, error) {
	var u User
	var tid, role string
	err := db.admin.QueryRow(ctx, `SELECT u.id, u.tenant_id, u.email, u.role, u.password_hash
		FROM bulkhead_control.users u JOIN bulkhead_control.tenants t ON t.id = u.tenant_id
		WHERE t.slug = $1 AND t.status = 'active' AND lower(u.email) = lower($2)`, string(slug), email).
		Scan(&u.ID, &tid, &u.Email, &role, &u.PasswordHash)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, fault.E(fault.NotFound, "user_not_found", "No such user.")
	}
	if err != nil {
		return nil, Translate(err)
	}
	u.TenantID, u.Role = tenant.ID(tid), tenant.Role(role)
	return &u, nil
}

// UserActive reports whether the user still exists in an active tenant.
// Tokens of deleted users and offboarded tenants stop working through it.
// A user of a tenant that is moving between the pool and a silo gets
// tenant.ErrMoving: the tenant is back in seconds, and the token with it.
func (db *DB) UserActive(ctx context.Context, userID string, tid tenant.ID) (bool, error) {
	if _, err := uuid.Parse(userID); err != nil {
		return false, nil
	}
	var status string
	err := db.admin.QueryRow(ctx, `SELECT t.status FROM bulkhead_control.users u
		JOIN bulkhead_control.tenants t ON t.id = u.tenant_id
		WHERE u.id = $1 AND u.tenant_id = $2`, userID, string(tid)).Scan(&status)
	if errors.Is(err, pgx.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, Translate(err)
	}
	if tenant.Status(status) == tenant.Moving {
		return false, tenant.ErrMoving
	}
	return tenant.Status(status) == tenant.Active, nil
}

// UserFilter pages FindUsers.
type UserFilter struct {
	// After lists only users whose email sorts after this one, compared
	// without regard to case, as the emails' uniqueness is.
	After string
	Limit int // 0 means 1000
}

// FindUsers lists a tenant's users (without hashes), ordered by email
// without regard to case, at most f.Limit of them.
func (db *DB) FindUsers(ctx context.Context, tid tenant.ID, f UserFilter) ([]User, error) {
	if f.Limit <= 0 || f.Limit > 1000 {
		f.Limit = 1000
	}
	// The order and the bound match the unique index on
	// (tenant_id, lower(email)), so a page costs what a page costs
	// however many users the tenant has.
	rows, err := db.admin.Query(ctx, `SELECT id, tenant_id, email, role FROM bulkhead_control.users
		WHERE tenant_id = $1 AND lower(email) > lower($2)
		ORDER BY lower(email) LIMIT $3`, string(tid), f.After, f.Limit)
	if err != nil {
		return nil, Translate(err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (User, error) {
		var u User
		var t, role string
		err := r.Scan(&u.ID, &t, &u.Email, &role)
		u.TenantID, u.Role = tenant.ID(t), tenant.Role(role)
		return u, err
	})
}

// TokenRevoked reports whether a platform-admin token id was revoked.
func (db *DB) TokenRevoked(ctx context.Context, jti string) (bool, error) {
	var ok bool
	err := db.admin.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM bulkhead_control.revoked_tokens WHERE jti = $1)`, jti).Scan(&ok)
	return ok, Translate(err)
}

// RevokeToken revokes a platform-admin token id until it would expire.
func (db *DB) RevokeToken(ctx context.Context, jti string, expires time.Time) error {
	err := db.ownerTx(ctx, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO bulkhead_control.revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING`, jti, expires); err != nil {
			return err
		}
		return db.changeEvent(ctx, tx, "tokens:Revoke", controlResource("", policy.KindToken, jti), "", "", nil)
	})
	return Translate(err)
}
