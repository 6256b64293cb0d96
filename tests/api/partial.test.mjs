// partial.test.mjs - partial ingestion and error diagnostics (issue 3): the Luma loyalty file with
// injected bad rows (corrupt JSON, a missing required loyaltyId, a wrong type, a date out of
// range) at a 5% threshold: with 1% bad rows the good rows land (read back with DuckDB) and the
// diagnostics name every bad row and field; with 10% nothing lands. Without diagnostics the batch
// says INGEST-1211. Also: the acp_* tags and 400s at batch creation, dataset-level diagnostics,
// gzip and zstd uploads of the CRM file, a corrupt gzip file and an unsupported format as
// batch-level errors, the diagnostics retention sweep, and transient write failures retried.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { setTimeout as sleep } from 'node:timers/promises';
import { useServer } from './lib/server.mjs';
import {
  clientFor, XDM, IMPORT, expectStatus, expectAepError, createFieldGroup, createSchema, createDataset,
  createBatch, uploadFile, completeBatch, waitBatch, assertBatchSuccess, assertBatchFailed,
  batchParquetFiles, lakeDatasetDir, listTree, queryBatch, getBatch,
} from './lib/aep.mjs';
import { TENANT_KEY, lumaPath, readJson, createLumaIdentityFieldGroups, createCrmSchema } from './lib/luma.mjs';

const EXPORT = '/data/foundation/export';
const T = `"${TENANT_KEY}"`;
const LOYALTY = readJson(lumaPath('luma-loyalty.json'));
const CRM_FILE = lumaPath('luma-crm.json');

// The identity field group of the tutorial, with loyaltyId required (so a row without it is bad).
function requiredIdFieldGroup() {
  return {
    type: 'object',
    title: 'Partial Luma Identity',
    description: 'systemIdentifier with a required loyaltyId',
    'meta:intendedToExtend': [XDM.profile],
    definitions: {
      customFields: {
        properties: {
          [TENANT_KEY]: {
            type: 'object',
            properties: {
              systemIdentifier: {
                type: 'object',
                required: ['loyaltyId'],
                properties: { loyaltyId: { type: 'string' }, crmId: { type: 'string' } },
              },
            },
          },
        },
      },
    },
    allOf: [{ $ref: '#/definitions/customFields' }],
  };
}

const idOf = (r) => String(r[TENANT_KEY].systemIdentifier.loyaltyId);

// The kinds of bad row, cycled over the chosen rows. `field` is the dotted path diagnostics name
// (null for a corrupt row, which has no field).
const BREAKERS = [
  { what: 'corrupt JSON', field: null, make: (r) => JSON.stringify(r).slice(0, 40) },
  {
    what: 'missing required loyaltyId', field: 'loyaltyId',
    make: (r) => { const c = structuredClone(r); delete c[TENANT_KEY].systemIdentifier.loyaltyId; return JSON.stringify(c); },
  },
  {
    what: 'wrong type', field: 'points',
    make: (r) => { const c = structuredClone(r); c.loyalty.points = 'lots of points'; return JSON.stringify(c); },
  },
  {
    what: 'date out of range', field: 'joinDate',
    make: (r) => { const c = structuredClone(r); c.loyalty.joinDate = '2000-02-31'; return JSON.stringify(c); },
  },
];

// The loyalty records as JSON Lines with `nbad` bad rows spread evenly. Returns the text and the
// bad rows: {row (1-based), id, field, what}.
function loyaltyWithBadRows(nbad) {
  const step = Math.floor(LOYALTY.length / nbad);
  const bad = [];
  const lines = LOYALTY.map((r, i) => {
    if (i % step !== step - 1 || bad.length >= nbad) return JSON.stringify(r);
    const b = BREAKERS[bad.length % BREAKERS.length];
    bad.push({ row: i + 1, id: idOf(r), field: b.field, what: b.what });
    return b.make(r);
  });
  return { text: lines.join('\n') + '\n', bad };
}

