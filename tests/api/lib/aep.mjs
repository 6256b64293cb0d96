// aep.mjs - a small AEP API client for the tests, and the helpers the tutorial steps are made of:
// identity namespaces, tenant field groups, schemas (POST with the class, then JSON Patch the
// field groups in, the way Adobe's tutorial does), identity descriptors, datasets, batch ingestion
// (create batch, PUT the file, COMPLETE, poll the Catalog until a final state), and reading a
// batch's Parquet output back with DuckDB.
//
// Requests go through node:http rather than fetch so that paths are sent exactly as written (the
// traversal tests need "..%2F" untouched) and uploads stream from disk with a Content-Length.
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { DuckDBInstance } from '@duckdb/node-api';

export const XDM = {
  profile: 'https://ns.adobe.com/xdm/context/profile',
  experienceEvent: 'https://ns.adobe.com/xdm/context/experienceevent',
  personDetails: 'https://ns.adobe.com/xdm/context/profile-person-details',
  personalDetails: 'https://ns.adobe.com/xdm/context/profile-personal-details',
  loyaltyDetails: 'https://ns.adobe.com/xdm/mixins/profile/profile-loyalty-details',
  preferencesDetails: 'https://ns.adobe.com/xdm/context/profile-preferences-details',
  commerce: 'https://ns.adobe.com/xdm/context/experienceevent-commerce',
};
export const XED_FULL = 'application/vnd.adobe.xed-full+json; version=1';
export const SR = '/data/foundation/schemaregistry';
export const CATALOG = '/data/foundation/catalog';
export const IMPORT = '/data/foundation/import';
export const IDNS = '/data/core/idnamespace/identities';

const REQUEST_TIMEOUT_MS = 180_000;

// One HTTP exchange, kept whole so that a failed assertion can show the request and the answer.
export class Res {
  constructor(method, urlPath, reqBody, status, headers, buf) {
    this.method = method;
    this.path = urlPath;
    this.reqBody = reqBody;
    this.status = status;
    this.headers = headers;
    this.buf = buf;
    this.text = buf.toString('utf8');
    this.json = undefined;
    const t = this.text.trimStart();
    if (t.startsWith('{') || t.startsWith('[')) {
      try { this.json = JSON.parse(this.text); } catch { /* not JSON; text stays */ }
    }
  }

  describe() {
    const req = this.reqBody === undefined ? '' : ` body=${String(this.reqBody).slice(0, 600)}`;
    return `${this.method} ${this.path}${req}\n  -> ${this.status} ${this.text.slice(0, 2000)}`;
  }
}

// Assert the status (a number or a list of acceptable ones) and say what was asked and answered.
export function expectStatus(res, expected, what = '') {
  const ok = Array.isArray(expected) ? expected.includes(res.status) : res.status === expected;
  assert.ok(ok, `${what ? what + ': ' : ''}expected HTTP ${expected}, got ${res.status}\n${res.describe()}`);
  return res;
}

// AEP's problem shape: {"type":"http://ns.adobe.com/aep/errors/<CODE>","title","status","detail"}.
export function expectAepError(res, status, what = '') {
  expectStatus(res, status, what);
  const b = res.json;
  assert.ok(b && typeof b === 'object' && !Array.isArray(b), `${what}: error body is not a JSON object\n${res.describe()}`);
  assert.match(String(b.type), /^http:\/\/ns\.adobe\.com\/aep\/errors\/\S+$/, `${what}: error type\n${res.describe()}`);
  assert.equal(b.status, res.status, `${what}: error status field\n${res.describe()}`);
  assert.ok(typeof b.title === 'string' && b.title.length > 0, `${what}: error title\n${res.describe()}`);
  return b;
}

export class AepClient {
  // `server` is an IngotServer (its url may change across restarts) or a base URL string.
  constructor(server, { sandbox = 'prod', org = 'ingot-tests@AdobeOrg', apiKey = 'ingot-api-tests',
    token = 'ingot-test-token' } = {}) {
    this.server = server;
    this.opts = { sandbox, org, apiKey, token };
  }

  get baseUrl() {
    return typeof this.server === 'string' ? this.server : this.server.url;
  }

  get sandboxName() {
    return this.opts.sandbox;
  }

  // The same client in another sandbox.
  inSandbox(sandbox) {
    return new AepClient(this.server, { ...this.opts, sandbox });
  }

  headers(extra = {}) {
    return {
      Authorization: `Bearer ${this.opts.token}`,
      'x-api-key': this.opts.apiKey,
      'x-gw-ims-org-id': this.opts.org,
      'x-sandbox-name': this.opts.sandbox,
      ...extra,
    };
  }

