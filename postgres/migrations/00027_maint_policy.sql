-- +goose Up
-- bulkhead_maint reaches the pool's tenant rows through a policy of its
-- own, maint_all (tenant-table version 5; silos get it from
-- `bulkhead migrate`). Offboarding deletes a tenant's rows as
-- bulkhead_maint, a move copies them as bulkhead_maint, and the probe
-- check looks up the owners of ids as bulkhead_maint. It used to need
-- BYPASSRLS for that, and only a superuser may make a BYPASSRLS role on
-- PostgreSQL 15 and earlier: with the admin role of a managed service
-- (not a superuser), Setup makes bulkhead_maint without BYPASSRLS, and
-- under forced row security it would see none of the rows it must delete
-- or copy. The policy names bulkhead_maint only; no app role is a member
-- of it. With BYPASSRLS it changes nothing.
SET LOCAL ROLE bulkhead_owner;

DROP POLICY IF EXISTS maint_all ON app.projects;
CREATE POLICY maint_all ON app.projects AS PERMISSIVE FOR ALL TO bulkhead_maint USING (true) WITH CHECK (true);
DROP POLICY IF EXISTS maint_all ON app.tasks;
CREATE POLICY maint_all ON app.tasks AS PERMISSIVE FOR ALL TO bulkhead_maint USING (true) WITH CHECK (true);

RESET ROLE;

-- +goose Down
SELECT 'forward-only';
