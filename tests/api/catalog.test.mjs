// catalog.test.mjs - the Catalog Service API on datasets: create, read, JSON Patch, delete; list
// paging (limit default 20, max 100, limit=0 rejected), orderBy, properties, simple and property
// filters, tags, createdAfter/createdBefore; and sandbox isolation (x-sandbox-name).
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { useServer } from './lib/server.mjs';
import {
  clientFor, XDM, CATALOG, expectStatus, expectAepError, createSchema, createDataset, getDataset, refId,
  createBatch,
} from './lib/aep.mjs';

const DS = `${CATALOG}/dataSets`;

async function simpleSchema(c, title = 'Catalog Test Schema') {
  const s = await createSchema(c, { title, classRef: XDM.profile, fieldGroups: [XDM.personDetails] });
  return s['$id'];
}

async function list(c, query) {
  const res = expectStatus(await c.get(DS, { query }), 200, `list datasets ${JSON.stringify(query)}`);
  assert.ok(res.json && typeof res.json === 'object' && !Array.isArray(res.json),
    `a list is an object keyed by id\n${res.describe()}`);
  return res.json;
}

// Every dataset matching `query`, page by page (100 at a time).
async function listAll(c, query = {}) {
  const all = {};
  for (let start = 0; ; start += 100) {
    const page = await list(c, { ...query, start, limit: 100 });
    Object.assign(all, page);
    if (Object.keys(page).length < 100) return all;
    assert.ok(start < 10_000, 'paging does not end');
  }
}

const names = (obj) => Object.values(obj).map((d) => d.name);