  // body: object/array (sent as JSON), string, Buffer, or {file: path} (streamed). `query` is an
  // object of query parameters appended to the path.
  async request(method, urlPath, { body, headers = {}, query, contentType } = {}) {
    let p = urlPath;
    if (query) {
      const qs = Object.entries(query).map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
      if (qs) p += (p.includes('?') ? '&' : '?') + qs;
    }
    const h = this.headers(headers);
    let payload = null;
    let shown;
    let file = null;
    if (body !== undefined && body !== null) {
      if (Buffer.isBuffer(body)) {
        payload = body;
        shown = `<${body.length} bytes>`;
        h['Content-Type'] = contentType || 'application/octet-stream';
      } else if (typeof body === 'string') {
        payload = Buffer.from(body, 'utf8');
        shown = body;
        h['Content-Type'] = contentType || 'application/json';
      } else if (body.file) {
        file = body.file;
        shown = `<file ${file}>`;
        h['Content-Type'] = contentType || 'application/octet-stream';
        h['Content-Length'] = String(fs.statSync(file).size);
      } else {
        payload = Buffer.from(JSON.stringify(body), 'utf8');
        shown = JSON.stringify(body);
        h['Content-Type'] = contentType || 'application/json';
      }
      if (payload) h['Content-Length'] = String(payload.length);
    }
    const url = new URL(this.baseUrl);
    try {
      const { status, headers: rh, buf } = await new Promise((resolve, reject) => {
        const req = http.request({ host: url.hostname, port: url.port, method, path: p, headers: h, agent: false },
          (res) => {
            const chunks = [];
            res.on('data', (c) => chunks.push(c));
            res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, buf: Buffer.concat(chunks) }));
            res.on('error', reject);
          });
        req.setTimeout(REQUEST_TIMEOUT_MS, () => req.destroy(new Error(`no answer within ${REQUEST_TIMEOUT_MS} ms`)));
        req.on('error', reject);
        if (file) {
          const rs = fs.createReadStream(file);
          rs.on('error', (e) => req.destroy(e));
          rs.pipe(req);
        } else {
          req.end(payload || undefined);
        }
      });
      return new Res(method, p, shown, status, rh, buf);
    } catch (e) {
      const where = typeof this.server === 'string' ? '' : `\n${this.server.describe()}`;
      throw new Error(`${method} ${p} failed: ${e.message}${where}`);
    }
  }

  get(p, o) { return this.request('GET', p, o); }
  post(p, body, o = {}) { return this.request('POST', p, { ...o, body }); }
  put(p, body, o = {}) { return this.request('PUT', p, { ...o, body }); }
  patch(p, body, o = {}) { return this.request('PATCH', p, { ...o, body }); }
  del(p, o) { return this.request('DELETE', p, o); }
}

// A client for a suite's server fixture (useServer): the server is looked up at each request, so
// the client can be made while the describe body runs and follows restarts.
export function clientFor(fx, opts) {
  return new AepClient({
    get url() { return fx.server.url; },
    describe() {
      try { return fx.server.describe(); } catch (e) { return e.message; }
    },
  }, opts);
}

// ---- Identity namespaces -----------------------------------------------------------------------

// AEP answers 200 with the namespace (identity-service.yaml).
export async function createNamespace(c, { name, code, idType, description }) {
  const body = { name, code, idType };
  if (description) body.description = description;
  const res = expectStatus(await c.post(IDNS, body), 200, `create namespace ${code}`);
  assert.equal(res.json?.code, code, `namespace code echoed\n${res.describe()}`);
  return res.json;
}

// ---- Schema Registry ---------------------------------------------------------------------------

function checkResource(res, what) {
  const doc = res.json;
  assert.ok(doc && typeof doc['$id'] === 'string' && doc['$id'].startsWith('https://ns.adobe.com/'),
    `${what}: $id\n${res.describe()}`);
  assert.ok(typeof doc['meta:altId'] === 'string' && doc['meta:altId'].startsWith('_'),
    `${what}: meta:altId\n${res.describe()}`);
  return doc;
}

export async function createFieldGroup(c, body) {
  const res = expectStatus(await c.post(`${SR}/tenant/fieldgroups`, body), 201, `create field group "${body.title}"`);
  return checkResource(res, `field group "${body.title}"`);
}

