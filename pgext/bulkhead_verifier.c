/*
 * bulkhead_verifier: bulkhead.context() in C, for self-hosted PostgreSQL.
 *
 * It makes exactly the checks of the PL/pgSQL verifier of migration 00025
 * (postgres/migrations/00025_tenant_moves.sql), in the same order, with the
 * same results: the claims as jsonb when the context in the transaction-local
 * setting bulkhead.context verifies, NULL (and the same LOG line) when it
 * does not, and an ERROR where the PL/pgSQL one raises one (only a payload
 * signed with bulkhead's own key can get that far). bulkhead's tests compare
 * the two on the same contexts, valid, forged and malformed
 * (postgres/native_test.go).
 *
 * Why: PostgreSQL sets up each PL/pgSQL expression again in every
 * transaction, which is about half of the verifier's cost (see
 * docs/PERFORMANCE.md). Managed services (RDS, Supabase, Neon) do not load
 * custom C libraries; there the PL/pgSQL verifier stays.
 *
 * It is installed as SECURITY DEFINER, owned by bulkhead_owner, without a
 * SET search_path clause: it runs no SQL. It reads its two rows (the key,
 * the tenant) through their tables' primary-key indexes, looked up by name
 * in bulkhead_control, with the statement's snapshot, and calls
 * PostgreSQL's functions directly, so the caller's search_path cannot
 * change what it runs.
 */
#include "postgres.h"

#include "catalog/pg_am.h"
#include "catalog/pg_index.h"
#include "catalog/pg_type.h"
#include "common/hmac.h"
#include "common/string.h"
#include "fmgr.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/timestamp.h"
#include "utils/uuid.h"
#include "access/genam.h"
#include "access/htup_details.h"
#include "access/skey.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "storage/lmgr.h"
#include "utils/fmgroids.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

PG_MODULE_MAGIC;

/*
 * OpenSSL 3's EVP_MAC when PostgreSQL uses OpenSSL and its headers are
 * here (see hmac_sha256); PostgreSQL's pg_hmac otherwise.
 */
#if defined(USE_OPENSSL) && defined(__has_include)
#if __has_include(<openssl/opensslv.h>)
#include <openssl/opensslv.h>
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
#define HMAC_WITH_EVP_MAC
#include <openssl/core_names.h>
#include <openssl/evp.h>
#endif
#endif
#endif

/* The verifier version this library implements: the migration whose
 * bulkhead.context() it reproduces. bulkhead refuses to install a library
 * whose version is not the one its migrations last defined. */
#define BULKHEAD_VERIFIER_VERSION 25

#define MAX_TOKEN 4096
#define MAX_KID 32
#define MAC_LEN 43				/* 32 bytes, base64url without padding */


PG_FUNCTION_INFO_V1(bulkhead_verifier_version);
PG_FUNCTION_INFO_V1(bulkhead_context);

Datum
bulkhead_verifier_version(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(BULKHEAD_VERIFIER_VERSION);
}

static bool
is_b64url(char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		(c >= '0' && c <= '9') || c == '_' || c == '-';
}

/* session_user, as the PL/pgSQL verifier names it in its log lines. */
static char *
session_user_name(void)
{
	return GetUserNameFromId(GetSessionUserId(), false);
}

/*
 * The CONTEXT line of the verifier's LOG lines. bulkhead's log follower
 * (audit/pglog.go) counts a report only when this line, or the PL/pgSQL
 * verifier's, follows it: an app role's own RAISE LOG of the same text is
 * followed by a CONTEXT line naming its own code.
 */
#define VERIFIER_CONTEXT "bulkhead.context(), the native verifier"

static void
log_invalid(const char *why)
{
	ereport(LOG,
			(errmsg("bulkhead: invalid tenant context (%s) for role %s",
					why, session_user_name()),
			 errcontext(VERIFIER_CONTEXT)));
}

/* date_part('epoch', ts)::float8, as PostgreSQL computes it. */
static float8
epoch_of(TimestampTz ts)
{
	return DatumGetFloat8(DirectFunctionCall2(timestamptz_part,
											  CStringGetTextDatum("epoch"),
											  TimestampTzGetDatum(ts)));
}

