-- lintbed: one of each misconfiguration `bulkhead lint` reports, and fixed
-- twins (ok_*) that must stay quiet. Run as a superuser in a bulkhead test
-- database. {{p}} is a role prefix unique to the test (roles are
-- cluster-wide), {{s}} the schema, {{db}} the database. The app role is
-- {{p}}_app; {{p}}_app2 is a second app role.

CREATE ROLE {{p}}_owner NOLOGIN;
CREATE ROLE {{p}}_app LOGIN;
CREATE ROLE {{p}}_app2 LOGIN;
CREATE ROLE {{p}}_svc NOLOGIN BYPASSRLS;
-- L06: the app role can SET ROLE into a BYPASSRLS role.
GRANT {{p}}_svc TO {{p}}_app;

CREATE SCHEMA {{s}} AUTHORIZATION {{p}}_owner;
CREATE SCHEMA {{s}}_open AUTHORIZATION {{p}}_owner;
GRANT USAGE ON SCHEMA {{s}}, {{s}}_open TO {{p}}_app, {{p}}_app2;
GRANT USAGE ON SCHEMA bulkhead, auth TO {{p}}_owner;
-- L13: CREATE on a schema, TEMP on the database.
GRANT CREATE ON SCHEMA {{s}}_open TO {{p}}_app;
GRANT TEMPORARY ON DATABASE {{db}} TO {{p}}_app;
-- L20: the lock function granted to an app role, the activity view back to
-- PUBLIC (the test database is hardened like bulkhead's: both were revoked).
GRANT EXECUTE ON FUNCTION pg_catalog.pg_lock_status() TO {{p}}_app;
GRANT SELECT ON pg_catalog.pg_stat_activity TO PUBLIC;
-- Advisory locks, a channel between sessions (L20): one as PostgreSQL
-- grants it, to PUBLIC, one to the app role.
GRANT EXECUTE ON FUNCTION pg_catalog.pg_try_advisory_lock(bigint) TO PUBLIC;
GRANT EXECUTE ON FUNCTION pg_catalog.pg_advisory_lock(integer, integer) TO {{p}}_app;

-- Extensions (superuser). S0014: in public. S0022: outdated. L17: fdw.
CREATE EXTENSION citext SCHEMA public;
CREATE EXTENSION hstore VERSION '1.4' SCHEMA {{s}};
CREATE EXTENSION postgres_fdw SCHEMA {{s}};
CREATE SERVER {{p}}_srv FOREIGN DATA WRAPPER postgres_fdw OPTIONS (host '127.0.0.1', dbname 'nowhere');
-- L17: a user mapping for PUBLIC.
CREATE USER MAPPING FOR PUBLIC SERVER {{p}}_srv OPTIONS (user 'nobody');
CREATE FOREIGN TABLE {{s}}.f17_remote (id int) SERVER {{p}}_srv;
ALTER FOREIGN TABLE {{s}}.f17_remote OWNER TO {{p}}_owner;
GRANT SELECT ON {{s}}.f17_remote TO {{p}}_app;

SET ROLE {{p}}_owner;

-- ok_docs: a tenant table done right.
CREATE TABLE {{s}}.ok_docs (tenant_id uuid NOT NULL, id uuid NOT NULL DEFAULT gen_random_uuid(), body text, PRIMARY KEY (tenant_id, id));
ALTER TABLE {{s}}.ok_docs ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{s}}.ok_docs FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_all ON {{s}}.ok_docs FOR ALL TO {{p}}_app
    USING (tenant_id = (SELECT bulkhead.tenant_id())) WITH CHECK (tenant_id = (SELECT bulkhead.tenant_id()));
GRANT SELECT, INSERT, UPDATE, DELETE ON {{s}}.ok_docs TO {{p}}_app;

