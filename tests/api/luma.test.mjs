// luma.test.mjs - Adobe's Luma tutorial ("Ingest batch data") end to end through ingot's AEP APIs:
// identity namespaces, the custom field groups, the three schemas with identity descriptors,
// Profile-enabled datasets, the three files through the Batch Ingestion API, the Catalog's batch
// metrics, and the lake read back with DuckDB. Then the 2021 version of the tutorial
// (platform-utils request bodies and data) the same way. Data is read from the shared reference
// folder in place.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { useServer, TENANT } from './lib/server.mjs';
import {
  clientFor, XDM, IDNS, SR, CATALOG, expectStatus, createNamespace, getSchemaFull,
  createIdentityDescriptor, createDataset, getDataset, patchSchema, ingestFile, assertBatchSuccess,
  batchParquetFiles, queryBatch, refId,
} from './lib/aep.mjs';
import {
  TENANT_KEY, lumaPath, readJson, PLATFORM_UTILS_DIR, createLumaIdentityFieldGroups, createLoyaltySchema,
  createCrmSchema, createOfflinePurchaseSchema, LOYALTY_ID_PATH, CRM_ID_PATH,
} from './lib/luma.mjs';

const PROFILE_TAGS = { unifiedProfile: ['enabled:true'], unifiedIdentity: ['enabled:true'] };
const T = `"${TENANT_KEY}"`; // quoted for DuckDB

// The batch metrics AEP reports for a clean single-file batch.
function checkMetrics(server, sandbox, datasetId, batchId, batch, { records, bytes }) {
  const m = batch.metrics || {};
  const shown = JSON.stringify(batch);
  assert.equal(m.inputRecordCount, records, `inputRecordCount: ${shown}`);
  assert.equal(m.outputRecordCount, records, `outputRecordCount: ${shown}`);
  assert.equal(m.failedRecordCount, 0, `failedRecordCount: ${shown}`);
  assert.equal(m.inputFileCount, 1, `inputFileCount: ${shown}`);
  assert.ok(m.outputFileCount >= 1, `outputFileCount >= 1: ${shown}`);
  assert.equal(m.inputByteSize, bytes, `inputByteSize = size of the uploaded file: ${shown}`);
  const files = batchParquetFiles(server, sandbox, datasetId, batchId);
  assert.equal(files.length, m.outputFileCount, `part files on disk vs outputFileCount: ${JSON.stringify(files)}`);
  assert.ok(Array.isArray(batch.relatedObjects) &&
    batch.relatedObjects.some((o) => o.type === 'dataSet' && o.id === datasetId), `relatedObjects: ${shown}`);
}

// A property of a resolved schema by path; arrays are stepped through to their items.
function schemaProp(full, ...names) {
  let node = full;
  for (const n of names) {
    if (node?.type === 'array') node = node.items;
    node = node?.properties?.[n];
  }
  return node;
}

