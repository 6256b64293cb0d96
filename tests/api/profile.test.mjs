// profile.test.mjs - the Luma tutorial's profile moment through ingot's AEP APIs: loyalty, CRM,
// offline purchases and the product catalog loaded into Profile- and Identity-enabled datasets,
// then the identity graph (Identity Service), merged profiles under three merge policies
// (Profile Access, mergePolicies), the purchase event, the identity counts of
// notes/luma-tutorial.md, no profile for product SKUs, the ig_load / ps_load records on every
// batch, and a REVERT that takes the loyalty links back out.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { useServer, TENANT } from './lib/server.mjs';
import {
  clientFor, XDM, SR, IMPORT, expectStatus, expectAepError, createNamespace, createFieldGroup,
  createSchema, createIdentityDescriptor, createDataset, ingestFile, assertBatchSuccess, getBatch,
} from './lib/aep.mjs';
import {
  TENANT_KEY, lumaPath, readJson, createLumaIdentityFieldGroups, createLoyaltySchema,
  createCrmSchema, createOfflinePurchaseSchema, LOYALTY_ID_PATH, CRM_ID_PATH,
} from './lib/luma.mjs';

const PROFILE_TAGS = { unifiedProfile: ['enabled:true'], unifiedIdentity: ['enabled: true'] };
const UPS = '/data/core/ups';
const ENTITIES = `${UPS}/access/entities`;
const MP = `${UPS}/config/mergePolicies`;
const IDS = '/data/core/identity';
const LOYALTY_ID = '5625458';
const CRM_ID = '112ca06ed53d3db37e4cea49cc45b71e';

// The product CSV is Mac Roman; only ™ (0xAA) and ® (0xA8) occur above ASCII.
function readProducts() {
  const raw = fs.readFileSync(lumaPath('luma-products.csv'));
  let text = '';
  for (const b of raw) text += b === 0xaa ? '\u2122' : b === 0xa8 ? '\u00ae' : String.fromCharCode(b);
  const [header, ...rows] = text.split(/\r?\n/).filter((l) => l.length > 0);
  const cols = header.split(',');
  return rows.map((line) => Object.fromEntries(line.split(',').map((v, i) => [cols[i], v])));
}

// The tutorial's "Map CSV to XDM schema" mapping, done here by hand.
function productRecord(p) {
  const rec = { productSku: p.SKU, productName: p.Name, productCategory: p.Category,
    productPrice: Number(p.Price) };
  if (p.Color) rec.productColor = p.Color;
  if (p.Size) rec.productSize = p.Size;
  return { [TENANT_KEY]: rec };
}

function profileQuery(entityId, entityIdNS, extra = {}) {
  return { 'schema.name': '_xdm.context.profile', entityId, entityIdNS, ...extra };
}

// The one profile of a lookup answer {"<entityId>": {...}}.
function onlyProfile(res) {
  const keys = Object.keys(res.json || {});
  assert.equal(keys.length, 1, `one profile\n${res.describe()}`);
  const p = res.json[keys[0]];
  assert.equal(p.entityId, keys[0], `keyed by entityId\n${res.describe()}`);
  return p;
}

// Wait until both downstream stages are recorded on a batch (the runner polls every 500 ms).
async function waitDownstream(c, batchId, keys = ['identityGraph', 'profile'], timeoutMs = 60_000) {
  const t0 = Date.now();
  for (;;) {
    const b = await getBatch(c, batchId);
    if (keys.every((k) => b.downstream && b.downstream[k])) return b;
    if (Date.now() - t0 > timeoutMs)
      assert.fail(`batch ${batchId}: downstream ${keys.join(',')} not recorded: ${JSON.stringify(b).slice(0, 2000)}`);
    await sleep(100);
  }
}

function checkStages(b, { records, fragments, events = 0 }) {
  const ig = b.downstream.identityGraph;
  const ps = b.downstream.profile;
  const shown = JSON.stringify(b.downstream);
  assert.equal(ig.status, 'success', shown);
  assert.equal(ig.eventCode, 'ig_load_success', shown);
  assert.equal(ps.status, 'success', shown);
  assert.equal(ps.eventCode, 'ps_load_success', shown);
  assert.ok(ig.completed <= ps.completed, `ig_load_success before ps_load_success: ${shown}`);
  assert.equal(ig.recordCount, records, shown);
  assert.equal(ps.recordCount, records, shown);
  assert.equal(ps.fragmentCount, fragments, shown);
  assert.equal(ps.eventCount, events, shown);
}