-- ok_split: one policy per command, as bulkhead's own tables.
CREATE TABLE {{s}}.ok_split (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (tenant_id, id));
ALTER TABLE {{s}}.ok_split ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{s}}.ok_split FORCE ROW LEVEL SECURITY;
CREATE POLICY sel ON {{s}}.ok_split FOR SELECT TO {{p}}_app USING (tenant_id = (SELECT bulkhead.tenant_id()));
CREATE POLICY ins ON {{s}}.ok_split FOR INSERT TO {{p}}_app WITH CHECK (tenant_id = (SELECT bulkhead.tenant_id_for('insert')));
CREATE POLICY upd ON {{s}}.ok_split FOR UPDATE TO {{p}}_app USING (tenant_id = (SELECT bulkhead.tenant_id_for('update')));
CREATE POLICY del ON {{s}}.ok_split FOR DELETE TO {{p}}_app USING (tenant_id = (SELECT bulkhead.tenant_id_for('delete')));
GRANT SELECT, INSERT, UPDATE, DELETE ON {{s}}.ok_split TO {{p}}_app;

-- shared_ref: a table shared by all tenants, read-only through row security.
CREATE TABLE {{s}}.shared_ref (code text PRIMARY KEY, label text);
ALTER TABLE {{s}}.shared_ref ENABLE ROW LEVEL SECURITY;
CREATE POLICY shared_read ON {{s}}.shared_ref FOR SELECT TO {{p}}_app USING (true);
GRANT SELECT ON {{s}}.shared_ref TO {{p}}_app;

-- L01: a tenant table without row security, and one no app role reaches.
CREATE TABLE {{s}}.t01_no_rls (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (tenant_id, id));
GRANT SELECT, INSERT, UPDATE, DELETE ON {{s}}.t01_no_rls TO {{p}}_app;
CREATE TABLE {{s}}.t01_unreachable (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (tenant_id, id));

-- L02: row security not forced.
CREATE TABLE {{s}}.t02_not_forced (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (tenant_id, id));
ALTER TABLE {{s}}.t02_not_forced ENABLE ROW LEVEL SECURITY;
CREATE POLICY tenant_all ON {{s}}.t02_not_forced FOR ALL TO {{p}}_app
    USING (tenant_id = (SELECT bulkhead.tenant_id())) WITH CHECK (tenant_id = (SELECT bulkhead.tenant_id()));
GRANT SELECT, INSERT, UPDATE, DELETE ON {{s}}.t02_not_forced TO {{p}}_app;

-- L03: write policies that do not pin the tenant (A08).
CREATE TABLE {{s}}.t03_write (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (tenant_id, id));
ALTER TABLE {{s}}.t03_write ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{s}}.t03_write FORCE ROW LEVEL SECURITY;
CREATE POLICY sel ON {{s}}.t03_write FOR SELECT TO {{p}}_app USING (tenant_id = (SELECT bulkhead.tenant_id()));
CREATE POLICY ins ON {{s}}.t03_write FOR INSERT TO {{p}}_app WITH CHECK ((SELECT bulkhead.tenant_id()) IS NOT NULL);
CREATE POLICY upd ON {{s}}.t03_write FOR UPDATE TO {{p}}_app USING (tenant_id = (SELECT bulkhead.tenant_id())) WITH CHECK (true);
GRANT SELECT, INSERT, UPDATE ON {{s}}.t03_write TO {{p}}_app;

-- L04: a permissive policy ORs every tenant in (A26); the guarded twin
-- has a restrictive tenant guard. Both have two permissive SELECT
-- policies (S0006).
CREATE TABLE {{s}}.t04_or (tenant_id uuid NOT NULL, id uuid NOT NULL, public boolean, PRIMARY KEY (tenant_id, id));
ALTER TABLE {{s}}.t04_or ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{s}}.t04_or FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_read ON {{s}}.t04_or FOR SELECT TO {{p}}_app USING (tenant_id = (SELECT bulkhead.tenant_id()));
CREATE POLICY public_read ON {{s}}.t04_or FOR SELECT TO {{p}}_app USING (public OR tenant_id = (SELECT bulkhead.tenant_id()));
GRANT SELECT ON {{s}}.t04_or TO {{p}}_app;
CREATE TABLE {{s}}.t04_guarded (tenant_id uuid NOT NULL, id uuid NOT NULL, public boolean, PRIMARY KEY (tenant_id, id));
ALTER TABLE {{s}}.t04_guarded ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{s}}.t04_guarded FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_read ON {{s}}.t04_guarded FOR SELECT TO {{p}}_app USING (tenant_id = (SELECT bulkhead.tenant_id()));
CREATE POLICY public_read ON {{s}}.t04_guarded FOR SELECT TO {{p}}_app USING (public);
CREATE POLICY guard ON {{s}}.t04_guarded AS RESTRICTIVE FOR ALL TO {{p}}_app
    USING (tenant_id = (SELECT bulkhead.tenant_id())) WITH CHECK (tenant_id = (SELECT bulkhead.tenant_id()));