// The tutorial's way: POST the schema with only its class in allOf, then one JSON Patch per field
// group adding {"$ref": ...} at /allOf/-.
export async function createSchema(c, { title, description = '', classRef, fieldGroups = [] }) {
  const res = expectStatus(await c.post(`${SR}/tenant/schemas`,
    { type: 'object', title, description, allOf: [{ $ref: classRef }] }), 201, `create schema "${title}"`);
  let doc = checkResource(res, `schema "${title}"`);
  for (const fg of fieldGroups) {
    const r = expectStatus(await patchSchema(c, doc['$id'], [{ op: 'add', path: '/allOf/-', value: { $ref: fg } }]),
      200, `add ${fg} to schema "${title}"`);
    doc = r.json;
  }
  return doc;
}

export function patchSchema(c, schemaId, ops) {
  return c.patch(`${SR}/tenant/schemas/${encodeURIComponent(schemaId)}`, ops,
    { contentType: 'application/json' });
}

// A schema in the resolved form (Accept: application/vnd.adobe.xed-full+json; version=1).
export async function getSchemaFull(c, schemaId) {
  const res = expectStatus(await c.get(`${SR}/tenant/schemas/${encodeURIComponent(schemaId)}`,
    { headers: { Accept: XED_FULL } }), 200, `get schema ${schemaId} (xed-full)`);
  return res.json;
}

// `sourceProperty` is a JSON pointer into the schema, e.g. "/_techmarketingdemos/systemIdentifier/loyaltyId".
export async function createIdentityDescriptor(c, { schemaId, sourceProperty, namespace, primary }) {
  const body = {
    '@type': 'xdm:descriptorIdentity',
    'xdm:sourceSchema': schemaId,
    'xdm:sourceVersion': 1,
    'xdm:sourceProperty': sourceProperty,
    'xdm:namespace': namespace,
    'xdm:property': 'xdm:code',
    'xdm:isPrimary': !!primary,
  };
  const res = expectStatus(await c.post(`${SR}/tenant/descriptors`, body), 201,
    `identity descriptor ${sourceProperty} -> ${namespace}`);
  assert.ok(res.json && typeof res.json['@id'] === 'string', `descriptor @id\n${res.describe()}`);
  return res.json;
}

// ---- Catalog -----------------------------------------------------------------------------------

// 201 ["@/dataSets/<id>"]; returns the id.
export async function createDataset(c, { name, schemaId, contentType = 'application/vnd.adobe.xed-full+json;version=1',
  tags, extra = {} }) {
  const body = { name, ...extra };
  if (schemaId) body.schemaRef = { id: schemaId, contentType };
  if (tags) body.tags = tags;
  const res = expectStatus(await c.post(`${CATALOG}/dataSets`, body), 201, `create dataset "${name}"`);
  return refId(res, 'dataSets');
}

// The id out of a Catalog answer ["@/<kind>/<id>"].
export function refId(res, kind) {
  assert.ok(Array.isArray(res.json) && res.json.length === 1, `expected ["@/${kind}/<id>"]\n${res.describe()}`);
  const m = new RegExp(`^@/${kind}/([^/]+)$`).exec(res.json[0]);
  assert.ok(m, `expected ["@/${kind}/<id>"]\n${res.describe()}`);
  return m[1];
}

// Catalog GETs answer {"<id>": {...}}.
export async function getDataset(c, id) {
  const res = expectStatus(await c.get(`${CATALOG}/dataSets/${id}`), 200, `get dataset ${id}`);
  assert.ok(res.json && res.json[id], `dataset keyed by id\n${res.describe()}`);
  return res.json[id];
}

export async function getBatch(c, id) {
  const res = expectStatus(await c.get(`${CATALOG}/batches/${id}`), 200, `get batch ${id}`);
  assert.ok(res.json && res.json[id], `batch keyed by id\n${res.describe()}`);
  return res.json[id];
}

// ---- Batch ingestion ---------------------------------------------------------------------------

export async function createBatch(c, datasetId, inputFormat = { format: 'json' }, extra = {}) {
  const res = expectStatus(await c.post(`${IMPORT}/batches`, { datasetId, inputFormat, ...extra }), 201,
    'create batch');
  assert.ok(res.json && typeof res.json.id === 'string', `batch id\n${res.describe()}`);
  assert.equal(res.json.status, 'loading', `new batch status\n${res.describe()}`);
  return res.json.id;
}

export function fileUrl(batchId, datasetId, fileName) {
  return `${IMPORT}/batches/${batchId}/datasets/${datasetId}/files/${fileName.split('/').map(encodeURIComponent).join('/')}`;
}

// `data` is a Buffer/string, or {file: path}. AEP answers 200 (docs) or 201 (spec) for a new file.
export async function uploadFile(c, batchId, datasetId, fileName, data) {
  const body = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  return expectStatus(await c.put(fileUrl(batchId, datasetId, fileName), body,
    { contentType: 'application/octet-stream' }), [200, 201], `upload ${fileName}`);
}