describe('Luma profiles: identity graph, merge policies and lookups', () => {
  const fx = useServer();
  const c = clientFor(fx);
  const ids = {};
  const files = {
    loyalty: lumaPath('luma-loyalty.json'),
    crm: lumaPath('luma-crm.json'),
    offline: lumaPath('luma-offline-purchases.json'),
  };

  it('sets up namespaces, schemas with identities, and five Profile-enabled datasets', async () => {
    await createNamespace(c, { name: 'Luma Loyalty Id', code: 'lumaLoyaltyId', idType: 'Cross_device' });
    await createNamespace(c, { name: 'Luma CRM Id', code: 'lumaCrmId', idType: 'Cross_device' });
    await createNamespace(c, { name: 'Luma Product SKU', code: 'lumaProductSKU', idType: 'NON_PEOPLE' });
    const { profileFg, eventFg } = await createLumaIdentityFieldGroups(c);
    const loyalty = await createLoyaltySchema(c, profileFg['$id']);
    const crm = await createCrmSchema(c, profileFg['$id']);
    const offline = await createOfflinePurchaseSchema(c, eventFg['$id']);
    await createIdentityDescriptor(c, { schemaId: loyalty['$id'], sourceProperty: LOYALTY_ID_PATH,
      namespace: 'lumaLoyaltyId', primary: true });
    await createIdentityDescriptor(c, { schemaId: loyalty['$id'], sourceProperty: CRM_ID_PATH,
      namespace: 'lumaCrmId', primary: false });
    await createIdentityDescriptor(c, { schemaId: crm['$id'], sourceProperty: CRM_ID_PATH,
      namespace: 'lumaCrmId', primary: true });
    await createIdentityDescriptor(c, { schemaId: offline['$id'], sourceProperty: LOYALTY_ID_PATH,
      namespace: 'lumaLoyaltyId', primary: true });

    // The product catalog: a custom Record class, its field group, productSku primary in a
    // non-people namespace.
    const cls = expectStatus(await c.post(`${SR}/tenant/classes`, {
      title: 'Luma Product Catalog Class', description: 'Products of Luma', type: 'object',
      allOf: [{ $ref: 'https://ns.adobe.com/xdm/data/record' }],
    }), 201, 'create the product class').json;
    const productFg = await createFieldGroup(c, {
      title: 'Luma Product Catalog field group', description: 'product fields', type: 'object',
      'meta:intendedToExtend': [cls['$id']],
      definitions: { product: { properties: { [TENANT_KEY]: { type: 'object', required: ['productSku'],
        properties: {
          productSku: { type: 'string' }, productName: { type: 'string' },
          productCategory: { type: 'string' }, productColor: { type: 'string' },
          productSize: { type: 'string' }, productPrice: { type: 'number' },
        } } } } },
      allOf: [{ $ref: '#/definitions/product' }],
    });
    const product = await createSchema(c, { title: 'Luma Product Catalog Schema', classRef: cls['$id'],
      fieldGroups: [productFg['$id']] });
    await createIdentityDescriptor(c, { schemaId: product['$id'],
      sourceProperty: `/${TENANT_KEY}/productSku`, namespace: 'lumaProductSKU', primary: true });

    ids.loyaltyDs = await createDataset(c, { name: 'Luma Loyalty Dataset', schemaId: loyalty['$id'], tags: PROFILE_TAGS });
    ids.crmDs = await createDataset(c, { name: 'Luma CRM Dataset', schemaId: crm['$id'], tags: PROFILE_TAGS });
    ids.offlineDs = await createDataset(c, { name: 'Luma Offline Purchase Events Dataset',
      schemaId: offline['$id'], tags: PROFILE_TAGS });
    ids.productDs = await createDataset(c, { name: 'Luma Product Catalog Dataset', schemaId: product['$id'],
      tags: PROFILE_TAGS });
    // A dataset that is not enabled: its rows never reach the graph or the profile store.
    ids.plainDs = await createDataset(c, { name: 'Loyalty copy, not enabled', schemaId: loyalty['$id'] });
  });

  it('loads loyalty, then CRM, offline purchases and products; ig then ps is recorded on each batch', async () => {
    const load = async (ds, fileName, data) => {
      const { batchId, batch } = await ingestFile(c, ds, { fileName, data });
      assertBatchSuccess(batch, fileName);
      return { batchId, batch: await waitDownstream(c, batchId) };
    };
    const loyalty = await load(ids.loyaltyDs, 'luma-loyalty.json', { file: files.loyalty });
    ids.loyaltyBatch = loyalty.batchId;
    checkStages(loyalty.batch, { records: 1000, fragments: 1000 });
    const ig = loyalty.batch.downstream.identityGraph;
    assert.equal(ig.identityCount, 1784, `1000 loyalty ids and 784 crm ids: ${JSON.stringify(ig)}`);
    assert.equal(ig.linkCount, 1000, JSON.stringify(ig));
    // Lookups answer each batch's data as soon as its profile stage is recorded (the common
    // case is served from stored answers, rebuilt in the stage's own transaction).
    const first = onlyProfile(expectStatus(await c.get(ENTITIES,
      { query: profileQuery(CRM_ID, 'lumaCrmId') }), 200, 'crm id after the loyalty batch'));
    assert.equal(first.entity.person.name.firstName, 'Daniel', JSON.stringify(first));
    assert.deepEqual(first.tags, [ids.loyaltyBatch]);

    const crm = await load(ids.crmDs, 'luma-crm.json', { file: files.crm });
    ids.crmBatch = crm.batchId;
    checkStages(crm.batch, { records: 1001, fragments: 1001 });
    const second = onlyProfile(expectStatus(await c.get(ENTITIES,
      { query: profileQuery(LOYALTY_ID, 'lumaLoyaltyId') }), 200, 'loyalty id after the CRM batch'));
    assert.equal(second.entity.person.name.firstName, 'Danny', JSON.stringify(second));
    assert.deepEqual([...second.tags].sort(), [ids.loyaltyBatch, ids.crmBatch].sort());
    const offline = await load(ids.offlineDs, 'luma-offline-purchases.json', { file: files.offline });
    ids.offlineBatch = offline.batchId;
    checkStages(offline.batch, { records: 1000, fragments: 0, events: 1000 });

    ids.products = readProducts();
    assert.equal(ids.products.length, 92, 'reference data');
    const lines = ids.products.map((p) => JSON.stringify(productRecord(p))).join('\n');
    const products = await load(ids.productDs, 'luma-products.json', lines);
    const pig = products.batch.downstream.identityGraph;
    const pps = products.batch.downstream.profile;
    assert.equal(pig.identityCount, 0, `SKUs stay out of the graph: ${JSON.stringify(pig)}`);
    assert.equal(pig.skipped.nonPeopleNamespace, 92, JSON.stringify(pig));
    assert.equal(pps.fragmentCount, 0, `no profile fragments for SKUs: ${JSON.stringify(pps)}`);
    assert.equal(pps.skipped.nonPeoplePrimaryIdentity, 92, JSON.stringify(pps));

    const { batchId, batch } = await ingestFile(c, ids.plainDs, { fileName: 'copy.json',
      data: JSON.stringify([{ [TENANT_KEY]: { systemIdentifier: { loyaltyId: '999000111' } },
        person: { name: { firstName: 'Nobody' } } }]) });
    assertBatchSuccess(batch, 'not-enabled dataset');
    ids.plainBatch = batchId;
  });

  it('finds one merged profile by the loyalty id and by the CRM id (default policy: Danny, Portland)', async () => {
    const byLoyalty = onlyProfile(expectStatus(await c.get(ENTITIES,
      { query: profileQuery(LOYALTY_ID, 'lumaLoyaltyId') }), 200, 'lookup loyalty id'));
    const byCrm = onlyProfile(expectStatus(await c.get(ENTITIES,
      { query: profileQuery(CRM_ID, 'lumaCrmId') }), 200, 'lookup crm id'));
    assert.equal(byLoyalty.entityId, byCrm.entityId, 'the same profile');
    assert.deepEqual(byLoyalty.entity, byCrm.entity);
    for (const p of [byLoyalty, byCrm]) {
      assert.equal(p.entity.person.name.firstName, 'Danny', JSON.stringify(p));
      assert.equal(p.entity.person.name.lastName, 'Wright');
      assert.equal(p.entity.homeAddress.city, 'Portland');
      assert.equal(p.entity.personalEmail.address, 'dwright@enablementadobe.com');
      assert.equal(p.entity.loyalty.tier, 'gold', 'loyalty attributes merged in');
      assert.deepEqual(p.entity.identityMap.lumaLoyaltyId, [{ id: LOYALTY_ID }]);
      assert.deepEqual(p.entity.identityMap.lumaCrmId, [{ id: CRM_ID }]);
      assert.equal(p.identityGraph.length, 2, 'both identities in the graph');
      assert.deepEqual([...p.sources].sort(), [ids.loyaltyDs, ids.crmDs].sort());
      assert.deepEqual([...p.tags].sort(), [ids.loyaltyBatch, ids.crmBatch].sort());
      assert.match(p.lastModifiedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    }
    // The entityId is an XID: it finds the profile without a namespace.
    const byXid = onlyProfile(expectStatus(await c.get(ENTITIES,
      { query: { 'schema.name': '_xdm.context.profile', entityId: byCrm.entityId } }), 200, 'lookup by XID'));
    assert.equal(byXid.entityId, byCrm.entityId);
    // fields keeps only what was asked for.
    const some = onlyProfile(expectStatus(await c.get(ENTITIES, { query: profileQuery(CRM_ID, 'lumaCrmId',
      { fields: 'person.name.firstName,homeAddress' }) }), 200, 'fields'));
    assert.deepEqual(some.entity, { person: { name: { firstName: 'Danny' } }, homeAddress: { city: 'Portland' } });
    // POST answers several identities; an unknown one with AEP's empty entity.
    const post = expectStatus(await c.post(ENTITIES, { schema: { name: '_xdm.context.profile' },
      identities: [{ entityId: LOYALTY_ID, entityIdNS: { code: 'lumaLoyaltyId' } },
        { entityId: 'no-such-id', entityIdNS: { code: 'lumaCrmId' } }] }), 200, 'POST lookup');
    assert.equal(post.json[byCrm.entityId].entity.person.name.firstName, 'Danny', post.describe());
    assert.deepEqual(post.json['no-such-id'], { entityId: 'no-such-id', sources: [''], entity: {},
      lastModifiedAt: '1970-01-01T00:00:00Z' });
  });

  it('has exactly one purchase event for loyalty id 5625458', async () => {
    const res = expectStatus(await c.get(ENTITIES, { query: { 'schema.name': '_xdm.context.experienceevent',
      'relatedSchema.name': '_xdm.context.profile', relatedEntityId: LOYALTY_ID, relatedEntityIdNS: 'lumaLoyaltyId' } }),
    200, 'events of 5625458');
    assert.equal(res.json.children.length, 1, res.describe());
    const ev = res.json.children[0];
    assert.equal(ev.entityId, 'e722bbcc-9653-4715-8ff6-545b314061f2');
    assert.equal(ev.timestamp, Date.UTC(2020, 7, 11));
    assert.equal(ev.entity.commerce.order.purchaseID, '805-472-642-1090');
    assert.equal(ev.entity.commerce.order.priceTotal, 252.19);
    assert.equal(ev.entity.productListItems.length, 4);
    assert.equal(res.json._page.count, 1);
    // The same event through the CRM id: the graph links them.
    const viaCrm = expectStatus(await c.get(ENTITIES, { query: { 'schema.name': '_xdm.context.experienceevent',
      'relatedSchema.name': '_xdm.context.profile', relatedEntityId: CRM_ID, relatedEntityIdNS: 'lumaCrmId' } }),
    200, 'events via the CRM id');
    assert.equal(viaCrm.json.children.length, 1, viaCrm.describe());
    // A time window that excludes it.
    const none = expectStatus(await c.get(ENTITIES, { query: { 'schema.name': '_xdm.context.experienceevent',
      'relatedSchema.name': '_xdm.context.profile', relatedEntityId: LOYALTY_ID, relatedEntityIdNS: 'lumaLoyaltyId',
      startTime: String(Date.UTC(2021, 0, 1)) } }), 200, 'events after 2021');
    assert.equal(none.json.children.length, 0, none.describe());
  });

  it('switches merge policy: Loyalty Prioritized gives Daniel, Loyalty Only hides CRM', async () => {
    const prio = expectStatus(await c.post(MP, { name: 'Loyalty Prioritized', schema: { name: '_xdm.context.profile' },
      identityGraph: { type: 'pdg' }, attributeMerge: { type: 'dataSetPrecedence', order: [ids.loyaltyDs, ids.crmDs] } }),
    200, 'create Loyalty Prioritized').json;
    assert.equal(prio.default, false);
    assert.equal(prio.version, 1);
    const only = expectStatus(await c.post(MP, { name: 'Loyalty Only', schema: { name: '_xdm.context.profile' },
      identityGraph: { type: 'none' }, attributeMerge: { type: 'dataSetPrecedence', order: [ids.loyaltyDs] } }),
    200, 'create Loyalty Only').json;
    ids.prio = prio.id;
    ids.only = only.id;

    const p = onlyProfile(expectStatus(await c.get(ENTITIES, { query: profileQuery(CRM_ID, 'lumaCrmId',
      { mergePolicyId: prio.id }) }), 200, 'CRM id under Loyalty Prioritized'));
    assert.equal(p.entity.person.name.firstName, 'Daniel', JSON.stringify(p.entity));
    assert.equal(p.entity.homeAddress.city, 'New York City');
    assert.equal(p.entity.personalEmail.address, 'dwright@enablementadobe.com', 'CRM-only fields still merged');
    assert.equal(p.mergePolicy.id, prio.id);

    const crmOnly = await c.get(ENTITIES, { query: profileQuery(CRM_ID, 'lumaCrmId', { mergePolicyId: only.id }) });
    expectAepError(crmOnly, 404, 'CRM id under Loyalty Only');
    const l = onlyProfile(expectStatus(await c.get(ENTITIES, { query: profileQuery(LOYALTY_ID, 'lumaLoyaltyId',
      { mergePolicyId: only.id }) }), 200, 'loyalty id under Loyalty Only'));
    assert.equal(l.entity.person.name.firstName, 'Daniel');
    assert.equal(l.entity.personalEmail, undefined, 'no email without the CRM dataset');
    assert.equal(l.entity.mobilePhone, undefined, 'no phone without the CRM dataset');
    assert.equal(l.identityGraph.length, 1, 'no stitching');
    // The events are still there under Loyalty Only.
    const ev = expectStatus(await c.get(ENTITIES, { query: { 'schema.name': '_xdm.context.experienceevent',
      'relatedSchema.name': '_xdm.context.profile', relatedEntityId: LOYALTY_ID, relatedEntityIdNS: 'lumaLoyaltyId',
      mergePolicyId: only.id } }), 200, 'events under Loyalty Only');
    assert.equal(ev.json.children.length, 1);

    // Back to the default: Danny again.
    const d = onlyProfile(expectStatus(await c.get(ENTITIES, { query: profileQuery(CRM_ID, 'lumaCrmId') }), 200, 'default'));
    assert.equal(d.entity.person.name.firstName, 'Danny');
  });

  it('keeps one default merge policy per class; lists, bulk-gets, patches and deletes policies', async () => {
    let list = expectStatus(await c.get(MP), 200, 'list').json;
    const builtin = list.children.find((x) => x.default);
    assert.ok(builtin, JSON.stringify(list));
    assert.equal(builtin.attributeMerge.type, 'timestampOrdered');
    assert.equal(builtin.identityGraph.type, 'pdg');
    assert.equal(list._page.totalCount, 3);

    // Making Loyalty Prioritized the default: it wins lookups without mergePolicyId.
    const patched = expectStatus(await c.patch(`${MP}/${ids.prio}`, [{ op: 'replace', path: '/default', value: true }],
      { contentType: 'application/json' }), 200, 'patch default').json;
    assert.equal(patched.default, true);
    assert.equal(patched.version, 2);
    list = expectStatus(await c.get(MP, { query: { default: 'true' } }), 200, 'defaults').json;
    assert.deepEqual(list.children.map((x) => x.id), [ids.prio], JSON.stringify(list));
    const d = onlyProfile(expectStatus(await c.get(ENTITIES, { query: profileQuery(CRM_ID, 'lumaCrmId') }), 200, 'new default'));
    assert.equal(d.entity.person.name.firstName, 'Daniel');

    const bulk = expectStatus(await c.post(`${MP}/bulk-get`, { ids: [{ id: ids.prio }, { id: ids.only }] }), 207, 'bulk-get');
    assert.deepEqual(Object.keys(bulk.json.results).sort(), [ids.prio, ids.only].sort());
    expectAepError(await c.post(MP, { name: 'bad', schema: { name: '_xdm.context.profile' },
      identityGraph: { type: 'pdg' }, attributeMerge: { type: 'dataSetPrecedence' } }), 400, 'precedence without order');

    expectStatus(await c.del(`${MP}/${ids.prio}`), 200, 'delete');
    expectAepError(await c.get(`${MP}/${ids.prio}`), 404, 'deleted policy');
    const back = onlyProfile(expectStatus(await c.get(ENTITIES, { query: profileQuery(CRM_ID, 'lumaCrmId') }), 200, 'builtin again'));
    assert.equal(back.entity.person.name.firstName, 'Danny');
  });

  it('holds the identity counts of the tutorial: 3771 identities in 2987 clusters', async () => {
    const loyalty = readJson(files.loyalty);
    const crm = readJson(files.crm);
    const offline = readJson(files.offline);
    const idOf = (r) => r[TENANT_KEY]?.systemIdentifier;
    const all = new Map();
    const add = (ns, id) => { if (id != null) all.set(`${ns}|${id}`, { namespace: ns, id: String(id) }); };
    for (const r of loyalty) { add('lumaLoyaltyId', idOf(r).loyaltyId); add('lumaCrmId', idOf(r).crmId); }
    for (const r of crm) add('lumaCrmId', idOf(r).crmId);
    for (const r of offline) add('lumaLoyaltyId', idOf(r).loyaltyId);
    assert.equal(all.size, 3771, 'reference data');

    const ident = [...all.values()];
    const clusters = new Set();
    const members = new Set();
    for (let i = 0; i < ident.length; i += 1000) {
      const res = expectStatus(await c.post(`${IDS}/clusters/members`,
        { compositeXidsWithNamespace: ident.slice(i, i + 1000) }), 200, 'cluster members');
      assert.equal(res.json.unprocessedRecords.length, 0, res.describe().slice(0, 2000));
      for (const cl of res.json.clusters) {
        assert.ok(cl.members.length >= 1, JSON.stringify(cl));
        const keys = cl.members.map((m) => `${m.namespace}|${m.id}`).sort();
        clusters.add(keys.join(','));
        keys.forEach((k) => members.add(k));
      }
    }
    assert.equal(members.size, 3771);
    assert.equal(clusters.size, 2987);
    // More than 1000 identities in one request is refused.
    expectStatus(await c.post(`${IDS}/clusters/members`, { compositeXidsWithNamespace: ident.slice(0, 1001) }), 400, '1001');

    // GET by namespace code and by numeric id; the v2 graph with edge provenance.
    const g = expectStatus(await c.get(`${IDS}/cluster/members`, { query: { namespace: 'lumaCrmId', id: CRM_ID } }),
      200, 'GET cluster');
    assert.deepEqual(g.json.clusters[0].members.map((m) => m.id).sort(), [CRM_ID, LOYALTY_ID].sort());
    const v2 = expectStatus(await c.post(`${IDS}/v2/graph`, { composite_xids: [{ ns: 'lumaLoyaltyId', id: LOYALTY_ID }],
      projection_type: 'graph', require_edge_meta_data: true }), 200, 'v2 graph').json;
    assert.equal(v2.graphs.length, 1);
    assert.equal(v2.graphs[0].vertices.length, 2, JSON.stringify(v2));
    assert.equal(v2.graphs[0].edges.length, 1, JSON.stringify(v2));
    const edge = v2.graphs[0].edges[0];
    assert.deepEqual(edge.dataset_ids, [ids.loyaltyDs]);
    assert.deepEqual(edge.batch_ids, [ids.loyaltyBatch]);
    assert.ok(edge.first_established_ts > 0 && edge.first_established_ts <= edge.last_established_ts);
    const set = expectStatus(await c.post(`${IDS}/v2/graph`, { composite_xids: [{ ns: 'lumaCrmId', id: CRM_ID }],
      projection_type: 'set' }), 200, 'v2 set').json;
    assert.equal(set.graphs[0].members.length, 2);
  });

  it('makes no profile for product SKUs and none from a dataset that is not enabled', async () => {
    for (const p of ids.products) {
      const res = await c.get(ENTITIES, { query: profileQuery(p.SKU, 'lumaProductSKU') });
      expectAepError(res, 404, `SKU ${p.SKU}`);
    }
    const sku = expectStatus(await c.post(`${IDS}/clusters/members`,
      { compositeXidsWithNamespace: [{ namespace: 'lumaProductSKU', id: ids.products[0].SKU }] }), 200, 'SKU cluster');
    assert.equal(sku.json.clusters.length, 0, sku.describe());
    await waitDownstream(c, ids.crmBatch); // the runner has long passed the plain batch too
    const b = await getBatch(c, ids.plainBatch);
    assert.equal(b.downstream, undefined, JSON.stringify(b));
    expectAepError(await c.get(ENTITIES, { query: profileQuery('999000111', 'lumaLoyaltyId') }), 404, 'not enabled');
  });

  it('answers bad lookups with AEP errors', async () => {
    expectAepError(await c.get(ENTITIES, { query: { entityId: LOYALTY_ID, entityIdNS: 'lumaLoyaltyId' } }), 400, 'no schema.name');
    expectAepError(await c.get(ENTITIES, { query: profileQuery('nobody', 'lumaLoyaltyId') }), 404, 'unknown id');
    expectAepError(await c.get(ENTITIES, { query: profileQuery(LOYALTY_ID, 'noSuchNamespace') }), 404, 'unknown namespace');
    expectAepError(await c.get(ENTITIES, { query: profileQuery(LOYALTY_ID, 'lumaLoyaltyId',
      { mergePolicyId: 'no-such-policy' }) }), 400, 'unknown merge policy');
  });

  it('takes a reverted batch back out: the loyalty link goes, the clusters split', async () => {
    expectStatus(await c.post(`${IMPORT}/batches/${ids.loyaltyBatch}?action=REVERT`), 200, 'REVERT loyalty');
    const b = await waitDownstream(c, ids.loyaltyBatch, ['removed']);
    assert.equal(b.status, 'inactive');
    assert.equal(b.downstream.removed.fragmentsRemoved, 1000, JSON.stringify(b.downstream));
    assert.equal(b.downstream.removed.linksRemoved, 1000, JSON.stringify(b.downstream));

    const crm = onlyProfile(expectStatus(await c.get(ENTITIES, { query: profileQuery(CRM_ID, 'lumaCrmId') }), 200, 'crm after revert'));
    assert.equal(crm.identityGraph.length, 1, JSON.stringify(crm));
    assert.equal(crm.entity.person.name.firstName, 'Danny');
    assert.equal(crm.entity.loyalty, undefined, 'the loyalty fragment is gone');
    const g = expectStatus(await c.get(`${IDS}/cluster/members`, { query: { namespace: 'lumaCrmId', id: CRM_ID } }),
      200, 'GET cluster after revert');
    assert.deepEqual(g.json.clusters[0].members.map((m) => m.id), [CRM_ID]);
    // 5625458 stays known through its purchase event, alone now.
    const l = expectStatus(await c.get(`${IDS}/cluster/members`, { query: { namespace: 'lumaLoyaltyId', id: LOYALTY_ID } }),
      200, 'loyalty id after revert');
    assert.deepEqual(l.json.clusters[0].members.map((m) => m.id), [LOYALTY_ID]);
    // Its profile is its event alone now: no loyalty attributes, no CRM link.
    const alone = onlyProfile(expectStatus(await c.get(ENTITIES, { query: profileQuery(LOYALTY_ID, 'lumaLoyaltyId') }),
      200, 'loyalty id after revert'));
    assert.equal(alone.identityGraph.length, 1, JSON.stringify(alone));
    assert.equal(alone.entity.person, undefined, JSON.stringify(alone));
    assert.deepEqual(alone.entity.identityMap.lumaLoyaltyId, [{ id: LOYALTY_ID }]);
  });
});