GRANT SELECT ON {{s}}.t04_guarded TO {{p}}_app;

-- L05: a raw setting, a user-editable claim, a fail-open default, and an
-- unverified wrapper.
CREATE FUNCTION {{s}}.current_tenant() RETURNS uuid LANGUAGE sql STABLE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT NULLIF(current_setting('app.tenant_id', true), '')::uuid $$;
CREATE TABLE {{s}}.t05_setting (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE {{s}}.t05_meta (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE {{s}}.t05_failopen (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (tenant_id, id));
CREATE TABLE {{s}}.t05_wrapper (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (tenant_id, id));
ALTER TABLE {{s}}.t05_setting ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{s}}.t05_setting FORCE ROW LEVEL SECURITY;
ALTER TABLE {{s}}.t05_meta ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{s}}.t05_meta FORCE ROW LEVEL SECURITY;
ALTER TABLE {{s}}.t05_failopen ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{s}}.t05_failopen FORCE ROW LEVEL SECURITY;
ALTER TABLE {{s}}.t05_wrapper ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{s}}.t05_wrapper FORCE ROW LEVEL SECURITY;
CREATE POLICY by_setting ON {{s}}.t05_setting FOR SELECT TO {{p}}_app
    USING (tenant_id = (SELECT current_setting('app.tenant_id'))::uuid);
CREATE POLICY by_meta ON {{s}}.t05_meta FOR SELECT TO {{p}}_app
    USING (tenant_id = ((SELECT auth.jwt()) -> 'user_metadata' ->> 'tenant_id')::uuid);
CREATE POLICY fail_open ON {{s}}.t05_failopen FOR SELECT TO {{p}}_app
    USING (tenant_id = COALESCE((SELECT bulkhead.tenant_id()), tenant_id));
CREATE POLICY by_wrapper ON {{s}}.t05_wrapper FOR SELECT TO {{p}}_app
    USING (tenant_id = (SELECT {{s}}.current_tenant()));
GRANT SELECT ON {{s}}.t05_setting, {{s}}.t05_meta, {{s}}.t05_failopen, {{s}}.t05_wrapper TO {{p}}_app;

-- L07: a definer view and a materialized view over a tenant table; the
-- invoker view is fine.
CREATE VIEW {{s}}.v07_definer AS SELECT tenant_id, body FROM {{s}}.ok_docs;
CREATE MATERIALIZED VIEW {{s}}.m07_matview AS SELECT tenant_id, count(*) AS n FROM {{s}}.ok_docs GROUP BY tenant_id;
CREATE VIEW {{s}}.ok_invoker_view WITH (security_invoker = true) AS SELECT tenant_id, body FROM {{s}}.ok_docs;
GRANT SELECT ON {{s}}.v07_definer, {{s}}.m07_matview, {{s}}.ok_invoker_view TO {{p}}_app;

-- S0010, S0016: a definer view and a materialized view over a shared table.
CREATE VIEW {{s}}.v10_definer AS SELECT code FROM {{s}}.shared_ref;
CREATE MATERIALIZED VIEW {{s}}.m16_matview AS SELECT code FROM {{s}}.shared_ref;
GRANT SELECT ON {{s}}.v10_definer, {{s}}.m16_matview TO {{p}}_app;

-- L08: SECURITY DEFINER functions: no search_path; pg_temp searched
-- first; a body that reads a tenant table. ok_definer is pinned and reads
-- no tenant table (S0028 info only).
CREATE FUNCTION {{s}}.f08_mutable() RETURNS int LANGUAGE sql SECURITY DEFINER AS $$ SELECT 1 $$;
CREATE FUNCTION {{s}}.f08_temp_first() RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path = {{s}} AS $$ SELECT 1 $$;
CREATE FUNCTION {{s}}.f08_reads() RETURNS bigint LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp
    AS $$ SELECT count(*) FROM {{s}}.ok_docs $$;