export async function completeBatch(c, batchId) {
  return expectStatus(await c.post(`${IMPORT}/batches/${batchId}?action=COMPLETE`), 200, `COMPLETE ${batchId}`);
}

export const FINAL = ['success', 'failed'];

// Poll the Catalog until the batch reaches one of `until`. onStatus(status) sees every poll.
export async function waitBatch(c, batchId, { until = FINAL, timeoutMs = 120_000, intervalMs = 100, onStatus } = {}) {
  const t0 = Date.now();
  const seen = [];
  for (;;) {
    const b = await getBatch(c, batchId);
    if (seen[seen.length - 1] !== b.status) seen.push(b.status);
    if (onStatus) await onStatus(b.status, b);
    if (until.includes(b.status)) return b;
    if (Date.now() - t0 > timeoutMs)
      assert.fail(`batch ${batchId} did not reach ${until.join('|')} within ${timeoutMs} ms; statuses seen: ${seen.join(' -> ')}\n${JSON.stringify(b)}`);
    await sleep(intervalMs);
  }
}

// The whole Batch Ingestion API round: create, PUT, COMPLETE, wait for a final state.
export async function ingestFile(c, datasetId, { fileName, data, inputFormat = { format: 'json' }, timeoutMs } = {}) {
  const batchId = await createBatch(c, datasetId, inputFormat);
  await uploadFile(c, batchId, datasetId, fileName, data);
  await completeBatch(c, batchId);
  const batch = await waitBatch(c, batchId, { timeoutMs });
  return { batchId, batch };
}

export function assertBatchSuccess(batch, what = '') {
  assert.equal(batch.status, 'success', `${what} batch should succeed: ${JSON.stringify(batch).slice(0, 3000)}`);
}

export function assertBatchFailed(batch, what = '') {
  assert.equal(batch.status, 'failed', `${what} batch should fail: ${JSON.stringify(batch).slice(0, 3000)}`);
  assert.ok(Array.isArray(batch.errors) && batch.errors.length > 0,
    `${what} a failed batch carries errors[]: ${JSON.stringify(batch).slice(0, 3000)}`);
}

// ---- The lake on disk and DuckDB ---------------------------------------------------------------

export function lakeDatasetDir(server, sandbox, datasetId) {
  return path.join(server.dataDir, 'sandboxes', sandbox, 'lake', datasetId);
}

export function stagingBatchDir(server, sandbox, batchId) {
  return path.join(server.dataDir, 'sandboxes', sandbox, 'staging', batchId);
}

// part-*.parquet files of a promoted batch (absolute paths, sorted).
export function batchParquetFiles(server, sandbox, datasetId, batchId) {
  const dir = path.join(lakeDatasetDir(server, sandbox, datasetId), batchId);
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir).filter((f) => /^part-.*\.parquet$/.test(f)).sort().map((f) => path.join(dir, f));
}

// Every file below a directory (relative paths), for all-or-nothing checks.
export function listTree(dir) {
  const out = [];
  const walk = (d, rel) => {
    if (!fs.existsSync(d)) return;
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) { out.push(r + '/'); walk(path.join(d, e.name), r); } else out.push(r);
    }
  };
  walk(dir, '');
  return out.sort();
}

let duckCon = null;

async function duck() {
  if (!duckCon) {
    const inst = await DuckDBInstance.create(':memory:');
    duckCon = await inst.connect();
  }
  return duckCon;
}

// A FROM-clause source over Parquet files.
export function parquetSource(files) {
  assert.ok(files.length > 0, 'no Parquet files to read');
  return `read_parquet([${files.map((f) => `'${f.replaceAll("'", "''")}'`).join(', ')}])`;
}

function plain(v) {
  if (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER))
    return Number(v);
  return v;
}

// Run SQL and return plain row objects (BigInts that fit become Numbers).
export async function duckQuery(sql) {
  const con = await duck();
  const r = await con.runAndReadAll(sql);
  return r.getRowObjects().map((row) => Object.fromEntries(Object.entries(row).map(([k, v]) => [k, plain(v)])));
}

// Run SQL over a batch's Parquet files: `{src}` in the SQL stands for the source.
export async function queryBatch(server, sandbox, datasetId, batchId, sql) {
  const files = batchParquetFiles(server, sandbox, datasetId, batchId);
  assert.ok(files.length > 0, `batch ${batchId} has no part-*.parquet under ${lakeDatasetDir(server, sandbox, datasetId)}/${batchId}: ${JSON.stringify(listTree(lakeDatasetDir(server, sandbox, datasetId)))}`);
  return duckQuery(sql.replaceAll('{src}', parquetSource(files)));
}
