// lifecycle.test.mjs - the whole batch lifecycle of the Batch Ingestion and Catalog APIs: ABORT
// refused once final, FAIL, REVERT (rows leave the lake, preview, file listings and downloads),
// replay replacing its predecessor atomically, externalId uniqueness, lastBatches, the status enum
// in filters, and large files uploaded in chunks (INITIALIZE, PATCH with Content-Range in any
// order, HEAD, COMPLETE refusing gaps and overlaps, limits), including a file of
// INGOT_LARGE_FILE_MB megabytes (default 300) whose upload survives SIGTERM and kill -9 half-way
// while the server's memory stays bounded.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { useServer } from './lib/server.mjs';
import {
  clientFor, createDataset, createBatch, uploadFile, completeBatch, waitBatch, getBatch,
  assertBatchSuccess, expectStatus, expectAepError, fileUrl, batchParquetFiles, lakeDatasetDir,
  queryBatch, duckQuery, parquetSource, CATALOG, IMPORT,
} from './lib/aep.mjs';
import { TENANT_KEY, createLumaIdentityFieldGroups, createLoyaltySchema } from './lib/luma.mjs';

const EXPORT = '/data/foundation/export';
const MB = 1024 * 1024;

// One Luma loyalty row; `id` makes it unique, `points` is what the checks sum.
function loyaltyRow(id, points) {
  return JSON.stringify({
    [TENANT_KEY]: { systemIdentifier: { loyaltyId: id, crmId: `crm-${id}` } },
    loyalty: { points, tier: ['bronze', 'silver', 'gold'][id % 3], joinDate: '2020-05-17' },
    person: { name: { firstName: 'Daniel', lastName: 'Wright' } },
  });
}

// `n` rows with ids from `firstId`, as JSON Lines text.
function rows(firstId, n) {
  let out = '';
  for (let i = 0; i < n; i++) out += loyaltyRow(firstId + i, i + 1) + '\n';
  return out;
}

async function ingestRows(c, ds, firstId, n, extra = {}) {
  const batchId = await createBatch(c, ds, { format: 'json' }, extra);
  await uploadFile(c, batchId, ds, 'rows.json', rows(firstId, n));
  await completeBatch(c, batchId);
  const batch = await waitBatch(c, batchId);
  assertBatchSuccess(batch, `ingest ${n} rows from id ${firstId}`);
  return batchId;
}

// The batch ids behind a dataset's visible dataSetFiles.
async function visibleBatches(c, ds) {
  const res = expectStatus(await c.get(`${CATALOG}/dataSetFiles?dataSetId=${ds}&limit=100`), 200, 'list files');
  return [...new Set(Object.values(res.json).map((f) => f.batchId))].sort();
}

async function previewIds(c, ds) {
  const res = expectStatus(await c.get(`${EXPORT}/datasets/${ds}/preview`), 200, 'preview');
  return res.json.data.map((r) => Number(r[TENANT_KEY].systemIdentifier.loyaltyId)).sort((a, b) => a - b);
}

function action(c, batchId, act) {
  return c.post(`${IMPORT}/batches/${batchId}?action=${act}`);
}

// The loyalty ids of a batch read back with DuckDB from its folder in the lake.
async function lakeIds(server, ds, batchId) {
  const r = await queryBatch(server, 'prod', ds, batchId,
    `SELECT "${TENANT_KEY}".systemIdentifier.loyaltyId AS id FROM {src} ORDER BY CAST(id AS BIGINT)`);
  return r.map((x) => Number(x.id)); // loyaltyId is a string in the Luma schema
}

function range(first, n) {
  return Array.from({ length: n }, (_, i) => first + i);
}

// ---- large-file helpers --------------------------------------------------------------------