describe('Luma tutorial (current data) through the AEP APIs', () => {
  const fx = useServer();
  const c = clientFor(fx);
  const ids = {};
  const files = {
    loyalty: lumaPath('luma-loyalty.json'),
    crm: lumaPath('luma-crm.json'),
    offline: lumaPath('luma-offline-purchases.json'),
  };

  it('creates the identity namespaces lumaLoyaltyId, lumaCrmId and lumaProductSKU', async () => {
    await createNamespace(c, { name: 'Luma Loyalty Id', code: 'lumaLoyaltyId', idType: 'Cross_device' });
    // The tutorial's own API call for lumaCrmId.
    await createNamespace(c, { name: 'Luma CRM Id', code: 'lumaCrmId', idType: 'Cross_device' });
    await createNamespace(c, { name: 'Luma Product SKU', code: 'lumaProductSKU', idType: 'NON_PEOPLE' });

    const res = expectStatus(await c.get(IDNS), 200, 'list namespaces');
    assert.ok(Array.isArray(res.json), `namespace list is an array\n${res.describe()}`);
    const byCode = Object.fromEntries(res.json.map((n) => [n.code, n]));
    for (const code of ['lumaLoyaltyId', 'lumaCrmId', 'lumaProductSKU'])
      assert.ok(byCode[code], `namespace ${code} listed\n${res.describe()}`);
    assert.match(byCode.lumaCrmId.idType, /^cross_device$/i);
    assert.match(byCode.lumaProductSKU.idType, /^non_people$/i);
    assert.equal(byCode.lumaCrmId.name, 'Luma CRM Id');
    // Standard namespaces are built in.
    assert.ok(byCode.Email || byCode.email, 'standard namespace Email is listed');
    assert.ok(byCode.ECID, 'standard namespace ECID is listed');

    const dup = await c.post(IDNS, { name: 'Again', code: 'lumaCrmId', idType: 'Cross_device' });
    expectStatus(dup, [400, 409], 'a second namespace with the same code');
  });

  it('creates the Luma Identity field groups (profile and ExperienceEvent)', async () => {
    const { profileFg, eventFg } = await createLumaIdentityFieldGroups(c);
    ids.profileFg = profileFg['$id'];
    ids.eventFg = eventFg['$id'];
    assert.notEqual(ids.profileFg, ids.eventFg);
    assert.ok(ids.profileFg.startsWith(`https://ns.adobe.com/${TENANT}/`), ids.profileFg);
    assert.equal(profileFg.title, 'Luma Identity profile field group');
    // Readable by its URL-encoded $id.
    const res = expectStatus(await c.get(`${SR}/tenant/fieldgroups/${encodeURIComponent(ids.profileFg)}`,
      { headers: { Accept: 'application/vnd.adobe.xed+json; version=1' } }), 200, 'get field group');
    assert.equal(res.json['$id'], ids.profileFg);
  });

  it('builds the Luma Loyalty schema the tutorial way and resolves it', async () => {
    const schema = await createLoyaltySchema(c, ids.profileFg);
    ids.loyaltySchema = schema['$id'];
    assert.equal(schema.title, 'Luma Loyalty Schema');
    const refs = (schema.allOf || []).map((a) => a.$ref);
    for (const r of [XDM.profile, XDM.personDetails, XDM.personalDetails, XDM.loyaltyDetails, ids.profileFg])
      assert.ok(refs.includes(r), `allOf holds ${r}: ${JSON.stringify(schema.allOf)}`);

    const full = await getSchemaFull(c, ids.loyaltySchema);
    assert.equal(full['meta:class'], XDM.profile);
    assert.equal(schemaProp(full, TENANT_KEY, 'systemIdentifier', 'loyaltyId')?.type, 'string');
    assert.equal(schemaProp(full, TENANT_KEY, 'systemIdentifier', 'crmId')?.type, 'string');
    assert.equal(schemaProp(full, 'loyalty', 'joinDate')?.format, 'date-time', 'Loyalty Details joinDate');
    assert.equal(schemaProp(full, 'loyalty', 'tier')?.type, 'string');
    assert.equal(schemaProp(full, 'loyalty', 'points')?.type, 'number');
    assert.equal(schemaProp(full, 'person', 'name', 'firstName')?.type, 'string', 'Demographic Details');
    assert.equal(schemaProp(full, 'homeAddress', 'city')?.type, 'string', 'Personal Contact Details');
    assert.equal(full.properties?.['xdm:loyalty'], undefined, 'xdm: prefixes are removed in xed-full');
  });

  it('marks loyaltyId primary (lumaLoyaltyId) and crmId (lumaCrmId) on the loyalty schema', async () => {
    await createIdentityDescriptor(c, { schemaId: ids.loyaltySchema, sourceProperty: LOYALTY_ID_PATH,
      namespace: 'lumaLoyaltyId', primary: true });
    await createIdentityDescriptor(c, { schemaId: ids.loyaltySchema, sourceProperty: CRM_ID_PATH,
      namespace: 'lumaCrmId', primary: false });
  });

  it('builds the Luma CRM schema with crmId as primary identity', async () => {
    const schema = await createCrmSchema(c, ids.profileFg);
    ids.crmSchema = schema['$id'];
    assert.notEqual(ids.crmSchema, ids.loyaltySchema);
    await createIdentityDescriptor(c, { schemaId: ids.crmSchema, sourceProperty: CRM_ID_PATH,
      namespace: 'lumaCrmId', primary: true });
    const full = await getSchemaFull(c, ids.crmSchema);
    assert.equal(schemaProp(full, 'personalEmail', 'address')?.type, 'string');
    assert.equal(schemaProp(full, 'loyalty'), undefined, 'no Loyalty Details in the CRM schema');
  });

  it('builds the Luma Offline Purchase Events schema (ExperienceEvent + Commerce Details)', async () => {
    const schema = await createOfflinePurchaseSchema(c, ids.eventFg);
    ids.offlineSchema = schema['$id'];
    await createIdentityDescriptor(c, { schemaId: ids.offlineSchema, sourceProperty: LOYALTY_ID_PATH,
      namespace: 'lumaLoyaltyId', primary: true });
    const full = await getSchemaFull(c, ids.offlineSchema);
    assert.equal(full['meta:class'], XDM.experienceEvent);
    assert.ok(Array.isArray(full.required) && full.required.includes('_id') && full.required.includes('timestamp'),
      `ExperienceEvent requires _id and timestamp: ${JSON.stringify(full.required)}`);
    assert.equal(schemaProp(full, 'productListItems')?.type, 'array');
    assert.equal(schemaProp(full, 'productListItems', 'SKU')?.type, 'string');
    assert.equal(schemaProp(full, 'commerce', 'order', 'priceTotal')?.type, 'number');
  });

  it('enables the schemas for Profile (meta:immutableTags union)', async () => {
    for (const id of [ids.loyaltySchema, ids.crmSchema, ids.offlineSchema]) {
      const res = expectStatus(await patchSchema(c, id, [{ op: 'add', path: '/meta:immutableTags', value: ['union'] }]),
        200, `enable ${id} for Profile`);
      assert.deepEqual(res.json['meta:immutableTags'], ['union'], res.describe());
    }
  });

  it('creates the three datasets enabled for Profile and Identity', async () => {
    ids.loyaltyDs = await createDataset(c, { name: 'Luma Loyalty Dataset', schemaId: ids.loyaltySchema,
      tags: PROFILE_TAGS });
    // The CRM and offline datasets are enabled afterwards with JSON Patch, as in the tutorial.
    ids.crmDs = await createDataset(c, { name: 'Luma CRM Dataset', schemaId: ids.crmSchema });
    ids.offlineDs = await createDataset(c, { name: 'Luma Offline Purchase Events Dataset', schemaId: ids.offlineSchema });
    for (const ds of [ids.crmDs, ids.offlineDs]) {
      const res = expectStatus(await c.patch(`${CATALOG}/dataSets/${ds}`, [
        { op: 'add', path: '/tags/unifiedProfile', value: ['enabled:true'] },
        { op: 'add', path: '/tags/unifiedIdentity', value: ['enabled:true'] },
      ], { contentType: 'application/json-patch+json' }), 200, 'enable dataset for Profile');
      assert.equal(refId(res, 'dataSets'), ds);
    }
    for (const [ds, schema, name] of [[ids.loyaltyDs, ids.loyaltySchema, 'Luma Loyalty Dataset'],
      [ids.crmDs, ids.crmSchema, 'Luma CRM Dataset'],
      [ids.offlineDs, ids.offlineSchema, 'Luma Offline Purchase Events Dataset']]) {
      const d = await getDataset(c, ds);
      assert.equal(d.name, name);
      assert.equal(d.schemaRef?.id, schema);
      assert.deepEqual(d.tags?.unifiedProfile, ['enabled:true'], JSON.stringify(d));
      assert.deepEqual(d.tags?.unifiedIdentity, ['enabled:true'], JSON.stringify(d));
    }
  });

  it('ingests luma-loyalty.json: 1000 records, readable with DuckDB', async () => {
    const records = readJson(files.loyalty);
    assert.equal(records.length, 1000, 'reference data');
    const { batchId, batch } = await ingestFile(c, ids.loyaltyDs, { fileName: 'luma-loyalty.json',
      data: { file: files.loyalty } });
    assertBatchSuccess(batch, 'luma-loyalty.json');
    checkMetrics(fx.server, 'prod', ids.loyaltyDs, batchId, batch,
      { records: 1000, bytes: fs.statSync(files.loyalty).size });
    ids.loyaltyBatch = batchId;

    const q = (sql) => queryBatch(fx.server, 'prod', ids.loyaltyDs, batchId, sql);
    assert.deepEqual(await q('SELECT count(*) AS n FROM {src}'), [{ n: 1000 }]);
    const danny = await q(`SELECT ${T}.systemIdentifier.loyaltyId AS id,
        typeof(${T}.systemIdentifier.loyaltyId) AS id_type,
        ${T}.systemIdentifier.crmId AS crm,
        typeof(loyalty.joinDate) AS join_type, epoch_ms(loyalty.joinDate) AS join_ms,
        loyalty.points AS points, loyalty.tier AS tier, homeAddress.city AS city
      FROM {src} WHERE person.name.firstName = 'Daniel' AND person.name.lastName = 'Wright'`);
    assert.equal(danny.length, 1, JSON.stringify(danny));
    assert.equal(danny[0].id, '5625458', 'the integer loyaltyId is converted to the schema\'s string');
    assert.equal(danny[0].id_type, 'VARCHAR');
    assert.equal(danny[0].crm, '112ca06ed53d3db37e4cea49cc45b71e');
    assert.match(danny[0].join_type, /^TIMESTAMP( WITH TIME ZONE)?$/, 'joinDate (date-time) is a Parquet timestamp');
    assert.equal(danny[0].join_ms, Date.UTC(2000, 4, 15), '"2000-05-15" is 2000-05-15 00:00:00 UTC');
    assert.equal(danny[0].points, 596518);
    assert.equal(danny[0].tier, 'gold');
    assert.equal(danny[0].city, 'New York City');

    // The run-queries lesson: 251 gold members; also checked against the file itself.
    const gold = records.filter((r) => r.loyalty?.tier === 'gold').length;
    assert.equal(gold, 251, 'reference data');
    assert.deepEqual(await q(`SELECT count(*) AS n FROM {src} WHERE loyalty.tier = 'gold'`), [{ n: 251 }]);
    // crmId is null in some records: null stays null, it does not become "".
    const nullCrm = records.filter((r) => r._techmarketingdemos?.systemIdentifier?.crmId == null).length;
    assert.deepEqual(await q(`SELECT count(*) AS n FROM {src} WHERE ${T}.systemIdentifier.crmId IS NULL`), [{ n: nullCrm }]);
    assert.deepEqual(await q(`SELECT count(DISTINCT ${T}.systemIdentifier.loyaltyId) AS n FROM {src}`), [{ n: 1000 }]);
  });

  it('ingests luma-crm.json through the Batch Ingestion API: 1001 records', async () => {
    const records = readJson(files.crm);
    assert.equal(records.length, 1001, 'reference data');
    const { batchId, batch } = await ingestFile(c, ids.crmDs, { fileName: 'luma-crm.json',
      data: { file: files.crm } });
    assertBatchSuccess(batch, 'luma-crm.json');
    checkMetrics(fx.server, 'prod', ids.crmDs, batchId, batch, { records: 1001, bytes: fs.statSync(files.crm).size });

    const q = (sql) => queryBatch(fx.server, 'prod', ids.crmDs, batchId, sql);
    assert.deepEqual(await q('SELECT count(*) AS n FROM {src}'), [{ n: 1001 }]);
    const rows = await q(`SELECT person.name.firstName AS first, person.name.lastName AS last,
        personalEmail.address AS email, mobilePhone.number AS phone, homeAddress.city AS city
      FROM {src} WHERE ${T}.systemIdentifier.crmId = '112ca06ed53d3db37e4cea49cc45b71e'`);
    assert.deepEqual(rows, [{ first: 'Danny', last: 'Wright', email: 'dwright@enablementadobe.com',
      phone: '212-555-5555', city: 'Portland' }]);
    const males = records.filter((r) => r.person?.gender === 'male').length;
    assert.deepEqual(await q(`SELECT count(*) AS n FROM {src} WHERE person.gender = 'male'`), [{ n: males }]);
  });

  it('ingests luma-offline-purchases.json: 1000 events', async () => {
    const records = readJson(files.offline);
    assert.equal(records.length, 1000, 'reference data');
    const { batchId, batch } = await ingestFile(c, ids.offlineDs, { fileName: 'luma-offline-purchases.json',
      data: { file: files.offline } });
    assertBatchSuccess(batch, 'luma-offline-purchases.json');
    checkMetrics(fx.server, 'prod', ids.offlineDs, batchId, batch,
      { records: 1000, bytes: fs.statSync(files.offline).size });

    const q = (sql) => queryBatch(fx.server, 'prod', ids.offlineDs, batchId, sql);
    assert.deepEqual(await q('SELECT count(*) AS n FROM {src}'), [{ n: 1000 }]);
    const rows = await q(`SELECT len(productListItems) AS items, commerce.order.priceTotal AS total,
        commerce.order.purchaseID AS purchase, _id AS id, epoch_ms("timestamp") AS ts,
        productListItems[1].SKU AS first_sku, productListItems[1].quantity AS first_qty
      FROM {src} WHERE ${T}.systemIdentifier.loyaltyId = '5625458'`);
    assert.deepEqual(rows, [{ items: 4, total: 252.19, purchase: '805-472-642-1090',
      id: 'e722bbcc-9653-4715-8ff6-545b314061f2', ts: Date.UTC(2020, 7, 11), first_sku: '24-UG03', first_qty: 1 }]);
    const lineItems = records.reduce((n, r) => n + (r.productListItems?.length || 0), 0);
    assert.deepEqual(await q('SELECT sum(len(productListItems)) AS n FROM {src}'), [{ n: lineItems }]);
  });

  it('lists the batches in the Catalog with their dataset', async () => {
    const res = expectStatus(await c.get(`${CATALOG}/batches`, { query: { dataSet: ids.loyaltyDs } }), 200,
      'list batches of the loyalty dataset');
    assert.ok(res.json && res.json[ids.loyaltyBatch], `batch listed\n${res.describe()}`);
    for (const b of Object.values(res.json))
      assert.ok(b.relatedObjects.some((o) => o.type === 'dataSet' && o.id === ids.loyaltyDs), JSON.stringify(b));
    const ds = await getDataset(c, ids.loyaltyDs);
    assert.equal(ds.lastBatchId, ids.loyaltyBatch, JSON.stringify(ds));
    assert.equal(ds.lastBatchStatus, 'success', JSON.stringify(ds));
  });
});