async function ingest(c, datasetId, { fileName, data, extra = {}, inputFormat = { format: 'json' }, onStatus } = {}) {
  const batchId = await createBatch(c, datasetId, inputFormat, extra);
  await uploadFile(c, batchId, datasetId, fileName, data);
  await completeBatch(c, batchId);
  const seen = [];
  const batch = await waitBatch(c, batchId, {
    onStatus: (s) => { if (seen[seen.length - 1] !== s) seen.push(s); if (onStatus) onStatus(s); },
  });
  return { batchId, batch, seen };
}

// GET .../meta?path=P (listing or file).
async function meta(c, batchId, p) {
  return c.get(`${EXPORT}/batches/${batchId}/meta`, p === undefined ? {} : { query: { path: p } });
}

// Every row of every row_errors file, read through the Data Access API: {file, rec}.
async function readRowErrors(c, batchId) {
  const list = expectStatus(await meta(c, batchId, 'row_errors'), 200, 'row_errors listing');
  assert.ok(Array.isArray(list.json?.data), list.describe());
  assert.equal(list.json._page?.count, list.json.data.length, list.describe());
  const rows = [];
  for (const e of list.json.data) {
    assert.match(e.name, /^(parsing|required|conversion|validation)_errors_\d+\.json$/, list.describe());
    assert.match(e._links.self.href, new RegExp(`/batches/${batchId}/meta\\?path=row_errors%2F${e.name}$`));
    const f = expectStatus(await meta(c, batchId, `row_errors/${e.name}`), 200, `row_errors/${e.name}`);
    assert.equal(Number(e.length), Buffer.byteLength(f.text), `listed length of ${e.name}`);
    for (const line of f.text.split('\n').filter(Boolean)) rows.push({ file: e.name, rec: JSON.parse(line) });
  }
  return rows;
}