// PATCH one chunk: bytes [first, last] of `file` (or of a Buffer), streamed from disk.
function patchChunk(c, url, src, first, last, { total, contentRange, bodyLength } = {}) {
  const u = new URL(c.baseUrl);
  const length = bodyLength ?? (last - first + 1);
  const headers = {
    ...c.headers(),
    'Content-Type': 'application/octet-stream',
    'Content-Length': String(length),
    'Content-Range': contentRange ?? `bytes ${first}-${last}/${total ?? '*'}`,
  };
  return new Promise((resolve, reject) => {
    const req = http.request({ host: u.hostname, port: u.port, method: 'PATCH', path: url, headers, agent: false },
      (res) => {
        const chunks = [];
        res.on('data', (d) => chunks.push(d));
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json;
          try { json = JSON.parse(text); } catch { /* not JSON */ }
          resolve({ status: res.statusCode, headers: res.headers, text, json,
            describe: () => `PATCH ${url} ${headers['Content-Range']} -> ${res.statusCode} ${text.slice(0, 500)}` });
        });
        res.on('error', reject);
      });
    req.setTimeout(180_000, () => req.destroy(new Error('PATCH: no answer')));
    req.on('error', reject);
    if (Buffer.isBuffer(src)) {
      req.end(src.subarray(first, first + length));
    } else {
      const rs = fs.createReadStream(src, { start: first, end: first + length - 1 });
      rs.on('error', (e) => req.destroy(e));
      rs.pipe(req);
    }
  });
}

// A PATCH whose body the test sends piece by piece (req.write, then req.end()), so that a chunk
// can be kept in flight while other requests run. `answer` resolves like patchChunk's.
function openPatch(c, url, contentRange, length) {
  const u = new URL(c.baseUrl);
  const headers = { ...c.headers(), 'Content-Type': 'application/octet-stream',
    'Content-Length': String(length), 'Content-Range': contentRange };
  const req = http.request({ host: u.hostname, port: u.port, method: 'PATCH', path: url, headers, agent: false });
  const answer = new Promise((resolve, reject) => {
    req.on('response', (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => {
        const text = Buffer.concat(parts).toString('utf8');
        resolve({ status: res.statusCode, text, describe: () => `PATCH ${contentRange} -> ${res.statusCode} ${text.slice(0, 300)}` });
      });
    });
    req.on('error', reject);
  });
  req.flushHeaders();
  return { req, answer };
}

function expectPatch(res, status, what) {
  assert.equal(res.status, status, `${what}: ${res.describe()}`);
  return res;
}

// "bytes=0-9,20-29" out of [[first,last], ...] (merged the way the server merges).
function rangeHeader(chunks) {
  const s = [...chunks].sort((a, b) => a[0] - b[0]);
  const m = [];
  for (const [a, b] of s) {
    if (m.length && a <= m[m.length - 1][1] + 1) m[m.length - 1][1] = Math.max(m[m.length - 1][1], b);
    else m.push([a, b]);
  }
  return 'bytes=' + m.map(([a, b]) => `${a}-${b}`).join(',');
}

function vmHwmKb(pid) {
  const m = /VmHWM:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return Number(m[1]);
}