describe('Catalog API: datasets', () => {
  const fx = useServer();
  const c = clientFor(fx);
  let schemaId;

  it('setup: a schema for the datasets', async () => {
    schemaId = await simpleSchema(c);
  });

  describe('create, read, patch, delete', () => {
    let id;

    it('creates a dataset: 201 ["@/dataSets/<id>"], then GET keyed by id', async () => {
      id = await createDataset(c, { name: 'Catalog CRUD', schemaId, extra: { description: 'first' },
        tags: { team: ['data'] } });
      const res = expectStatus(await c.get(`${DS}/${id}`), 200, 'get dataset');
      assert.deepEqual(Object.keys(res.json), [id], res.describe());
      const d = res.json[id];
      assert.equal(d.name, 'Catalog CRUD');
      assert.equal(d.description, 'first');
      assert.equal(d.schemaRef.id, schemaId);
      assert.deepEqual(d.tags.team, ['data']);
      assert.equal(d.imsOrg, 'ingot-tests@AdobeOrg', 'imsOrg from x-gw-ims-org-id');
      assert.equal(d.createdClient, 'ingot-api-tests', 'createdClient from x-api-key');
      assert.ok(Number.isInteger(d.created) && Math.abs(d.created - Date.now()) < 60_000, `created in ms: ${d.created}`);
      assert.ok(Number.isInteger(d.updated) && d.updated >= d.created, `updated: ${d.updated}`);
    });

    it('patches with JSON Patch (tags and name)', async () => {
      const prev = await getDataset(c, id);
      await sleep(5);
      const res = expectStatus(await c.patch(`${DS}/${id}`, [
        { op: 'add', path: '/tags/unifiedProfile', value: ['enabled:true'] },
        { op: 'add', path: '/tags/unifiedIdentity', value: ['enabled:true'] },
        { op: 'replace', path: '/name', value: 'Catalog CRUD renamed' },
      ], { contentType: 'application/json-patch+json' }), 200, 'JSON Patch dataset');
      assert.equal(refId(res, 'dataSets'), id);
      const d = await getDataset(c, id);
      assert.equal(d.name, 'Catalog CRUD renamed');
      assert.deepEqual(d.tags, { team: ['data'], unifiedProfile: ['enabled:true'], unifiedIdentity: ['enabled:true'] });
      assert.equal(d.created, prev.created, 'created does not change');
      assert.ok(d.updated > prev.updated, `updated moves on: ${prev.updated} -> ${d.updated}`);

      expectStatus(await c.patch(`${DS}/${id}`, [{ op: 'remove', path: '/tags/unifiedIdentity' }],
        { contentType: 'application/json-patch+json' }), 200, 'remove a tag');
      assert.deepEqual((await getDataset(c, id)).tags, { team: ['data'], unifiedProfile: ['enabled:true'] });
    });

    it('patches with a plain JSON object (application/json)', async () => {
      expectStatus(await c.patch(`${DS}/${id}`, { description: 'merged' }, { contentType: 'application/json' }),
        200, 'merge-patch dataset');
      const d = await getDataset(c, id);
      assert.equal(d.description, 'merged');
      assert.equal(d.name, 'Catalog CRUD renamed', 'other fields stay');
    });

    it('rejects bad requests with AEP errors', async () => {
      expectAepError(await c.post(DS, '{"name": "broken"', { contentType: 'application/json' }), 400,
        'malformed JSON body');
      expectAepError(await c.patch(`${DS}/${id}`, [{ op: 'frobnicate', path: '/name', value: 'x' }],
        { contentType: 'application/json-patch+json' }), 400, 'unknown JSON Patch op');
      expectAepError(await c.patch(`${DS}/${id}`, [{ op: 'remove', path: '/tags/nosuchtag' }],
        { contentType: 'application/json-patch+json' }), 400, 'JSON Patch remove of a missing path');
      expectAepError(await c.post(DS, { name: 'no such schema',
        schemaRef: { id: 'https://ns.adobe.com/techmarketingdemos/schemas/0000deadbeef', contentType: 'application/vnd.adobe.xed-full+json;version=1' } }),
      [400, 404], 'schemaRef to a schema that does not exist');
      expectAepError(await c.get(`${DS}/000000000000000000000000`), 404, 'unknown dataset id');
      // The failed patches left the dataset as it was.
      assert.equal((await getDataset(c, id)).name, 'Catalog CRUD renamed');
    });

    it('deletes a dataset: 200, then 404', async () => {
      const res = expectStatus(await c.del(`${DS}/${id}`), 200, 'delete dataset');
      assert.equal(refId(res, 'dataSets'), id);
      expectAepError(await c.get(`${DS}/${id}`), 404, 'get deleted dataset');
      expectAepError(await c.del(`${DS}/${id}`), 404, 'delete again');
      assert.equal((await list(c, { name: 'Catalog CRUD renamed' }))[id], undefined, 'not listed any more');
    });
  });

  describe('lists: paging, orderBy, properties, filters', () => {
    const p = c.inSandbox('paging'); // this sandbox holds exactly these 105 datasets
    const created = new Map();

    it('setup: 105 datasets in sandbox "paging"', async () => {
      const sid = await simpleSchema(p);
      for (let i = 0; i < 105; i++) {
        const name = `ds-${String(i).padStart(3, '0')}`;
        created.set(await createDataset(p, { name, schemaId: sid, tags: { team: [i % 3 === 0 ? 'red' : 'blue'] } }), name);
      }
    });

    it('pages with limit (default 20, at most 100) and start', async () => {
      assert.equal(Object.keys(await list(p, {})).length, 20, 'default page size');
      assert.equal(Object.keys(await list(p, { limit: 5 })).length, 5);
      assert.equal(Object.keys(await list(p, { limit: 100 })).length, 100);
      assert.equal(Object.keys(await list(p, { start: 100, limit: 100 })).length, 5);
      assert.equal(Object.keys(await list(p, { start: 200 })).length, 0);
      // More than 100 is either refused or capped, never honoured.
      const res = await p.get(DS, { query: { limit: 101 } });
      if (res.status === 200) assert.ok(Object.keys(res.json).length <= 100, `limit=101 capped\n${res.describe()}`);
      else expectAepError(res, 400, 'limit=101');

      const seen = new Set();
      for (let start = 0; start < 105; start += 30) {
        const page = await list(p, { start, limit: 30 });
        for (const k of Object.keys(page)) {
          assert.ok(!seen.has(k), `dataset ${k} on two pages`);
          seen.add(k);
        }
      }
      assert.deepEqual([...seen].sort(), [...created.keys()].sort(), 'the pages cover every dataset once');
    });

    it('rejects invalid limits with 400', async () => {
      for (const limit of ['0', '-1', 'abc'])
        expectAepError(await p.get(DS, { query: { limit } }), 400, `limit=${limit}`);
      expectAepError(await p.get(DS, { query: { start: '-5' } }), 400, 'start=-5');
    });

    it('orders with orderBy', async () => {
      assert.deepEqual(names(await list(p, { orderBy: 'desc:name', limit: 3 })), ['ds-104', 'ds-103', 'ds-102']);
      assert.deepEqual(names(await list(p, { orderBy: 'asc:name', limit: 3 })), ['ds-000', 'ds-001', 'ds-002']);
      assert.deepEqual(names(await list(p, { orderBy: 'name', limit: 3 })), ['ds-000', 'ds-001', 'ds-002'],
        'ascending by default');
      assert.deepEqual(names(await list(p, { orderBy: 'desc:name', start: 100, limit: 10 })),
        ['ds-004', 'ds-003', 'ds-002', 'ds-001', 'ds-000']);
      const byCreated = Object.values(await list(p, { orderBy: 'desc:created', limit: 100 })).map((d) => d.created);
      assert.equal(byCreated.length, 100);
      for (let i = 1; i < byCreated.length; i++) assert.ok(byCreated[i - 1] >= byCreated[i], 'desc:created');
    });

    it('returns only the asked properties', async () => {
      const page = await list(p, { properties: 'name', limit: 10 });
      assert.equal(Object.keys(page).length, 10);
      for (const [k, d] of Object.entries(page)) {
        assert.deepEqual(Object.keys(d), ['name'], `properties=name on ${k}: ${JSON.stringify(d)}`);
        assert.equal(d.name, created.get(k));
      }
      const two = await list(p, { properties: 'name,tags', limit: 5 });
      for (const d of Object.values(two)) assert.deepEqual(Object.keys(d).sort(), ['name', 'tags'], JSON.stringify(d));
    });

    it('filters by value, list of values and negation', async () => {
      assert.deepEqual(names(await list(p, { name: 'ds-007' })), ['ds-007']);
      assert.deepEqual(names(await list(p, { name: 'ds-001,ds-002' })).sort(), ['ds-001', 'ds-002']);
      const notOne = await listAll(p, { name: '!ds-001' });
      assert.equal(Object.keys(notOne).length, 104);
      assert.ok(!names(notOne).includes('ds-001'));
      assert.equal(Object.keys(await listAll(p, { name: '!ds-001,ds-002' })).length, 103, 'none of a list');
      assert.equal(Object.keys(await list(p, { name: 'no-such-name' })).length, 0);
    });

    it('filters with property conditions (==, >, exists)', async () => {
      assert.deepEqual(names(await list(p, { property: 'name==ds-050' })), ['ds-050']);
      assert.deepEqual(names(await listAll(p, { property: 'name>ds-100' })).sort(), ['ds-101', 'ds-102', 'ds-103', 'ds-104']);
      assert.equal(Object.keys(await listAll(p, { property: 'name!=ds-050' })).length, 104);
      assert.equal(Object.keys(await listAll(p, { property: 'tags' })).length, 105, 'bare name: exists');
      assert.equal(Object.keys(await listAll(p, { property: '!tags' })).length, 0, '!name: does not exist');
    });

    it('filters with a regular-expression property condition (~)', async () => {
      assert.deepEqual(names(await listAll(p, { property: 'name~^ds-01' })).sort(),
        Array.from({ length: 10 }, (_, i) => `ds-01${i}`));
    });

    it('filters by tags, and filters combine with AND', async () => {
      const red = await listAll(p, { tags: 'team:red' });
      assert.equal(Object.keys(red).length, 35);
      for (const d of Object.values(red)) assert.deepEqual(d.tags.team, ['red']);
      assert.equal(Object.keys(await listAll(p, { tags: 'team:*' })).length, 105, 'tag value wildcard');
      assert.equal(Object.keys(await listAll(p, { tags: 'team:green' })).length, 0);
      assert.deepEqual(names(await list(p, { tags: 'team:red', name: 'ds-000,ds-001,ds-003', orderBy: 'name' })),
        ['ds-000', 'ds-003']);
    });
  });

  it('filters by createdAfter and createdBefore (Unix ms)', async () => {
    const t = c.inSandbox('timing');
    const sid = await simpleSchema(t);
    const ids = [];
    for (const name of ['t1', 't2', 't3']) {
      ids.push(await createDataset(t, { name, schemaId: sid }));
      await sleep(40);
    }
    const created = [];
    for (const id of ids) created.push((await getDataset(t, id)).created);
    assert.ok(created[1] - created[0] >= 2 && created[2] - created[1] >= 2, `distinct created times: ${created}`);
    const mid01 = Math.floor((created[0] + created[1]) / 2);
    const mid12 = Math.floor((created[1] + created[2]) / 2);
    assert.deepEqual(names(await list(t, { createdAfter: mid01 })).sort(), ['t2', 't3']);
    assert.deepEqual(names(await list(t, { createdBefore: mid12 })).sort(), ['t1', 't2']);
    assert.deepEqual(names(await list(t, { createdAfter: mid01, createdBefore: mid12 })), ['t2']);
    assert.deepEqual(names(await list(t, { createdAfter: created[2] + 1000 })), []);
  });

  it('keeps sandboxes apart: a prod dataset is invisible in dev', async () => {
    const prodId = await createDataset(c, { name: 'only in prod', schemaId });
    const dev = c.inSandbox('dev');
    expectAepError(await dev.get(`${DS}/${prodId}`), 404, 'prod dataset read from dev');
    expectAepError(await dev.patch(`${DS}/${prodId}`, [{ op: 'replace', path: '/name', value: 'x' }],
      { contentType: 'application/json-patch+json' }), 404, 'prod dataset patched from dev');
    expectAepError(await dev.del(`${DS}/${prodId}`), 404, 'prod dataset deleted from dev');
    assert.equal((await listAll(dev))[prodId], undefined, 'not listed in dev');
    // Schemas are per sandbox too: the prod schema does not exist in dev.
    expectAepError(await dev.post(DS, { name: 'x', schemaRef: { id: schemaId,
      contentType: 'application/vnd.adobe.xed-full+json;version=1' } }), [400, 404], 'prod schema used from dev');

    const devSchema = await simpleSchema(dev, 'Dev Schema');
    const devId = await createDataset(dev, { name: 'only in dev', schemaId: devSchema });
    assert.equal((await getDataset(dev, devId)).name, 'only in dev');
    expectAepError(await c.get(`${DS}/${devId}`), 404, 'dev dataset read from prod');
    assert.deepEqual(names(await listAll(dev)), ['only in dev']);
    assert.equal((await getDataset(c, prodId)).name, 'only in prod', 'prod dataset untouched');
    // A batch of a dev dataset cannot be created from prod.
    expectStatus(await c.post('/data/foundation/import/batches', { datasetId: devId, inputFormat: { format: 'json' } }),
      [400, 404], 'batch for a dev dataset created in prod');
  });

  it('shows an import batch in the Catalog', async () => {
    const ds = await createDataset(c, { name: 'batch holder', schemaId });
    const batchId = await createBatch(c, ds);
    const res = expectStatus(await c.get(`${CATALOG}/batches/${batchId}`), 200, 'get batch');
    const b = res.json[batchId];
    assert.ok(b, res.describe());
    assert.equal(b.status, 'loading');
    assert.ok(b.relatedObjects.some((o) => o.type === 'dataSet' && o.id === ds), JSON.stringify(b));
    assert.equal(b.imsOrg, 'ingot-tests@AdobeOrg');
    const listed = expectStatus(await c.get(`${CATALOG}/batches`, { query: { dataSet: ds } }), 200, 'list batches');
    assert.deepEqual(Object.keys(listed.json), [batchId], listed.describe());
    expectAepError(await c.get(`${CATALOG}/batches/nosuchbatch0000`), 404, 'unknown batch');
  });
});
