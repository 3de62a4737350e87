// client.mjs drives bulkhead's data API with the official
// @supabase/postgrest-js client, for httpapi/postgrestjs_test.go.
//
// It runs one mode and prints one JSON object to stdout: for every step, the
// client's result {data, error, status, count} and the requests it sent.
// It asserts nothing; the Go test does. It exits non-zero only when the
// script itself breaks.
//
// Environment:
//
//	BULKHEAD_URL    base URL of the server (the client uses BULKHEAD_URL/rest/v1)
//	BULKHEAD_TOKEN  bearer token of the caller
//	BULKHEAD_MODE   scenario | seed | attack | snapshot
//
// scenario: CRUD on the caller's own tenant. Needs OWN_TENANT (the caller's
// tenant UUID), OTHER_TENANT (any other UUID), NEW_ID and NEW_ID2 (fresh
// UUIDs for upserts) and MISSING_ID (a UUID no row has).
//
// seed: inserts one project named SEED_NAME and one task on it.
//
// attack: reads and writes aimed at the rows VICTIM_PROJECT (named
// VICTIM_NAME) and VICTIM_TASK of the tenant VICTIM_TENANT. Run with another
// tenant's token it probes isolation; run with the victim's own token it is
// the positive control that shows every probe can reach a row.
//
// snapshot: every project and task the caller can see, ordered by id.

import { PostgrestClient } from '@supabase/postgrest-js';

const env = (name) => {
  const v = process.env[name];
  if (v === undefined || v === '') {
    throw new Error(`client.mjs: environment variable ${name} is not set`);
  }
  return v;
};

// Requests sent during the current step, so that a failing assertion can
// show what went over the wire.
let sent = [];
const recordingFetch = (url, init = {}) => {
  const h = new Headers(init.headers);
  const shown = {};
  for (const k of ['accept', 'prefer', 'content-type']) {
    if (h.has(k)) shown[k] = h.get(k);
  }
  sent.push({ method: init.method ?? 'GET', url: String(url), headers: shown, body: init.body ?? null });
  return fetch(url, init);
};

const db = new PostgrestClient(env('BULKHEAD_URL') + '/rest/v1', {
  headers: { Authorization: 'Bearer ' + env('BULKHEAD_TOKEN') },
  fetch: recordingFetch,
  retry: false,
});

const out = {};

// step awaits one query and records its result under name.
async function step(name, query) {
  if (name in out) throw new Error(`client.mjs: step ${name} twice`);
  sent = [];
  const r = await query;
  out[name] = {
    data: r.data ?? null,
    error: r.error ?? null,
    status: r.status,
    count: r.count ?? null,
    requests: sent,
  };
  return r;
}

// first returns the first row of a result's data (an array or an object).
const first = (r) => (Array.isArray(r?.data) ? r.data[0] : r?.data) ?? {};