CREATE FUNCTION {{s}}.ok_definer() RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$ SELECT 1 $$;

-- L09: keys without the tenant column.
CREATE TABLE {{s}}.t09_parent (tenant_id uuid NOT NULL, id uuid NOT NULL, email text, PRIMARY KEY (tenant_id, id), UNIQUE (id));
CREATE TABLE {{s}}.t09_child (tenant_id uuid NOT NULL, id uuid NOT NULL, parent_id uuid REFERENCES {{s}}.t09_parent (id), code text,
    PRIMARY KEY (tenant_id, id));
CREATE UNIQUE INDEX t09_child_code ON {{s}}.t09_child (code);
ALTER TABLE {{s}}.t09_parent ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{s}}.t09_parent FORCE ROW LEVEL SECURITY;
ALTER TABLE {{s}}.t09_child ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{s}}.t09_child FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_all ON {{s}}.t09_parent FOR ALL TO {{p}}_app USING (tenant_id = (SELECT bulkhead.tenant_id()));
CREATE POLICY tenant_all ON {{s}}.t09_child FOR ALL TO {{p}}_app USING (tenant_id = (SELECT bulkhead.tenant_id()));
GRANT SELECT, INSERT, UPDATE, DELETE ON {{s}}.t09_parent, {{s}}.t09_child TO {{p}}_app;

-- L10: the seed's per-row policy.
CREATE TABLE {{s}}.t10_per_row (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (tenant_id, id));
ALTER TABLE {{s}}.t10_per_row ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{s}}.t10_per_row FORCE ROW LEVEL SECURITY;
CREATE POLICY per_row ON {{s}}.t10_per_row FOR SELECT TO {{p}}_app USING (tenant_id = (auth.jwt() ->> 'tenant_id')::uuid);
GRANT SELECT ON {{s}}.t10_per_row TO {{p}}_app;

-- L11: no index leads with the tenant column.
CREATE TABLE {{s}}.t11_no_index (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (id, tenant_id));
ALTER TABLE {{s}}.t11_no_index ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{s}}.t11_no_index FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_all ON {{s}}.t11_no_index FOR ALL TO {{p}}_app USING (tenant_id = (SELECT bulkhead.tenant_id()));
GRANT SELECT ON {{s}}.t11_no_index TO {{p}}_app;

-- L12: TRUNCATE, REFERENCES, TRIGGER.
CREATE TABLE {{s}}.t12_truncate (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (tenant_id, id));
ALTER TABLE {{s}}.t12_truncate ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{s}}.t12_truncate FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_all ON {{s}}.t12_truncate FOR ALL TO {{p}}_app USING (tenant_id = (SELECT bulkhead.tenant_id()));
GRANT SELECT, TRUNCATE, REFERENCES, TRIGGER ON {{s}}.t12_truncate TO {{p}}_app;

-- L14: a partition without row security that the app can read by name;
-- its sibling has row security.
CREATE TABLE {{s}}.t14_parent (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (tenant_id, id)) PARTITION BY LIST (tenant_id);
CREATE TABLE {{s}}.t14_part_a PARTITION OF {{s}}.t14_parent FOR VALUES IN ('00000000-0000-0000-0000-00000000000a');
CREATE TABLE {{s}}.t14_part_b PARTITION OF {{s}}.t14_parent FOR VALUES IN ('00000000-0000-0000-0000-00000000000b');
ALTER TABLE {{s}}.t14_parent ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{s}}.t14_parent FORCE ROW LEVEL SECURITY;
ALTER TABLE {{s}}.t14_part_b ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{s}}.t14_part_b FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_all ON {{s}}.t14_parent FOR ALL TO {{p}}_app USING (tenant_id = (SELECT bulkhead.tenant_id()));
GRANT SELECT ON {{s}}.t14_parent, {{s}}.t14_part_a, {{s}}.t14_part_b TO {{p}}_app;

-- L15: a readable sequence; ok_seq has USAGE only.
CREATE SEQUENCE {{s}}.s15_seq;
CREATE SEQUENCE {{s}}.ok_seq;
GRANT SELECT, USAGE ON SEQUENCE {{s}}.s15_seq TO {{p}}_app;
GRANT USAGE ON SEQUENCE {{s}}.ok_seq TO {{p}}_app;