/* claims -> key: NULL when claims is not an object or has no such key. */
static JsonbValue *
field(Jsonb *claims, const char *key, JsonbValue *buf)
{
	if (!JB_ROOT_IS_OBJECT(claims))
		return NULL;
	return getKeyJsonValueFromContainer(&claims->root, key, strlen(key), buf);
}

/*
 * claims ->> key: NULL when claims is not an object, the key is absent or
 * its value is JSON null; a string's text; any other value as JSON text.
 */
static char *
field_text(Jsonb *claims, const char *key)
{
	JsonbValue	vbuf;
	JsonbValue *v = field(claims, key, &vbuf);

	if (v == NULL)
		return NULL;
	switch (v->type)
	{
		case jbvNull:
			return NULL;
		case jbvString:
			return pnstrdup(v->val.string.val, v->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(v->val.numeric)));
		case jbvBool:
			return pstrdup(v->val.boolean ? "true" : "false");
		case jbvBinary:
			return JsonbToCString(NULL, v->val.binary.data, v->val.binary.len);
		default:
			elog(ERROR, "bulkhead: unexpected jsonb value type %d", (int) v->type);
	}
	return NULL;
}

/* jsonb_typeof(claims -> key) = 'number', with a missing key false. */
static bool
field_is_number(Jsonb *claims, const char *key)
{
	JsonbValue	vbuf;
	JsonbValue *v = field(claims, key, &vbuf);

	return v != NULL && v->type == jbvNumeric;
}

/* (claims ->> key)::float8 */
static float8
field_float8(Jsonb *claims, const char *key)
{
	char	   *s = field_text(claims, key);

	if (s == NULL)
		elog(ERROR, "bulkhead: claim %s vanished", key);
	return DatumGetFloat8(DirectFunctionCall1(float8in, CStringGetDatum(s)));
}

static const char b64url[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int
b64url_value(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '-')
		return 62;
	if (c == '_')
		return 63;
	return -1;
}

/*
 * The payload's bytes, as decode(<base64url turned base64 and padded>,
 * 'base64') gives them: a length of 1 modulo 4 is an error there too.
 */
static char *
b64url_decode(const char *s, int len, int *outlen)
{
	char	   *out = palloc(len * 3 / 4 + 3);
	int			n = 0;
	uint32		acc = 0;
	int			bits = 0;

	if (len % 4 == 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unexpected \"=\" while decoding base64 sequence")));
	for (int i = 0; i < len; i++)
	{
		int			v = b64url_value(s[i]);

		if (v < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("invalid symbol in base64 sequence")));
		acc = (acc << 6) | (uint32) v;
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			out[n++] = (char) ((acc >> bits) & 0xFF);
		}
	}
	*outlen = n;
	return out;
}

#ifdef HMAC_WITH_EVP_MAC

/*
 * HMAC-SHA256 through OpenSSL 3's EVP_MAC. pg_hmac_init asks OpenSSL for
 * SHA-256 by name on every call (HMAC_Init_ex with EVP_sha256() is an
 * implicit fetch in OpenSSL 3), with a context and a resource owner entry
 * made and freed each time: about a seventh of the verifier's samples in
 * a perf profile. Here HMAC and SHA-256 are fetched once per backend, into
 * a context without a key, which each call copies and keys; the copy,
 * which holds the key, is freed (and cleansed by OpenSSL) before
 * returning, and nothing that can raise a PostgreSQL error runs while it
 * exists.
 */
static EVP_MAC_CTX *hmac_sha256_unkeyed;