async function scenario() {
  const own = env('OWN_TENANT');
  const other = env('OTHER_TENANT');
  const newID = env('NEW_ID');
  const newID2 = env('NEW_ID2');
  const missing = env('MISSING_ID');
  const projects = () => db.from('projects');
  const tasks = () => db.from('tasks');

  // Inserts.
  const alpha = first(await step('insertOne',
    projects().insert({ name: 'alpha', description: 'first project' }).select()));
  const bravo = first(await step('insertOneSingle',
    projects().insert({ name: 'bravo', description: null }).select('id,name,tenant_id').single()));
  const many = await step('insertMany',
    projects().insert([
      { name: 'charlie', description: 'has, comma (and parens)' },
      { name: 'delta' },
      { name: 'echo', description: 'mixed case' },
    ]).select());
  const byName = Object.fromEntries((many.data ?? []).map((p) => [p.name, p]));
  await step('insertMinimal', projects().insert({ name: 'foxtrot' }));
  const foxtrot = first(await step('foxtrotByName', projects().select('id').eq('name', 'foxtrot').single()));
  await step('insertTasks',
    tasks().insert([
      { project_id: alpha.id, title: 'a1', done: false },
      { project_id: alpha.id, title: 'a2', done: true },
      { project_id: bravo.id, title: 'b1', done: false },
      { project_id: byName.echo?.id, title: 'e1', done: false },
    ], { count: 'exact' }).select());
  await step('insertTaskMissingProject',
    tasks().insert({ project_id: missing, title: 'orphan', done: false }).select());
  await step('insertOtherTenant',
    projects().insert({ tenant_id: other, name: 'intruder' }).select());

  // Reads.
  const names = () => projects().select('name');
  await step('listAll', projects().select('*').order('name'));
  await step('selectColumns', projects().select('id,name').order('name'));
  await step('selectRename', projects().select('title:name,id').eq('name', 'alpha'));
  await step('eq', projects().select().eq('name', 'charlie'));
  await step('eqID', projects().select('name').eq('id', alpha.id));
  await step('neq', names().neq('name', 'alpha').order('name'));
  await step('gt', names().gt('name', 'delta').order('name'));
  await step('gte', names().gte('name', 'delta').order('name'));
  await step('lt', names().lt('name', 'charlie').order('name'));
  await step('lte', names().lte('name', 'charlie').order('name'));
  await step('like', names().like('name', '%ha%').order('name'));
  await step('likeStar', names().like('name', '*o').order('name'));
  await step('ilike', names().ilike('description', '%MIXED%'));
  await step('in', names().in('name', ['bravo', 'delta', 'nope']).order('name'));
  await step('inID', names().in('id', [alpha.id, byName.charlie?.id, missing]).order('name'));
  await step('inQuoted', names().in('description', ['has, comma (and parens)', 'first project']).order('name'));
  await step('isNull', names().is('description', null).order('name'));
  await step('notIsNull', names().not('description', 'is', null).order('name'));
  await step('notIn', names().not('name', 'in', '(alpha,bravo,charlie)').order('name'));
  await step('filterIn', names().filter('name', 'in', '(alpha,bravo)').order('name'));
  await step('likeUnderscore', names().like('name', '_lpha'));
  await step('eqTimestamp', names().eq('created_at', byName.charlie?.created_at).order('name'));
  await step('or', names().or('name.eq.alpha,description.ilike.*mixed*').order('name'));
  await step('orAnd', names().or('name.eq.bravo,and(name.gte.e,name.lt.f)').order('name'));
  await step('match', names().match({ name: 'charlie', description: 'has, comma (and parens)' }));
  await step('orderDescLimit', names().order('name', { ascending: false }).limit(2));
  await step('orderNullsFirst',
    projects().select('name,description').order('description', { ascending: true, nullsFirst: true }).order('name'));
  await step('limit', names().order('name').limit(2));
  await step('range', names().order('name').range(1, 3));
  await step('rangeCount', projects().select('name', { count: 'exact' }).order('name').range(4, 10));
  await step('countExact', projects().select('*', { count: 'exact' }));
  await step('countHead', projects().select('*', { count: 'exact', head: true }));
  await step('countHeadFiltered', projects().select('id', { count: 'exact', head: true }).like('name', '%o%'));
  await step('countPlanned', projects().select('*', { count: 'planned', head: true }));
  await step('stripNulls',
    projects().select('name,description').in('name', ['alpha', 'bravo']).order('name').stripNulls());
  await step('tasksDone', tasks().select('title').is('done', true));
  await step('tasksNotDone', tasks().select('title').eq('done', false).order('title'));
  await step('tasksByProject', tasks().select('title,project_id').eq('project_id', alpha.id).order('title'));
  await step('single', projects().select().eq('id', alpha.id).single());
  await step('singleMissing', projects().select().eq('id', missing).single());
  await step('singleMany', projects().select().like('name', '%a%').single());
  await step('maybeSingle', projects().select('name').eq('name', 'bravo').maybeSingle());
  await step('maybeSingleNone', projects().select().eq('id', missing).maybeSingle());
  await step('maybeSingleMany', projects().select().like('name', '%a%').maybeSingle());
  await step('badUUID', projects().select().eq('id', 'not-a-uuid'));
  await step('unknownColumn', projects().select('nope'));
  await step('explain', projects().select().explain());
  await step('textSearch', projects().select().textSearch('name', 'alpha'));
  await step('embed', projects().select('*, tasks(*)'));

  // A value with characters that mean something in URLs and in lists.
  const weird = 'q&a=1, (y).z+%';
  await step('insertWeird', projects().insert({ name: weird }).select('name'));
  await step('eqWeird', names().eq('name', weird));
  await step('inWeird', names().in('name', [weird, 'alpha']).order('name'));
  await step('deleteWeird', projects().delete().eq('name', weird).select('name'));

  // Transactions: tx=rollback, max-affected and single-object writes.
  await step('rollback', projects().update({ name: 'rolled back' }).eq('id', bravo.id).select('name').rollback());
  await step('maxAffectedExceeded',
    tasks().update({ title: 'too many' }).eq('project_id', alpha.id).select().maxAffected(1));
  await step('maxAffected',
    projects().update({ description: 'first project' }).eq('id', alpha.id).select('name').maxAffected(1));
  await step('updateSingleMany', tasks().update({ title: 'oops' }).eq('project_id', alpha.id).select().single());
  await step('updateSingleNone', projects().update({ name: 'ghost' }).eq('id', missing).select().single());

  // Updates.
  await step('update', projects().update({ description: 'updated' }).eq('id', bravo.id).select());
  await step('updateMinimal', projects().update({ name: 'delta2' }).eq('id', byName.delta?.id));
  await step('updateCount', tasks().update({ done: true }, { count: 'exact' }).eq('project_id', alpha.id));
  await step('updateNoFilter', projects().update({ description: 'everything' }));
  await step('updateOtherTenant', projects().update({ tenant_id: other }).eq('id', alpha.id).select());

  // Deletes.
  await step('delete', projects().delete().eq('id', foxtrot.id));
  await step('deleteSelect', projects().delete().eq('id', byName.echo?.id).select('name'));
  await step('deleteCount', tasks().delete({ count: 'exact' }).eq('title', 'b1'));
  await step('deleteMissing', projects().delete({ count: 'exact' }).eq('id', missing));
  await step('deleteNoFilter', tasks().delete());

  // Upserts (the conflict target is the primary key, tenant_id and id).
  await step('upsertUpdate',
    projects().upsert({ id: alpha.id, name: 'alpha', description: 'upserted' }).select());
  await step('upsertOnConflictID',
    projects().upsert({ id: alpha.id, name: 'alpha', description: 'on id' }, { onConflict: 'id' }).select());
  await step('upsertInsert', projects().upsert({ id: newID, name: 'golf' }).select());
  await step('upsertIgnore',
    projects().upsert({ id: alpha.id, name: 'ignored' }, { ignoreDuplicates: true }).select());
  await step('upsertMany',
    projects().upsert([
      { id: alpha.id, name: 'alpha', description: 'upserted twice' },
      { id: newID2, name: 'hotel', description: null },
    ]).select());
  await step('insertOwnTenant', projects().insert({ tenant_id: own, name: 'india' }).select());

  // What is left.
  await step('projectsAfter', projects().select('*').order('name'));
  await step('tasksAfter', tasks().select('*').order('title'));
}