// The 2021 tutorial: request bodies from AdobeDocs/platform-utils' Postman collections, with their
// {{variables}} filled in by the ids this server hands out.
describe('Luma tutorial, 2021 version (platform-utils request bodies and data)', () => {
  const fx = useServer();
  const c = clientFor(fx);
  const vars = {};
  const requests = readJson(`${PLATFORM_UTILS_DIR}/schema-requests-2021.json`).collections;
  const find = (collection, name) => {
    const r = requests[collection].find((x) => x.name === name);
    assert.ok(r, `request "${name}" in ${collection}`);
    return r;
  };
  // Replace {{var}} (the collections also have one "{{var}" typo) and make the tenant ours.
  const fill = (body) => JSON.parse(JSON.stringify(body)
    .replace(/\{\{(\w+)\}\}?/g, (m, v) => {
      assert.ok(v in vars, `variable ${v} is known`);
      return vars[v];
    })
    .replaceAll('_techmarketingdemos', TENANT_KEY));
  const post = async (collection, name, url, status = 201) => {
    const res = expectStatus(await c.post(url, fill(find(collection, name).body)), status, name);
    return res;
  };

  it('creates the 2021 field groups, data type and schemas', async () => {
    let r = await post('Luma-Loyalty-Data', 'Create Identity Profile Field Group', `${SR}/tenant/fieldgroups`);
    vars.luma_identity_profile_fieldgroup_id = r.json['$id'];
    r = await post('Luma-Loyalty-Data', 'Create System Identidier Datatype', `${SR}/tenant/datatypes`);
    vars.system_identifier_dataype_id = r.json['$id'];
    r = await post('Luma-Loyalty-Data', 'Create Loyalty Field Group', `${SR}/tenant/fieldgroups`);
    vars.luma_loyalty_fieldgroup_id = r.json['$id'];
    r = await post('Luma-Loyalty-Data', 'Create Loyalty Schema', `${SR}/tenant/schemas`);
    vars.luma_loyalty_schema_id = r.json['$id'];
    r = await post('Luma-CRM-Data', 'Create CRM Schema', `${SR}/tenant/schemas`);
    vars.luma_crm_schmea_id = r.json['$id'];
    r = await post('Luma-Offline-Purchase-Events', 'Create Luma Identity ExperienceEvent Field Group',
      `${SR}/tenant/fieldgroups`);
    vars.luma_identity_experience_event_fieldgroup_id = r.json['$id'];
    r = await post('Luma-Offline-Purchase-Events', 'Luma Offline Purchase Events Schema', `${SR}/tenant/schemas`);
    vars.luma_offline_purchase_event_schmea_id = r.json['$id'];

    const full = await getSchemaFull(c, vars.luma_loyalty_schema_id);
    const loyalty = full.properties?.[TENANT_KEY]?.properties?.loyalty?.properties;
    assert.ok(loyalty, `custom loyalty object resolved: ${JSON.stringify(full.properties?.[TENANT_KEY])}`);
    assert.equal(loyalty.memberSince?.format, 'date');
    assert.equal(loyalty.points?.type, 'integer');
    assert.deepEqual(loyalty.level?.enum, ['bronze', 'silver', 'gold', 'platinum']);
  });

  it('creates the 2021 datasets', async () => {
    const mk = async (collection, name) => {
      const res = expectStatus(await c.post(`${CATALOG}/dataSets`, fill(find(collection, name).body)), 201, name);
      return refId(res, 'dataSets');
    };
    vars.loyalty_dataset_id = await mk('Luma-Loyalty-Data', 'Create Loyalty Dataset');
    vars.crm_dataset_id = await mk('Luma-CRM-Data', 'Create CRM Dataset');
    vars.luma_offline_purchase_event_dataset_id = await mk('Luma-Offline-Purchase-Events',
      'Create Luma Offline Purchase Events Dataset');
  });

  it('ingests the 2021 luma-loyalty.json (pretty-printed array): 1000 records', async () => {
    const file = `${PLATFORM_UTILS_DIR}/luma-loyalty.json`;
    const records = readJson(file);
    const ds = vars.loyalty_dataset_id;
    const { batchId, batch } = await ingestFile(c, ds, { fileName: 'luma-loyalty.json', data: { file },
      inputFormat: fill(find('Luma-Loyalty-Data', 'Create a new batch in Catalog Service').body).inputFormat });
    assertBatchSuccess(batch, '2021 luma-loyalty.json');
    checkMetrics(fx.server, 'prod', ds, batchId, batch, { records: 1000, bytes: fs.statSync(file).size });
    const q = (sql) => queryBatch(fx.server, 'prod', ds, batchId, sql);
    assert.deepEqual(await q('SELECT count(*) AS n FROM {src}'), [{ n: 1000 }]);
    const gold = records.filter((r) => r._techmarketingdemos.loyalty.level === 'gold').length;
    assert.deepEqual(await q(`SELECT count(*) AS n FROM {src} WHERE ${T}.loyalty.level = 'gold'`), [{ n: gold }]);
    const rows = await q(`SELECT typeof(${T}.loyalty.memberSince) AS since_type,
        strftime(${T}.loyalty.memberSince, '%Y-%m-%d') AS since,
        typeof(${T}.loyalty.points) AS points_type, ${T}.loyalty.points AS points
      FROM {src} WHERE ${T}.systemIdentifier.loyaltyId = '5625458'`);
    assert.deepEqual(rows, [{ since_type: 'DATE', since: '2000-05-15', points_type: 'INTEGER', points: 596518 }]);
  });

  it('ingests the 2021 luma-crm.json', async () => {
    const file = `${PLATFORM_UTILS_DIR}/luma-crm.json`;
    const n = readJson(file).length;
    const ds = vars.crm_dataset_id;
    const { batchId, batch } = await ingestFile(c, ds, { fileName: 'luma-crm.json', data: { file } });
    assertBatchSuccess(batch, '2021 luma-crm.json');
    checkMetrics(fx.server, 'prod', ds, batchId, batch, { records: n, bytes: fs.statSync(file).size });
    assert.deepEqual(await queryBatch(fx.server, 'prod', ds, batchId, 'SELECT count(*) AS n FROM {src}'), [{ n }]);
  });

  it('ingests the 2021 luma-offline-purchases.json (JSON Lines)', async () => {
    const file = `${PLATFORM_UTILS_DIR}/luma-offline-purchases.json`;
    const n = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).length;
    const ds = vars.luma_offline_purchase_event_dataset_id;
    const { batchId, batch } = await ingestFile(c, ds, { fileName: 'luma-offline-purchases.json', data: { file } });
    assertBatchSuccess(batch, '2021 luma-offline-purchases.json');
    checkMetrics(fx.server, 'prod', ds, batchId, batch, { records: n, bytes: fs.statSync(file).size });
    const rows = await queryBatch(fx.server, 'prod', ds, batchId,
      `SELECT count(*) AS n, sum(len(productListItems)) AS items FROM {src}`);
    const items = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim())
      .reduce((k, l) => k + JSON.parse(l).productListItems.length, 0);
    assert.deepEqual(rows, [{ n, items }]);
  });
});