// Deterministic shuffle (mulberry32).
function shuffled(list, seed) {
  let s = seed >>> 0;
  const rnd = () => {
    s = (s + 0x6D2B79F5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const a = [...list];
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    [a[i], a[j]] = [a[j], a[i]];
  }
  return a;
}

async function setupSchema(c) {
  const { profileFg } = await createLumaIdentityFieldGroups(c);
  return (await createLoyaltySchema(c, profileFg['$id']))['$id'];
}

// ---------------------------------------------------------------------------------------------

describe('batch lifecycle: ABORT, FAIL, REVERT, replay, externalId, lastBatches', () => {
  const fx = useServer();
  const c = clientFor(fx);
  let schemaId;

  it('setup: the Luma loyalty schema', async () => {
    schemaId = await setupSchema(c);
  });

  it('ABORT is refused once a batch is final; FAIL fails a loading batch with a client error', async () => {
    const ds = await createDataset(c, { name: 'abort and fail', schemaId });
    const done = await ingestRows(c, ds, 1, 3);
    expectAepError(await action(c, done, 'ABORT'), 400, 'ABORT after success');
    expectAepError(await action(c, done, 'FAIL'), 400, 'FAIL after success');
    assert.equal((await getBatch(c, done)).status, 'success', 'still success');

    const b = await createBatch(c, ds);
    await uploadFile(c, b, ds, 'rows.json', rows(100, 2));
    expectStatus(await action(c, b, 'FAIL'), 200, 'FAIL while loading');
    const failed = await getBatch(c, b);
    assert.equal(failed.status, 'failed');
    assert.ok(failed.errors.some((e) => /failed by the client/.test(e.description)), JSON.stringify(failed));
    expectAepError(await action(c, b, 'FAIL'), 400, 'FAIL twice');
    expectAepError(await action(c, b, 'ABORT'), 400, 'ABORT after FAIL');
    expectAepError(await action(c, b, 'COMPLETE'), 400, 'COMPLETE after FAIL');
    expectAepError(await c.put(fileUrl(b, ds, 'more.json'), Buffer.from(rows(200, 1))), 400, 'upload after FAIL');
    expectAepError(await action(c, 'NOSUCHBATCH', 'FAIL'), 404, 'FAIL of an unknown batch');
    expectAepError(await action(c, b, 'EXPLODE'), 400, 'unknown action');
  });

  it('REVERT: the rows leave the lake, the preview, the file listings and the downloads', async () => {
    const ds = await createDataset(c, { name: 'revert', schemaId });
    const a = await ingestRows(c, ds, 1000, 10);
    const b = await ingestRows(c, ds, 2000, 5);

    // Before: both batches are readable every way.
    assert.deepEqual(await lakeIds(fx.server, ds, a), range(1000, 10), 'DuckDB reads batch A');
    assert.deepEqual(await previewIds(c, ds), [...range(1000, 10), ...range(2000, 5)]);
    assert.deepEqual(await visibleBatches(c, ds), [a, b].sort());
    const filesA = expectStatus(await c.get(`${EXPORT}/batches/${a}/files`), 200).json.data;
    assert.equal(filesA.length, 1, 'batch A lists its file');
    const fileId = filesA[0].dataSetFileId;
    const listing = expectStatus(await c.get(`${EXPORT}/files/${fileId}`), 200, 'file listing').json.data;
    const download = `${EXPORT}/files/${fileId}?path=${encodeURIComponent(listing[0].name)}`;
    const bytes = expectStatus(await c.get(download), 200, 'download before REVERT');
    assert.equal(bytes.text.slice(0, 4), 'PAR1', 'a Parquet file is downloaded');

    expectStatus(await action(c, a, 'REVERT'), 200, 'REVERT');

    const reverted = await getBatch(c, a);
    assert.equal(reverted.status, 'inactive');
    assert.deepEqual(batchParquetFiles(fx.server, 'prod', ds, a), [], 'no Parquet of batch A left in the lake');
    assert.ok(!fs.existsSync(path.join(lakeDatasetDir(fx.server, 'prod', ds), a)), 'batch folder removed');
    assert.deepEqual(await previewIds(c, ds), range(2000, 5), 'preview holds only batch B');
    assert.deepEqual(await visibleBatches(c, ds), [b], 'dataSetFiles lists only batch B');
    assert.deepEqual(expectStatus(await c.get(`${CATALOG}/dataSetFiles?batchId=${a}`), 200).json, {});
    assert.deepEqual(expectStatus(await c.get(`${EXPORT}/batches/${a}/files`), 200).json.data, []);
    expectStatus(await c.get(`${EXPORT}/files/${fileId}`), 404, 'file of a reverted batch');
    expectStatus(await c.get(download), 404, 'download after REVERT');
    // The whole dataset read back with DuckDB holds only batch B.
    const left = batchParquetFiles(fx.server, 'prod', ds, b);
    const all = await duckQuery(`SELECT count(*) AS n FROM ${parquetSource(left)}`);
    assert.equal(all[0].n, 5);

    expectStatus(await action(c, a, 'REVERT'), 200, 'REVERT again is a no-op');
    expectAepError(await action(c, a, 'ABORT'), 400, 'ABORT of an inactive batch');
    const loading = await createBatch(c, ds);
    expectAepError(await action(c, loading, 'REVERT'), 400, 'REVERT of a loading batch');

    const inactive = expectStatus(await c.get(`${CATALOG}/batches?status=inactive`), 200).json;
    assert.ok(inactive[a] && !inactive[b], `status=inactive lists A only: ${JSON.stringify(Object.keys(inactive))}`);
  });

  it('replay: the new batch replaces its predecessor atomically on success', async () => {
    const ds = await createDataset(c, { name: 'replay', schemaId });
    const old = await ingestRows(c, ds, 5000, 8, { externalId: 'replay-old' });
    assert.deepEqual(await previewIds(c, ds), range(5000, 8));

    // The '$' prefix of the spec is accepted and dropped.
    const res = expectStatus(await c.post(`${IMPORT}/batches`, {
      datasetId: ds, inputFormat: { format: 'json' }, replay: { predecessors: [`$${old}`], reason: 'replace' },
    }), 201, 'create replay batch');
    const neu = res.json.id;
    assert.deepEqual(res.json.replay, { predecessors: [old], reason: 'replace' }, JSON.stringify(res.json));
    await uploadFile(c, neu, ds, 'rows.json', rows(6000, 4));
    assert.deepEqual(await visibleBatches(c, ds), [old], 'before COMPLETE: the old batch only');
    await completeBatch(c, neu);

    // While the replay runs, every look at the catalog sees exactly one of the two.
    const seen = new Set();
    const done = await waitBatch(c, neu, {
      intervalMs: 5,
      onStatus: async () => {
        const v = await visibleBatches(c, ds);
        assert.ok(v.length === 1 && (v[0] === old || v[0] === neu), `old or new, never both or neither: ${v}`);
        seen.add(v[0]);
      },
    });
    assertBatchSuccess(done, 'replay');
    assert.equal((await getBatch(c, old)).status, 'inactive', 'the predecessor is inactive');
    assert.deepEqual(await visibleBatches(c, ds), [neu]);
    assert.deepEqual(await previewIds(c, ds), range(6000, 4), 'preview shows the replay only');
    assert.deepEqual(await lakeIds(fx.server, ds, neu), range(6000, 4));
    // The predecessor's files are removed right after the commit that retired it.
    const oldDir = path.join(lakeDatasetDir(fx.server, 'prod', ds), old);
    for (let i = 0; i < 600 && fs.existsSync(oldDir); i++) await sleep(50);
    assert.ok(!fs.existsSync(oldDir), 'the predecessor left the lake');

    const last = expectStatus(await c.get(`${CATALOG}/lastBatches?dataSetId=${ds}`), 200).json;
    assert.equal(last[ds].lastBatchId, neu);
    assert.equal(last[ds].lastBatchStatus, 'success');
    assert.equal(last[ds].lastSuccessfulBatchId, neu);
    assert.equal(last[ds].lastFailedBatchId, undefined);
    assert.equal(typeof last[ds].created, 'number');
    assert.equal(last[ds].imsOrg, 'ingot-tests@AdobeOrg');

    // predecessorsByExternalId names batches by the client's id.
    const byExt = expectStatus(await c.post(`${IMPORT}/batches`, {
      datasetId: ds, inputFormat: { format: 'json' }, replay: { predecessorsByExternalId: ['replay-old'], reason: 'again' },
    }), 201, 'replay by external id');
    assert.deepEqual(byExt.json.replay.predecessors, [old]);
  });

  it('replay predecessors are checked when the batch is created', async () => {
    const ds = await createDataset(c, { name: 'replay checks', schemaId });
    const other = await createDataset(c, { name: 'replay other', schemaId });
    const elsewhere = await ingestRows(c, other, 1, 1);
    const running = await createBatch(c, ds);
    const bad = [
      [{ predecessors: ['NOSUCHBATCH00000000000000'] }, 'unknown batch'],
      [{ predecessors: [elsewhere] }, 'batch of another dataset'],
      [{ predecessors: [running] }, 'batch still loading'],
      [{ predecessors: ['../etc'] }, 'not an id'],
      [{ predecessorsByExternalId: ['no-such-external-id'] }, 'unknown external id'],
      [{ reason: 'nothing' }, 'no predecessors'],
      [{ predecessors: 'x' }, 'not an array'],
    ];
    for (const [replay, what] of bad)
      expectAepError(await c.post(`${IMPORT}/batches`, { datasetId: ds, inputFormat: { format: 'json' }, replay }), 400, what);
  });

  it('externalId is unique within a sandbox', async () => {
    const ds = await createDataset(c, { name: 'external ids', schemaId });
    const first = await createBatch(c, ds, { format: 'json' }, { externalId: 'ext-unique-1' });
    assert.equal((await getBatch(c, first)).externalId, 'ext-unique-1');
    const dup = expectAepError(await c.post(`${IMPORT}/batches`, { datasetId: ds, inputFormat: { format: 'json' }, externalId: 'ext-unique-1' }), 400, 'duplicate externalId');
    assert.match(dup.detail, /externalId/);
    // The default externalId is the batch id: taking another batch's id is a duplicate too.
    const plain = await createBatch(c, ds);
    assert.equal((await getBatch(c, plain)).externalId, plain);
    expectAepError(await c.post(`${IMPORT}/batches`, { datasetId: ds, inputFormat: { format: 'json' }, externalId: plain }), 400, 'externalId equal to a batch id');
    const listed = expectStatus(await c.get(`${CATALOG}/batches?externalId=ext-unique-1`), 200).json;
    assert.deepEqual(Object.keys(listed), [first]);
    // Another sandbox has its own ids.
    const dev = c.inSandbox('lifecycle-dev');
    const devSchema = await setupSchema(dev);
    const devDs = await createDataset(dev, { name: 'external ids dev', schemaId: devSchema });
    await createBatch(dev, devDs, { format: 'json' }, { externalId: 'ext-unique-1' });
  });

  it('lastBatches: last, last successful and last failed batch per dataset', async () => {
    const ds = await createDataset(c, { name: 'last batches', schemaId });
    const empty = await createDataset(c, { name: 'no batches', schemaId });
    const ok = await ingestRows(c, ds, 1, 2);
    await sleep(5); // "last" is by creation time, in milliseconds
    const bad = await createBatch(c, ds);
    expectStatus(await action(c, bad, 'FAIL'), 200);
    await sleep(5);
    const loading = await createBatch(c, ds);
    const res = expectStatus(await c.get(`${CATALOG}/lastBatches?dataSetId=${ds},${empty}`), 200).json;
    assert.deepEqual(Object.keys(res), [ds], 'a dataset without batches is left out');
    const e = res[ds];
    assert.equal(e.lastBatchId, loading);
    assert.equal(e.lastBatchStatus, 'loading');
    assert.equal(e.lastSuccessfulBatchId, ok);
    assert.equal(e.lastFailedBatchId, bad);
    assert.deepEqual(Object.keys(e).sort(), ['created', 'imsOrg', 'lastBatchId', 'lastBatchStatus',
      'lastFailedBatchId', 'lastSuccessfulBatchId', 'updated']);
    const all = expectStatus(await c.get(`${CATALOG}/lastBatches`), 200).json;
    assert.ok(all[ds], 'every dataset of the sandbox without a filter');
    const filtered = expectStatus(await c.get(`${CATALOG}/lastBatches?lastBatchStatus=loading`), 200).json;
    assert.ok(filtered[ds] && Object.values(filtered).every((x) => x.lastBatchStatus === 'loading'));
    expectAepError(await c.get(`${CATALOG}/lastBatches?dataSetId=..%2Fx`), 400, 'bad dataset id');
  });

  it('the Catalog status enum is accepted in batch filters; anything else is refused', async () => {
    for (const s of ['loading', 'queued', 'processing', 'success', 'failed', 'aborted', 'inactive', 'retrying',
      'staging', 'staged', 'loaded', 'active', 'failure', 'stalled', 'abandoned', 'deleted'])
      expectStatus(await c.get(`${CATALOG}/batches?status=${s}`), 200, `status=${s}`);
    expectStatus(await c.get(`${CATALOG}/batches?status=!inactive,aborted`), 200, 'negated list');
    expectAepError(await c.get(`${CATALOG}/batches?status=exploded`), 400, 'unknown status');
  });
});

describe('large files in chunks: INITIALIZE, PATCH, HEAD, COMPLETE, limits', () => {
  const fx = useServer({ extraArgs: ['--max-put-bytes', '4000', '--max-chunk-bytes', '3000',
    '--max-batch-files', '3', '--max-batch-bytes', '15500'] });
  const c = clientFor(fx);
  let schemaId;

  it('setup: the Luma loyalty schema', async () => {
    schemaId = await setupSchema(c);
  });

  it('chunks in any order, HEAD ranges, gaps and overlaps refused, then the batch succeeds', async () => {
    const ds = await createDataset(c, { name: 'chunks', schemaId });
    const batchId = await createBatch(c, ds);
    const data = Buffer.from(rows(1, 36));
    const size = data.length;
    assert.ok(size > 6000 && size < 8000, `test data of ${size} bytes`);
    const url = fileUrl(batchId, ds, 'part=a/big.json');
    expectAepError(await patchChunk(c, url, data, 0, 99), 404, 'PATCH before INITIALIZE') ;
    expectStatus(await c.request('HEAD', url), 404, 'HEAD before INITIALIZE');
    const init = expectStatus(await c.post(`${url}?action=INITIALIZE`), 201, 'INITIALIZE');
    assert.equal(init.text, '', 'INITIALIZE answers with an empty body');
    let head = expectStatus(await c.request('HEAD', url), 200, 'HEAD of a new upload');
    assert.equal(head.headers.range, 'bytes=');

    // Bad Content-Range headers and bodies that do not match them.
    for (const [cr, what] of [['bytes 10-5', 'last before first'], ['items 0-9', 'not bytes'], ['bytes 0-9/5', 'past the size'],
      ['bytes -1-9', 'negative'], ['bytes 0-99999999999999999999', 'overflow']]) {
      expectAepError(await patchChunk(c, url, data, 0, 9, { contentRange: cr }), 400, what);
    }
    expectAepError(await patchChunk(c, url, data, 0, 9, { contentRange: 'bytes 0-19' }), 400, 'body shorter than the range');
    expectAepError(await patchChunk(c, url, data, 0, 3000), 413, 'chunk above --max-chunk-bytes');

    // Three pieces, sent last first; the middle one missing at first.
    const cuts = [[0, 2499], [2500, 4999], [5000, size - 1]];
    const sent = [];
    for (const i of [2, 0]) {
      const [a, b] = cuts[i];
      const r = expectPatch(await patchChunk(c, url, data, a, b, { total: size }), 200, `chunk ${a}-${b}`);
      sent.push([a, b]);
      assert.equal(r.headers.range, rangeHeader(sent), 'PATCH answers with the ranges received');
    }
    head = expectStatus(await c.request('HEAD', url), 200);
    assert.equal(head.headers.range, `bytes=0-2499,5000-${size - 1}`);
    assert.equal(Number(head.headers['x-received-bytes']), size - 2500);
    const gap = expectAepError(await c.post(`${url}?action=COMPLETE`), 400, 'COMPLETE with a gap');
    assert.match(gap.detail, /2500-4999.*missing/);
    expectAepError(await action(c, batchId, 'COMPLETE'), 400, 'batch COMPLETE with an incomplete large file');
    expectAepError(await patchChunk(c, url, data, 2500, 4999, { total: size + 1 }), 400, 'a different total');

    // A retried chunk is recorded once; an overlapping one is refused at completion.
    expectPatch(await patchChunk(c, url, data, 0, 2499, { total: size }), 200, 'the same chunk again');
    expectPatch(await patchChunk(c, url, data, 2500, 4999, { total: size }), 200, 'the missing chunk');
    head = expectStatus(await c.request('HEAD', url), 200);
    assert.equal(head.headers.range, `bytes=0-${size - 1}`, 'merged');
    expectPatch(await patchChunk(c, url, data, 2000, 2999, { total: size }), 200, 'an overlapping chunk');
    const overlap = expectAepError(await c.post(`${url}?action=COMPLETE`), 400, 'COMPLETE with an overlap');
    assert.match(overlap.detail, /overlap/);

    // Start the file over: INITIALIZE again forgets the chunks.
    expectStatus(await c.post(`${url}?action=INITIALIZE`), 201, 'INITIALIZE again');
    head = expectStatus(await c.request('HEAD', url), 200);
    assert.equal(head.headers.range, 'bytes=');
    for (const [a, b] of shuffled(cuts, 7))
      expectPatch(await patchChunk(c, url, data, a, b), 200, `chunk ${a}-${b} without a total`);
    const done = expectStatus(await c.post(`${url}?action=COMPLETE`), 201, 'COMPLETE');
    assert.deepEqual(done.json, { name: 'part=a/big.json', sizeInBytes: size });
    expectStatus(await c.post(`${url}?action=COMPLETE`), 201, 'COMPLETE again is safe');
    head = expectStatus(await c.request('HEAD', url), 200);
    assert.equal(head.headers.range, `bytes=0-${size - 1}`, 'a completed file has all its bytes');
    expectAepError(await patchChunk(c, url, data, 0, 99), 404, 'PATCH after COMPLETE');
    expectAepError(await c.post(`${url}?action=EXPLODE`), 400, 'unknown file action');

    await completeBatch(c, batchId);
    const b = await waitBatch(c, batchId);
    assertBatchSuccess(b, 'chunked');
    assert.equal(b.metrics.outputRecordCount, 36);
    assert.deepEqual(await lakeIds(fx.server, ds, batchId), range(1, 36), 'the assembled file, byte for byte');
    expectAepError(await c.post(`${url}?action=INITIALIZE`), 400, 'INITIALIZE once the batch is not loading');
  });

  it('chunks in flight: the same range twice, and a file COMPLETEd under a chunk still arriving', async () => {
    const ds = await createDataset(c, { name: 'chunks in flight', schemaId });
    const batchId = await createBatch(c, ds);
    const data = Buffer.from(rows(1, 36));
    const size = data.length;
    const url = fileUrl(batchId, ds, 'inflight.json');
    expectStatus(await c.post(`${url}?action=INITIALIZE`), 201, 'INITIALIZE');

    // The first copy of bytes 0-2499 is half sent when a second copy of the same range comes
    // whole: the second is refused (409) instead of mixing with the first, which then lands.
    const first = openPatch(c, url, 'bytes 0-2499/*', 2500);
    first.req.write(data.subarray(0, 1000));
    await sleep(300);
    const again = await patchChunk(c, url, data, 0, 2499);
    assert.equal(again.status, 409, `the same range while the first copy arrives: ${again.describe()}`);
    first.req.end(data.subarray(1000, 2500));
    expectPatch(await first.answer, 200, 'the first copy');
    expectPatch(await patchChunk(c, url, data, 2500, 4999), 200, 'the middle');
    expectPatch(await patchChunk(c, url, data, 5000, size - 1), 200, 'the end');

    // A chunk past the end is still arriving when the file is COMPLETEd: it is fenced off (409)
    // and never writes into the file now staged, which keeps exactly its recorded bytes.
    const late = openPatch(c, url, `bytes ${size}-${size + 99}/*`, 100);
    late.req.write(Buffer.alloc(40, 0x7b));
    await sleep(300);
    const done = expectStatus(await c.post(`${url}?action=COMPLETE`), 201, 'COMPLETE');
    assert.equal(done.json.sizeInBytes, size);
    late.req.end(Buffer.alloc(60, 0x7b));
    const lateRes = await late.answer;
    assert.ok(lateRes.status === 409 || lateRes.status === 404, `a chunk after COMPLETE: ${lateRes.describe()}`);
    const head = expectStatus(await c.request('HEAD', url), 200);
    assert.equal(head.headers.range, `bytes=0-${size - 1}`, 'the staged file keeps its size');

    await completeBatch(c, batchId);
    const b = await waitBatch(c, batchId);
    assertBatchSuccess(b, 'chunks in flight');
    assert.equal(b.metrics.outputRecordCount, 36);
    assert.deepEqual(await lakeIds(fx.server, ds, batchId), range(1, 36), 'the file, byte for byte');
  });

  it('limits: PUT size, files per batch and bytes per batch give clear 413/400 errors', async () => {
    const ds = await createDataset(c, { name: 'limits', schemaId });
    const batchId = await createBatch(c, ds);
    const big = expectAepError(await c.put(fileUrl(batchId, ds, 'big.json'), Buffer.alloc(4001, 0x20)), 413, 'PUT above --max-put-bytes');
    assert.match(big.detail, /INITIALIZE/);
    await uploadFile(c, batchId, ds, 'a.json', Buffer.alloc(3000, 0x20));
    await uploadFile(c, batchId, ds, 'a.json', Buffer.alloc(3000, 0x20)); // replacing does not add a file
    await uploadFile(c, batchId, ds, 'b.json', Buffer.alloc(3000, 0x20));
    const u = fileUrl(batchId, ds, 'c.json');
    expectStatus(await c.post(`${u}?action=INITIALIZE`), 201);
    const many = expectAepError(await c.put(fileUrl(batchId, ds, 'd.json'), Buffer.alloc(10, 0x20)), 400, 'a fourth file');
    assert.match(many.detail, /at most 3 files/);
    expectAepError(await c.post(`${fileUrl(batchId, ds, 'e.json')}?action=INITIALIZE`), 400, 'a fourth file in chunks');
    const buf = Buffer.alloc(15000, 0x20);
    for (const [a, b] of [[0, 2999], [3000, 5999], [6000, 8999]])
      expectPatch(await patchChunk(c, u, buf, a, b), 200, `chunk ${a}`);
    // 3000 + 3000 + 9000 bytes so far; 3000 more pass 15500.
    const over = expectAepError(await patchChunk(c, u, buf, 9000, 11999), 413, 'bytes per batch');
    assert.match(over.detail, /at most 15500 bytes/);
    // Replacing b.json (3000 bytes) with 3999 bytes makes 15999.
    expectAepError(await c.put(fileUrl(batchId, ds, 'b.json'), Buffer.alloc(3999, 0x20)), 413, 'bytes per batch on PUT');
    await uploadFile(c, batchId, ds, 'b.json', Buffer.alloc(3400, 0x20));
    expectStatus(await action(c, batchId, 'ABORT'), 200, 'ABORT drops the upload');
    assert.ok(!fs.existsSync(path.join(fx.server.dataDir, 'sandboxes', 'prod', 'uploads', batchId)), 'part files removed');
  });
});

describe(`a large file (${process.env.INGOT_LARGE_FILE_MB || 300} MB) in shuffled 32 MB chunks across SIGTERM and kill -9`, () => {
  const fx = useServer();
  const c = clientFor(fx);

  it('uploads with bounded server memory, survives both restarts and ingests every record', async (t) => {
    const schemaId = await setupSchema(c);
    const ds = await createDataset(c, { name: 'large file', schemaId });
    const wantBytes = Number(process.env.INGOT_LARGE_FILE_MB || 300) * MB;
    const file = path.join(fx.server.workDir, 'large.json');
    // Generate JSON Lines until the size is reached, 10000 rows per write.
    const fd = fs.openSync(file, 'w');
    let n = 0;
    let pointsSum = 0;
    let written = 0;
    while (written < wantBytes) {
      let block = '';
      for (let i = 0; i < 10_000; i++, n++) {
        const points = (n * 7919) % 1_000_000;
        pointsSum += points;
        block += loyaltyRow(n, points) + '\n';
      }
      written += fs.writeSync(fd, block);
    }
    fs.closeSync(fd);
    const size = fs.statSync(file).size;
    const CHUNK = 32 * MB;
    const cuts = [];
    for (let a = 0; a < size; a += CHUNK) cuts.push([a, Math.min(size, a + CHUNK) - 1]);
    const order = shuffled(cuts, 42);
    t.diagnostic(`${n} records, ${size} bytes, ${cuts.length} chunks`);

    const batchId = await createBatch(c, ds);
    const url = fileUrl(batchId, ds, 'large.json');
    expectStatus(await c.post(`${url}?action=INITIALIZE`), 201);

    const sent = [];
    const hwm = [];
    // The memory a fresh server holds before any chunk (ASan's shadow and quarantine included),
    // then its peak while taking chunks.
    async function uploadSome(list) {
      const pid = fx.server.child.pid;
      expectStatus(await c.get(`${CATALOG}/batches/${batchId}`), 200);
      const base = vmHwmKb(pid);
      for (const [a, b] of list) {
        expectPatch(await patchChunk(c, url, file, a, b, { total: size }), 200, `chunk ${a}-${b}`);
        sent.push([a, b]);
      }
      const peak = vmHwmKb(pid);
      hwm.push({ base, peak });
      t.diagnostic(`server VmHWM: baseline ${Math.round(base / 1024)} MB, after ${list.length} chunks ${Math.round(peak / 1024)} MB`);
      assert.ok(peak - base < 200 * 1024, `memory grew by ${Math.round((peak - base) / 1024)} MB while uploading`);
    }
    async function expectHead(what) {
      const head = expectStatus(await c.request('HEAD', url), 200, what);
      assert.equal(head.headers.range, rangeHeader(sent), what);
    }

    const half = Math.ceil(order.length / 2);
    const threeQ = Math.ceil(order.length * 3 / 4);
    await uploadSome(order.slice(0, half));
    await expectHead('half-way');
    await fx.server.stop();
    await fx.server.restart();
    await expectHead('after SIGTERM and restart');
    await uploadSome(order.slice(half, threeQ));
    await fx.server.kill9();
    await fx.server.restart();
    await expectHead('after kill -9 and restart');
    if (sent.length < cuts.length)
      expectAepError(await c.post(`${url}?action=COMPLETE`), 400, 'COMPLETE with chunks still missing');
    await uploadSome(order.slice(threeQ));
    await expectHead('all chunks');
    expectStatus(await c.post(`${url}?action=COMPLETE`), 201, 'COMPLETE the file');
    fs.rmSync(file);

    await completeBatch(c, batchId);
    const b = await waitBatch(c, batchId, { timeoutMs: 600_000, intervalMs: 500 });
    assertBatchSuccess(b, 'large file');
    assert.equal(b.metrics.inputRecordCount, n);
    assert.equal(b.metrics.outputRecordCount, n);
    const [row] = await queryBatch(fx.server, 'prod', ds, batchId,
      `SELECT count(*) AS n, count(DISTINCT "${TENANT_KEY}".systemIdentifier.loyaltyId) AS ids, sum(loyalty.points) AS points FROM {src}`);
    assert.deepEqual(row, { n, ids: n, points: pointsSum }, 'every record exactly once');
  });
});