async function seed() {
  const name = env('SEED_NAME');
  const p = first(await step('project', db.from('projects').insert({ name, description: 'seed ' + name }).select()));
  await step('task', db.from('tasks').insert({ project_id: p.id, title: 'task of ' + name, done: false }).select());
}

async function attack() {
  const project = env('VICTIM_PROJECT');
  const task = env('VICTIM_TASK');
  const tenant = env('VICTIM_TENANT');
  const name = env('VICTIM_NAME');
  const missing = env('MISSING_ID');
  const projects = () => db.from('projects');
  const tasks = () => db.from('tasks');

  // Reads: by listing, by id, by list, by or, through the foreign key and
  // by tenant.
  await step('listProjects', projects().select('*'));
  await step('listTasks', tasks().select('*'));
  await step('eqProject', projects().select().eq('id', project));
  await step('eqTask', tasks().select().eq('id', task));
  await step('inProject', projects().select().in('id', [project, missing]));
  await step('orProject', projects().select().or(`id.eq.${project},name.eq.${name}`));
  await step('likeName', projects().select().like('name', name));
  await step('tasksByProject', tasks().select().eq('project_id', project));
  await step('eqTenant', projects().select('*', { count: 'exact' }).eq('tenant_id', tenant));
  await step('singleProject', projects().select().eq('id', project).single());
  await step('maybeSingleProject', projects().select().eq('id', project).maybeSingle());

  // Writes by id.
  await step('updateProject', projects().update({ name: 'pwned' }).eq('id', project).select());
  await step('updateTask', tasks().update({ title: 'pwned', done: true }).eq('id', task).select());
  await step('updateCount', projects().update({ description: 'pwned' }, { count: 'exact' }).eq('id', project));
  await step('updateIn', projects().update({ description: 'pwned in' }).in('id', [project]).select());
  await step('updateSetTenant', projects().update({ tenant_id: tenant }).eq('id', project).select());

  // Inserts that point at the victim.
  await step('insertTaskOnProject',
    tasks().insert({ project_id: project, title: 'planted', done: false }).select());
  await step('insertProjectWithTenant',
    projects().insert({ tenant_id: tenant, name: 'planted' }).select());
  await step('insertTaskWithTenant',
    tasks().insert({ tenant_id: tenant, project_id: project, title: 'planted', done: false }).select());

  // Deletes by id.
  await step('deleteTask', tasks().delete({ count: 'exact' }).eq('id', task).select());
  await step('deleteProject', projects().delete({ count: 'exact' }).eq('id', project).select());

  // Last, because it makes a row with the victim's id in the caller's
  // tenant: an upsert on the primary key (tenant_id, id).
  await step('upsertProject', projects().upsert({ id: project, name: 'pwned upsert' }).select());
}

async function snapshot() {
  await step('projects', db.from('projects').select('*').order('id'));
  await step('tasks', db.from('tasks').select('*').order('id'));
}

const modes = { scenario, seed, attack, snapshot };
const mode = env('BULKHEAD_MODE');
if (!(mode in modes)) {
  throw new Error(`client.mjs: unknown BULKHEAD_MODE ${mode}`);
}
await modes[mode]();
process.stdout.write(JSON.stringify(out) + '\n');