describe('partial ingestion and error diagnostics', () => {
  const fx = useServer({ extraArgs: ['--retry-backoff-ms', '300'] });
  const c = clientFor(fx);
  let loyaltyDs;
  let diagDs;
  let crmDs;
  let okBatch;

  it('setup: the loyalty schema with a required loyaltyId, and the CRM schema', async () => {
    const fg = await createFieldGroup(c, requiredIdFieldGroup());
    const schema = await createSchema(c, {
      title: 'Partial Loyalty', classRef: XDM.profile,
      fieldGroups: [XDM.personDetails, XDM.personalDetails, XDM.loyaltyDetails, fg['$id']],
    });
    loyaltyDs = await createDataset(c, { name: 'partial loyalty', schemaId: schema['$id'] });
    diagDs = await createDataset(c, { name: 'partial loyalty, diagnostics on the dataset', schemaId: schema['$id'],
      extra: { enableErrorDiagnostics: true } });
    const { profileFg } = await createLumaIdentityFieldGroups(c);
    const crm = await createCrmSchema(c, profileFg['$id']);
    crmDs = await createDataset(c, { name: 'partial crm', schemaId: crm['$id'] });
  });

  it('batch creation: the acp_* tags, the older partialIngestionPercentage, and 400 for bad values', async () => {
    let res = expectStatus(await c.post(`${IMPORT}/batches`, { datasetId: loyaltyDs, inputFormat: { format: 'json' },
      enableErrorDiagnostics: true, partialIngestionPercent: 5 }), 201, 'create');
    assert.equal(res.json.tags.acp_enableErrorDiagnostics, true, res.describe());
    assert.equal(res.json.tags.acp_partialIngestionPercent, 5, res.describe());
    const b = await getBatch(c, res.json.id);
    assert.equal(b.tags.acp_partialIngestionPercent, 5, JSON.stringify(b));

    res = expectStatus(await c.post(`${IMPORT}/batches`, { datasetId: loyaltyDs, inputFormat: { format: 'json' },
      partialIngestionPercentage: 7.5 }), 201, 'create with the older name');
    assert.equal(res.json.tags.acp_partialIngestionPercent, 7.5, res.describe());
    assert.equal(res.json.tags.acp_enableErrorDiagnostics, undefined, res.describe());

    for (const bad of [{ partialIngestionPercent: 101 }, { partialIngestionPercent: -1 },
      { partialIngestionPercent: '5' }, { partialIngestionPercentage: 'all' }, { enableErrorDiagnostics: 'yes' }]) {
      const r = await c.post(`${IMPORT}/batches`, { datasetId: loyaltyDs, inputFormat: { format: 'json' }, ...bad });
      const e = expectAepError(r, 400, `create with ${JSON.stringify(bad)}`);
      assert.ok(JSON.stringify(e).includes(Object.keys(bad)[0]), `the error names the field\n${r.describe()}`);
    }
  });

  it('1% bad rows at a 5% threshold: the good rows land, diagnostics name every bad row', async () => {
    const { text, bad } = loyaltyWithBadRows(10);
    const { batchId, batch } = await ingest(c, loyaltyDs, { fileName: 'loyalty.json', data: text,
      extra: { enableErrorDiagnostics: true, partialIngestionPercent: 5 } });
    okBatch = batchId;
    assertBatchSuccess(batch, '1% bad rows');
    const shown = JSON.stringify(batch);
    assert.equal(batch.metrics.inputRecordCount, 1000, shown);
    assert.equal(batch.metrics.failedRecordCount, 10, shown);
    assert.equal(batch.metrics.outputRecordCount, 990, shown);
    assert.equal(batch.metrics.inputByteSize, Buffer.byteLength(text), shown);

    // errors[]: the summary with the counts, then one entry per kind with recordCount.
    assert.equal(batch.errors[0].code, 'INGEST-1212-400', shown);
    assert.equal(batch.errors[0].description, 'Encountered 10 errors in the data. Successfully ingested 990 rows. ' +
      'Please review the associated diagnostic files for more details.', shown);
    const kinds = Object.fromEntries(batch.errors.slice(1).map((e) => [e.code, e.recordCount]));
    assert.equal(kinds['INGEST-1401-400'], 3, `corrupt rows: ${shown}`);
    assert.equal(kinds['INGEST-1555-400'], 3, `required missing: ${shown}`);
    assert.equal(Object.values(kinds).reduce((a, b) => a + b, 0), 10, `recordCounts add up: ${shown}`);

    // The lake: exactly the good rows.
    const rows = await queryBatch(fx.server, 'prod', loyaltyDs, batchId,
      `SELECT ${T}.systemIdentifier.loyaltyId AS id FROM {src}`);
    assert.equal(rows.length, 990);
    const landed = new Set(rows.map((r) => r.id));
    for (const b of bad) assert.ok(!landed.has(b.id), `bad row ${b.row} (${b.what}, id ${b.id}) must not land`);
    for (const r of LOYALTY) {
      if (!bad.some((b) => b.id === idOf(r))) assert.ok(landed.has(idOf(r)), `good id ${idOf(r)} landed`);
    }

    // Diagnostics: every bad row once, with its file, row and field; the kinds agree with errors[].
    const diag = await readRowErrors(c, batchId);
    assert.equal(diag.length, 10, JSON.stringify(diag).slice(0, 3000));
    for (const b of bad) {
      const hit = diag.filter((d) => d.rec._row === b.row);
      assert.equal(hit.length, 1, `row ${b.row} (${b.what}) in the diagnostics: ${JSON.stringify(diag).slice(0, 3000)}`);
      const rec = hit[0].rec;
      assert.equal(rec._filename, 'loyalty.json');
      assert.ok(Array.isArray(rec._errors) && rec._errors.length === 1, JSON.stringify(rec));
      if (b.field === null) {
        assert.equal(hit[0].file, 'parsing_errors_0.json');
        assert.equal(rec._errors[0].code, '1401');
        assert.equal(rec._errors[0].message, 'Row is corrupted and cannot be read, please fix and resend.');
        assert.equal(rec._corrupt_record, text.split('\n')[b.row - 1]);
      } else {
        assert.ok(rec._errors[0].field.endsWith(b.field), `field of row ${b.row}: ${JSON.stringify(rec)}`);
        assert.equal(rec._record, text.split('\n')[b.row - 1], `raw record of row ${b.row}`);
        if (b.field === 'loyaltyId') assert.equal(hit[0].file, 'required_errors_0.json');
      }
    }
    const perFile = {};
    for (const d of diag) perFile[d.file] = (perFile[d.file] || 0) + 1;
    const codeOfFile = { parsing: 'INGEST-1401-400', required: 'INGEST-1555-400', conversion: 'INGEST-1560-400',
      validation: 'INGEST-1570-400' };
    for (const [f, n] of Object.entries(perFile))
      assert.equal(kinds[codeOfFile[f.split('_')[0]]], n, `${f} holds as many rows as errors[] counts`);

    // /failed: the same rows as JSON records.
    const failed = expectStatus(await c.get(`${EXPORT}/batches/${batchId}/failed`), 200, 'failed');
    assert.equal(failed.json.data.length, 10, failed.describe());
    assert.deepEqual(failed.json.data.map((r) => r._row).sort((a, b) => a - b), bad.map((b) => b.row));
    const page = expectStatus(await c.get(`${EXPORT}/batches/${batchId}/failed`, { query: { start: 8, limit: 5 } }), 200);
    assert.equal(page.json.data.length, 2, page.describe());

    // input_files: the uploaded file and its size.
    const inputs = expectStatus(await meta(c, batchId, 'input_files'), 200, 'input_files');
    assert.deepEqual(inputs.json.data.map((e) => [e.name, Number(e.length)]), [['loyalty.json', Buffer.byteLength(text)]]);
    const one = expectStatus(await meta(c, batchId, 'input_files/loyalty.json'), 200, 'input_files/loyalty.json');
    assert.equal(one.json.path, 'loyalty.json', one.describe());
    const root = expectStatus(await meta(c, batchId), 200, 'meta root');
    assert.deepEqual(root.json.data.map((e) => e.name).sort(), ['input_files', 'row_errors'], root.describe());
  });

  it('10% bad rows at a 5% threshold: the batch fails and nothing lands', async () => {
    const { text, bad } = loyaltyWithBadRows(100);
    const { batchId, batch } = await ingest(c, loyaltyDs, { fileName: 'loyalty.json', data: text,
      extra: { enableErrorDiagnostics: true, partialIngestionPercent: 5 } });
    assertBatchFailed(batch, '10% bad rows');
    const shown = JSON.stringify(batch).slice(0, 4000);
    assert.equal(batch.metrics.failedRecordCount, 100, shown);
    assert.equal(batch.metrics.outputRecordCount, 0, shown);
    assert.equal(batch.errors[0].code, 'INGEST-1212-400', shown);
    assert.match(batch.errors[0].description, /Encountered 100 errors/, shown);
    const kinds = batch.errors.filter((e) => e.recordCount !== undefined && !(e.rows || []).length);
    assert.equal(kinds.reduce((a, e) => a + e.recordCount, 0), 100, shown);
    // Per-row errors name file, row and field too (capped).
    assert.ok(batch.errors.some((e) => (e.rows || []).includes(String(bad[1].row)) && e.description.includes('loyalty.json') &&
      e.description.includes('loyaltyId')), shown);
    assert.deepEqual(batchParquetFiles(fx.server, 'prod', loyaltyDs, batchId), []);
    assert.ok(!listTree(lakeDatasetDir(fx.server, 'prod', loyaltyDs)).some((p) => p.includes(batchId)),
      'no output of the failed batch in the lake');
    const diag = await readRowErrors(c, batchId);
    assert.equal(diag.length, 100, 'the diagnostics of a failed batch name every bad row');
  });

  it('without diagnostics: INGEST-1211, no recordCount, no row_errors files', async () => {
    const { text } = loyaltyWithBadRows(10);
    const { batchId, batch } = await ingest(c, loyaltyDs, { fileName: 'loyalty.json', data: text,
      extra: { partialIngestionPercent: 5 } });
    assertBatchSuccess(batch, 'no diagnostics');
    assert.equal(batch.metrics.failedRecordCount, 10, JSON.stringify(batch));
    assert.equal(batch.metrics.outputRecordCount, 990, JSON.stringify(batch));
    assert.deepEqual(batch.errors.map((e) => e.code), ['INGEST-1211-400'], JSON.stringify(batch));
    assert.match(batch.errors[0].description, /^Encountered errors while parsing, converting or otherwise validating the data\. Please resend the data with error diagnostics enabled/);
    assert.equal(batch.errors[0].recordCount, undefined);
    const list = expectStatus(await meta(c, batchId, 'row_errors'), 200, 'row_errors listing');
    assert.deepEqual(list.json.data, [], list.describe());
  });

  it('diagnostics enabled on the dataset apply to its batches', async () => {
    const { text } = loyaltyWithBadRows(10);
    const { batchId, batch } = await ingest(c, diagDs, { fileName: 'loyalty.json', data: text,
      extra: { partialIngestionPercent: 5 } });
    assertBatchSuccess(batch, 'dataset-level diagnostics');
    assert.equal(batch.errors[0].code, 'INGEST-1212-400', JSON.stringify(batch));
    assert.equal((await readRowErrors(c, batchId)).length, 10);
  });

  it('Data Access: 404 for an unknown batch and an unknown meta path', async () => {
    expectAepError(await c.get(`${EXPORT}/batches/01HZZZZZZZZZZZZZZZZZZZZZZZ/meta`, { query: { path: 'row_errors' } }), 404);
    expectAepError(await c.get(`${EXPORT}/batches/01HZZZZZZZZZZZZZZZZZZZZZZZ/failed`), 404);
    expectAepError(await meta(c, okBatch, 'row_errors/nope_0.json'), 404);
    expectAepError(await meta(c, okBatch, 'row_errors/../_meta.json'), 404);
    expectAepError(await meta(c, okBatch, 'elsewhere'), 404);
  });

  it('gzip and zstd uploads of luma-crm.json land 1001 rows; inputByteSize is the compressed size', async () => {
    const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ingot-partial-'));
    try {
      const raw = fs.readFileSync(CRM_FILE);
      const gz = path.join(tmp, 'crm.json.gz');
      fs.writeFileSync(gz, zlib.gzipSync(raw));
      const zst = path.join(tmp, 'crm.json.zst');
      execFileSync('zstd', ['-q', '-19', CRM_FILE, '-o', zst]);
      for (const [file, name] of [[gz, 'crm.json.gz'], [zst, 'crm-data']]) {
        const { batchId, batch } = await ingest(c, crmDs, { fileName: name, data: fs.readFileSync(file) });
        assertBatchSuccess(batch, name);
        assert.equal(batch.metrics.inputRecordCount, 1001, JSON.stringify(batch));
        assert.equal(batch.metrics.outputRecordCount, 1001, JSON.stringify(batch));
        assert.equal(batch.metrics.inputByteSize, fs.statSync(file).size, JSON.stringify(batch));
        assert.ok(fs.statSync(file).size < raw.length / 3, 'the upload really is compressed');
        const rows = await queryBatch(fx.server, 'prod', crmDs, batchId,
          `SELECT count(DISTINCT ${T}.systemIdentifier.crmId) AS n, count(*) AS total FROM {src}`);
        assert.deepEqual(rows, [{ n: 1000, total: 1001 }]);
      }

      // A truncated gzip file is a batch-level error, whatever the threshold.
      const broken = zlib.gzipSync(raw).subarray(0, 5000);
      const { batchId, batch } = await ingest(c, crmDs, { fileName: 'broken.json.gz', data: broken,
        extra: { partialIngestionPercent: 100 } });
      assertBatchFailed(batch, 'truncated gzip');
      assert.ok(batch.errors.some((e) => /broken\.json\.gz/.test(e.description) && /gzip/.test(e.description) &&
        /decompress/.test(e.description)), JSON.stringify(batch.errors));
      assert.deepEqual(batchParquetFiles(fx.server, 'prod', crmDs, batchId), []);
    } finally {
      fs.rmSync(tmp, { recursive: true, force: true });
    }
  });

  it('a format the dataset cannot take yet fails the batch with a clear error', async () => {
    const { batch } = await ingest(c, crmDs, { fileName: 'crm.csv', data: 'a,b\n1,2\n',
      inputFormat: { format: 'csv' }, extra: { partialIngestionPercent: 100 } });
    assertBatchFailed(batch, 'csv input');
    assert.ok(batch.errors.some((e) => /'csv' is not supported/.test(e.description)), JSON.stringify(batch.errors));
  });

  it('retention: a restart with a 1-second retention sweeps old diagnostics away', async () => {
    const dir = path.join(fx.server.dataDir, 'sandboxes', 'prod', 'diagnostics', okBatch);
    assert.ok(fs.existsSync(path.join(dir, 'row_errors')), 'diagnostics exist before the sweep');
    await fx.server.stop();
    await sleep(1200);
    fx.server.extraArgs = [...fx.server.extraArgs, '--diagnostics-retention-seconds', '1'];
    await fx.server.restart();
    for (let i = 0; i < 100 && fs.existsSync(dir); i++) await sleep(100);
    assert.ok(!fs.existsSync(dir), 'the sweep at start-up removed the diagnostics');
    const list = expectStatus(await meta(c, okBatch, 'row_errors'), 200, 'listing after the sweep');
    assert.deepEqual(list.json.data, []);
    // The batch and its rows stay: retention is about diagnostics only.
    assertBatchSuccess(await getBatch(c, okBatch));
    assert.equal(batchParquetFiles(fx.server, 'prod', loyaltyDs, okBatch).length > 0, true);
  });

  it('transient write failures: retried with backoff, then success; or failed after 3 retries', async () => {
    await fx.server.stop();
    process.env.INGOT_FAULT_WRITE_FAILS = '6';
    try {
      await fx.server.restart();
    } finally {
      delete process.env.INGOT_FAULT_WRITE_FAILS;
    }
    const data = fs.readFileSync(CRM_FILE);
    // First batch: 4 runs, each failing -> failed after 3 retries, nothing lands.
    const first = await ingest(c, crmDs, { fileName: 'crm.json', data });
    assertBatchFailed(first.batch, 'out of retries');
    assert.ok(first.seen.includes('retrying'), `statuses seen: ${first.seen.join(' -> ')}`);
    assert.ok(first.batch.errors.some((e) => /retried 3 time/.test(e.description) && /No space left on device/.test(e.description)),
      JSON.stringify(first.batch.errors));
    assert.deepEqual(batchParquetFiles(fx.server, 'prod', crmDs, first.batchId), []);
    assert.ok(!listTree(lakeDatasetDir(fx.server, 'prod', crmDs)).some((p) => p.includes(first.batchId)));
    // Second batch: the 2 faults left fail its first two runs; the third lands everything once.
    const second = await ingest(c, crmDs, { fileName: 'crm.json', data });
    assertBatchSuccess(second.batch, 'after two retries');
    assert.equal(second.batch.metrics.outputRecordCount, 1001);
    const rows = await queryBatch(fx.server, 'prod', crmDs, second.batchId, 'SELECT count(*) AS n FROM {src}');
    assert.deepEqual(rows, [{ n: 1001 }]);
  });
});