-- L16 (marked LEAKPROOF below, as a superuser).
CREATE FUNCTION {{s}}.f16_leaky(a text, b text) RETURNS boolean LANGUAGE sql IMMUTABLE SET search_path = pg_catalog, pg_temp
    AS $$ SELECT a = b $$;

-- S0003: a per-row call on a table without the tenant column.
CREATE TABLE {{s}}.n03_per_row (owner_id text PRIMARY KEY);
ALTER TABLE {{s}}.n03_per_row ENABLE ROW LEVEL SECURITY;
CREATE POLICY mine ON {{s}}.n03_per_row FOR SELECT TO {{p}}_app USING (owner_id = (auth.jwt() ->> 'sub'));
GRANT SELECT ON {{s}}.n03_per_row TO {{p}}_app;

-- S0007: a policy on a table whose row security is off.
CREATE TABLE {{s}}.n07_policy_no_rls (owner_id text PRIMARY KEY);
CREATE POLICY mine ON {{s}}.n07_policy_no_rls FOR SELECT TO {{p}}_app USING (owner_id = (SELECT auth.jwt() ->> 'sub'));

-- S0008: row security on, no policy.
CREATE TABLE {{s}}.n08_no_policy (id int PRIMARY KEY);
ALTER TABLE {{s}}.n08_no_policy ENABLE ROW LEVEL SECURITY;

-- S0011: an invoker function without a pinned search_path (a warning:
-- the app role can create objects here).
CREATE FUNCTION {{s}}.f11_mutable() RETURNS int LANGUAGE sql STABLE AS $$ SELECT 1 $$;

-- S0013: a shared table without row security that app roles can write.
CREATE TABLE {{s}}.n13_shared (code text PRIMARY KEY);
GRANT SELECT, INSERT ON {{s}}.n13_shared TO {{p}}_app;

-- S0015: user_metadata on a table without the tenant column.
CREATE TABLE {{s}}.n15_meta (owner_id text PRIMARY KEY);
ALTER TABLE {{s}}.n15_meta ENABLE ROW LEVEL SECURITY;
CREATE POLICY by_meta ON {{s}}.n15_meta FOR SELECT TO {{p}}_app
    USING (owner_id = ((SELECT auth.jwt()) -> 'user_metadata' ->> 'sub'));
GRANT SELECT ON {{s}}.n15_meta TO {{p}}_app;

-- S0023: a sensitive column in a readable table without row security
-- (also S0013, read-only).
CREATE TABLE {{s}}.n23_secrets (id int PRIMARY KEY, api_key text);
GRANT SELECT ON {{s}}.n23_secrets TO {{p}}_app;

-- S0024: UPDATE USING (true).
CREATE TABLE {{s}}.n24_always (id int PRIMARY KEY, v text);
ALTER TABLE {{s}}.n24_always ENABLE ROW LEVEL SECURITY;
CREATE POLICY anyone ON {{s}}.n24_always FOR UPDATE TO {{p}}_app USING (true);
GRANT SELECT, UPDATE ON {{s}}.n24_always TO {{p}}_app;

-- S0028: a pinned definer function owned by a BYPASSRLS role.
CREATE FUNCTION {{s}}.f28_bypass_definer() RETURNS int LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS $$ SELECT 1 $$;

RESET ROLE;

-- L06: an app role that owns a tenant table (and so holds TRUNCATE,
-- REFERENCES and TRIGGER on it: L12).
CREATE TABLE {{s}}.t06_owned (tenant_id uuid NOT NULL, id uuid NOT NULL, PRIMARY KEY (tenant_id, id));
ALTER TABLE {{s}}.t06_owned ENABLE ROW LEVEL SECURITY;
ALTER TABLE {{s}}.t06_owned FORCE ROW LEVEL SECURITY;
CREATE POLICY tenant_all ON {{s}}.t06_owned FOR ALL TO {{p}}_app2 USING (tenant_id = (SELECT bulkhead.tenant_id()));
ALTER TABLE {{s}}.t06_owned OWNER TO {{p}}_app2;

ALTER FUNCTION {{s}}.f16_leaky(text, text) LEAKPROOF;
ALTER FUNCTION {{s}}.f28_bypass_definer() OWNER TO {{p}}_svc;