static bool
hmac_sha256(const uint8 *key, size_t keylen, const uint8 *data, size_t len,
			uint8 *sum)
{
	EVP_MAC_CTX *ctx;
	size_t		sumlen = 0;
	bool		ok;

	if (hmac_sha256_unkeyed == NULL)
	{
		EVP_MAC   *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
		OSSL_PARAM params[] = {
			OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, "SHA256", 0),
			OSSL_PARAM_construct_end()
		};
		EVP_MAC_CTX *c = mac == NULL ? NULL : EVP_MAC_CTX_new(mac);

		EVP_MAC_free(mac);		/* the context holds its own reference */
		if (c == NULL || !EVP_MAC_CTX_set_params(c, params))
		{
			EVP_MAC_CTX_free(c);
			return false;
		}
		hmac_sha256_unkeyed = c;
	}
	ctx = EVP_MAC_CTX_dup(hmac_sha256_unkeyed);
	if (ctx == NULL)
		return false;
	ok = EVP_MAC_init(ctx, key, keylen, NULL) &&
		EVP_MAC_update(ctx, data, len) &&
		EVP_MAC_final(ctx, sum, &sumlen, 32) &&
		sumlen == 32;
	EVP_MAC_CTX_free(ctx);
	return ok;
}

#else

/* HMAC-SHA256 through PostgreSQL's own functions. */
static bool
hmac_sha256(const uint8 *key, size_t keylen, const uint8 *data, size_t len,
			uint8 *sum)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);
	bool		ok;

	if (ctx == NULL)
		return false;
	ok = pg_hmac_init(ctx, key, keylen) >= 0 &&
		pg_hmac_update(ctx, data, len) >= 0 &&
		pg_hmac_final(ctx, sum, 32) >= 0;
	pg_hmac_free(ctx);
	return ok;
}

#endif

/* The MAC of signed under key, base64url without padding, into out[43]. */
static void
mac_of(const uint8 *key, size_t keylen, const char *signed_part, size_t len,
	   char *out)
{
	uint8		sum[32];
	int			o = 0;

	if (!hmac_sha256(key, keylen, (const uint8 *) signed_part, len, sum))
		elog(ERROR, "bulkhead: HMAC-SHA256 failed");
	for (int i = 0; i < 30; i += 3)
	{
		uint32		v = ((uint32) sum[i] << 16) | ((uint32) sum[i + 1] << 8) | sum[i + 2];

		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		out[o++] = b64url[(v >> 6) & 63];
		out[o++] = b64url[v & 63];
	}
	{
		uint32		v = ((uint32) sum[30] << 16) | ((uint32) sum[31] << 8);

		out[o++] = b64url[(v >> 18) & 63];
		out[o++] = b64url[(v >> 12) & 63];
		out[o++] = b64url[(v >> 6) & 63];
	}
	Assert(o == MAC_LEN);
}

/*
 * What lookup() finds by name in bulkhead_control: a table, its
 * primary-key index and the columns it reads. The names are looked up
 * again after any invalidation that could change what they mean (see
 * control_generation); everything else (the index's checks, the lock, the
 * row) is done on every call.
 */
#define MAX_COLS 3

typedef struct ControlTable
{
	const char *table;
	const char *index;
	const char *keycol;
	int			ncols;
	const char *const *cols;

	/*
	 * What the names meant when last looked up, valid while filled and
	 * generation is control_generation.
	 */
	bool		filled;
	uint64		generation;
	Oid			relid;
	Oid			indexid;
	AttrNumber	keyatt;
	AttrNumber	atts[MAX_COLS];
} ControlTable;

static const char *const key_cols[] = {"purpose", "secret", "not_after"};
static ControlTable keys_table = {"keys", "keys_pkey", "kid", 3, key_cols};
static const char *const tenant_cols[] = {"status", "contexts_from"};
static ControlTable tenants_table = {"tenants", "tenants_pkey", "id", 2, tenant_cols};

/*
 * Counts the invalidations that could change what the names mean. For a
 * name to mean another relation or column, the one it meant must be
 * renamed, dropped or moved to another schema, or its column renamed or
 * dropped: each changes its pg_class or pg_attribute rows, for which
 * PostgreSQL sends a relcache invalidation of it (and creating or dropping
 * an index sends one of its table). A schema renamed or dropped changes
 * pg_namespace, whose syscache invalidations come here too. A backend
 * processes invalidations when a transaction starts, after each command of
 * its own, and whenever it takes a lock it did not hold: lookup() takes its
 * locks and then checks that none arrived since the names were looked up.
 */
static uint64 control_generation = 1;

static void
control_relcache_changed(Datum arg, Oid relid)
{
	if (relid == InvalidOid ||
		relid == keys_table.relid || relid == keys_table.indexid ||
		relid == tenants_table.relid || relid == tenants_table.indexid)
		control_generation++;
}

static void
control_namespace_changed(Datum arg, int cacheid, uint32 hashvalue)
{
	control_generation++;
}

void		_PG_init(void);

void
_PG_init(void)
{
	CacheRegisterRelcacheCallback(control_relcache_changed, (Datum) 0);
	CacheRegisterSyscacheCallback(NAMESPACEOID, control_namespace_changed, (Datum) 0);
}

/* Looks ct's names up, in bulkhead_control only (no search_path). */
static void
resolve(ControlTable *ct)
{
	Oid			nsp;

	ct->filled = false;
	/* Before the first lookup: one that takes a lock may process invalidations. */
	ct->generation = control_generation;
	nsp = get_namespace_oid("bulkhead_control", false);
	ct->relid = get_relname_relid(ct->table, nsp);
	ct->indexid = get_relname_relid(ct->index, nsp);
	if (!OidIsValid(ct->relid) || !OidIsValid(ct->indexid))
		elog(ERROR, "bulkhead: bulkhead_control.%s or its index %s is missing", ct->table, ct->index);
	ct->keyatt = get_attnum(ct->relid, ct->keycol);
	for (int i = 0; i < ct->ncols; i++)
		ct->atts[i] = get_attnum(ct->relid, ct->cols[i]);
	ct->filled = true;
}

/*
 * One row of bulkhead_control.<table> by its primary key, read as the
 * statement's snapshot sees it, through the key's index: what the
 * PL/pgSQL verifier's SELECT ... WHERE <key> = $1 reads, without the
 * executor. Names are looked up in bulkhead_control only, so no
 * search_path is involved. The row's columns are copied into values and
 * nulls (in ct->cols order); false when there is no row.
 */
static bool
lookup(ControlTable *ct, Oid eqproc, Datum keyval, Datum *values, bool *nulls)
{
	Relation	rel;
	Relation	idx;
	ScanKeyData skey;
	SysScanDesc scan;
	HeapTuple	tup;
	bool		found = false;

	/*
	 * Lock the table and the index the names meant; if an invalidation
	 * arrived meanwhile (taking a lock processes them), they may mean
	 * others now: let go and look them up again.
	 */
	for (;;)
	{
		if (!ct->filled || ct->generation != control_generation)
			resolve(ct);
		LockRelationOid(ct->relid, AccessShareLock);
		LockRelationOid(ct->indexid, AccessShareLock);
		if (ct->generation == control_generation)
			break;
		UnlockRelationOid(ct->indexid, AccessShareLock);
		UnlockRelationOid(ct->relid, AccessShareLock);
	}
	rel = table_open(ct->relid, NoLock);
	idx = index_open(ct->indexid, NoLock);
	if (idx->rd_index->indrelid != ct->relid || idx->rd_index->indnkeyatts != 1 ||
		idx->rd_index->indkey.values[0] != ct->keyatt || !idx->rd_index->indisunique ||
		!idx->rd_index->indisvalid || !heap_attisnull(idx->rd_indextuple, Anum_pg_index_indpred, NULL) ||
		idx->rd_rel->relam != BTREE_AM_OID)
		elog(ERROR, "bulkhead: %s is not the valid, unique, whole-table btree index on bulkhead_control.%s (%s)", ct->index, ct->table, ct->keycol);
	ScanKeyEntryInitialize(&skey, 0, ct->keyatt, BTEqualStrategyNumber, InvalidOid,
						   idx->rd_indcollation[0], eqproc, keyval);
	scan = systable_beginscan(rel, ct->indexid, true,
							  ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot(),
							  1, &skey);
	tup = systable_getnext(scan);
	if (HeapTupleIsValid(tup))
	{
		TupleDesc	desc = RelationGetDescr(rel);

		found = true;
		for (int i = 0; i < ct->ncols; i++)
		{
			AttrNumber	att = ct->atts[i];
			Form_pg_attribute a;

			if (att == InvalidAttrNumber)
				elog(ERROR, "bulkhead: bulkhead_control.%s has no column %s", ct->table, ct->cols[i]);
			a = TupleDescAttr(desc, att - 1);
			values[i] = heap_getattr(tup, att, desc, &nulls[i]);
			if (!nulls[i])
				values[i] = datumCopy(values[i], a->attbyval, a->attlen);
		}
	}
	systable_endscan(scan);

	/*
	 * The locks are kept until the transaction ends, as the PL/pgSQL
	 * verifier's SELECTs keep theirs: a later call in the transaction finds
	 * them held, and the transaction's end releases them all at once.
	 */
	index_close(idx, NoLock);
	table_close(rel, NoLock);
	return found;
}

Datum
bulkhead_context(PG_FUNCTION_ARGS)
{
	const char *setting = GetConfigOption("bulkhead.context", true, false);
	size_t		toklen;
	const char *kid,
			   *payload,
			   *mac;
	int			kidlen,
				payloadlen,
				maclen;
	char		expected[MAC_LEN];
	bool		found;
	bool		retired_null = true;
	TimestampTz not_after = 0;
	char	   *raw;
	int			rawlen;
	char	   *utf8;
	Jsonb	   *claims;
	const char *why = NULL;
	char		status[64];
	bool		status_null = true;
	bool		after_null = true;
	TimestampTz after = 0;
	float8		iat = 0;		/* parsed when the checks reach it */

	if (setting == NULL || setting[0] == '\0')
		PG_RETURN_NULL();
	/* A copy: the setting's own storage is the GUC machinery's. */
	setting = pstrdup(setting);

	/*
	 * The strict form: length at most 4096, then
	 * ^v1\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$.
	 */
	toklen = strlen(setting);

	/*
	 * In ASCII a character is a byte, and nothing can be badly encoded:
	 * counting the characters (a walk over the whole token, a twentieth of
	 * the verifier's time) is needed only past the limit or for other
	 * bytes, where it also raises length()'s error on a truncated
	 * character (22021).
	 */
	if (((toklen > MAX_TOKEN || !pg_is_ascii(setting)) &&
		 pg_mbstrlen_with_len(setting, toklen) > MAX_TOKEN) ||
		strncmp(setting, "v1.", 3) != 0)
	{
		log_invalid("malformed");
		PG_RETURN_NULL();
	}
	{
		const char *seg[3];
		int			seglen[3];
		int			k = 0;
		const char *p = setting + 3;

		seg[0] = p;
		for (;; p++)
		{
			if (*p == '.' || *p == '\0')
			{
				seglen[k] = (int) (p - seg[k]);
				if (seglen[k] == 0)
					break;
				k++;
				if (*p == '\0' || k == 3)
					break;
				seg[k] = p + 1;
				continue;
			}
			if (!is_b64url(*p))
			{
				k = -1;
				break;
			}
		}
		if (k != 3 || *p != '\0')
		{
			log_invalid("malformed");
			PG_RETURN_NULL();
		}
		kid = seg[0];
		kidlen = seglen[0];
		payload = seg[1];
		payloadlen = seglen[1];
		mac = seg[2];
		maclen = seglen[2];
	}
	if (kidlen > MAX_KID || maclen != MAC_LEN)
	{
		log_invalid("malformed");
		PG_RETURN_NULL();
	}

	/* The key: purpose 'context' only. */
	{
		Datum		v[3];
		bool		n[3];

		found = lookup(&keys_table, F_TEXTEQ,
					   PointerGetDatum(cstring_to_text_with_len(kid, kidlen)), v, n);
		if (found)
		{
			char	   *purpose = n[0] ? NULL : TextDatumGetCString(v[0]);
			bytea	   *secret;

			found = purpose != NULL && strcmp(purpose, "context") == 0;
			if (found)
			{
				if (n[1])
					elog(ERROR, "bulkhead: a key without a secret");
				secret = DatumGetByteaPP(v[1]);
				mac_of((const uint8 *) VARDATA_ANY(secret), VARSIZE_ANY_EXHDR(secret),
					   setting, (size_t) (mac - 1 - setting), expected);
				retired_null = n[2];
				if (!retired_null)
					not_after = DatumGetTimestampTz(v[2]);
			}
		}
	}
	if (!found)
	{
		log_invalid("unknown key");
		PG_RETURN_NULL();
	}
	{
		/* Constant time: every byte is compared. */
		unsigned char diff = 0;

		for (int i = 0; i < MAC_LEN; i++)
			diff |= (unsigned char) (expected[i] ^ mac[i]);
		if (diff != 0)
		{
			log_invalid("bad signature");
			PG_RETURN_NULL();
		}
	}

	/* From here on the payload is bulkhead's own: it decodes. */
	raw = b64url_decode(payload, payloadlen, &rawlen);

	/*
	 * Only in a UTF8 database (bulkhead verifier native refuses others):
	 * converting to another encoding would look the conversion up through
	 * the caller's search_path.
	 */
	if (GetDatabaseEncoding() != PG_UTF8)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("bulkhead: the native verifier needs a UTF8 database")));
	pg_verify_mbstr(PG_UTF8, raw, rawlen, false);
	utf8 = pnstrdup(raw, rawlen);
	claims = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(utf8)));

	{
		/*
		 * exp and iat are each parsed once, when the check that first
		 * needs it runs, so that a value float8 cannot hold raises its
		 * error where the PL/pgSQL verifier's CASE would. float8_pl and
		 * float8_mi raise an overflow as SQL's + and - do.
		 */
		float8		now = epoch_of(GetCurrentStatementStartTimestamp());
		float8		exp;

		if (!field_is_number(claims, "exp") || !field_is_number(claims, "iat"))
			why = "exp or iat missing or not a number";
		else if ((exp = field_float8(claims, "exp")) <= now)
			why = "expired";
		else if ((iat = field_float8(claims, "iat")) > float8_pl(now, 5))
			why = "issued in the future";
		else if (float8_mi(exp, iat) > 300)
			why = "lifetime over the maximum";
		else if (!retired_null && not_after <= GetCurrentStatementStartTimestamp())
			why = "retired key";
		else
		{
			char	   *aud = field_text(claims, "aud");

			if (aud == NULL || strcmp(aud, session_user_name()) != 0)
				why = "audience is another login role";
		}
	}

	if (why == NULL)
	{
		/* The tenant's status, read once: the check, and the log line. */
		char	   *tid = field_text(claims, "tenant_id");

		if (tid != NULL)
		{
			Datum		v[2];
			bool		n[2];

			if (lookup(&tenants_table, F_UUID_EQ,
					   DirectFunctionCall1(uuid_in, CStringGetDatum(tid)), v, n))
			{
				status_null = n[0];
				if (!status_null)
					text_to_cstring_buffer(DatumGetTextPP(v[0]), status, sizeof(status));
				after_null = n[1];
				if (!after_null)
					after = DatumGetTimestampTz(v[1]);
			}
		}
		if (status_null || strcmp(status, "active") != 0)
			why = "inactive";
		else if (!after_null && iat < epoch_of(after))
			why = "issued before the tenant moved";
	}
	if (why != NULL && strcmp(why, "inactive") == 0)
	{
		ereport(LOG,
				(errmsg("bulkhead: tenant context for a tenant that is not active (%s) for role %s",
						status_null ? "absent" : status, session_user_name()),
				 errcontext(VERIFIER_CONTEXT)));
		PG_RETURN_NULL();
	}
	if (why != NULL)
	{
		log_invalid(why);
		PG_RETURN_NULL();
	}
	PG_RETURN_JSONB_P(claims);
}

