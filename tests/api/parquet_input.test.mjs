// parquet_input.test.mjs - Parquet batches through the Batch Ingestion API (issue 7): the Luma
// files converted to Parquet by DuckDB ingest with the same counts and the same lake values as
// the JSON files; a Parquet file with values that do not convert fails rows that are named by
// row and field (with partial ingestion the good rows land); a file that is not Parquet fails the
// batch with a clear error. Data is read from the shared reference folder in place.
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { useServer } from './lib/server.mjs';
import {
  clientFor, createDataset, createSchema, XDM, ingestFile, assertBatchSuccess, assertBatchFailed,
  batchParquetFiles, parquetSource, duckQuery, createBatch, uploadFile, completeBatch, waitBatch,
} from './lib/aep.mjs';
import {
  TENANT_KEY, lumaPath, createLumaIdentityFieldGroups, createLoyaltySchema, createCrmSchema,
  createOfflinePurchaseSchema,
} from './lib/luma.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ingot-pqin-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));

// DuckDB writes the JSON file as Parquet with its own type inference (loyaltyId becomes BIGINT,
// joinDate DATE, ...), so ingot must convert Parquet types exactly as it converts JSON ones.
async function toParquet(jsonFile, name, codec = 'zstd') {
  const out = path.join(tmp, name);
  await duckQuery(`COPY (SELECT * FROM read_json_auto('${jsonFile}', maximum_object_size=100000000))
    TO '${out}' (FORMAT parquet, COMPRESSION ${codec})`);
  return out;
}

// Rows of both batches, as JSON text per row, must be the same multiset.
async function sameRows(server, datasetA, batchA, datasetB, batchB) {
  const a = parquetSource(batchParquetFiles(server, 'prod', datasetA, batchA));
  const b = parquetSource(batchParquetFiles(server, 'prod', datasetB, batchB));
  const q = (x, y) => `SELECT count(*)::INTEGER AS n FROM (SELECT to_json(t)::VARCHAR AS j FROM ${x} t
    EXCEPT ALL SELECT to_json(u)::VARCHAR FROM ${y} u)`;
  assert.equal((await duckQuery(q(a, b)))[0].n, 0, 'every JSON-ingested row is in the Parquet batch');
  assert.equal((await duckQuery(q(b, a)))[0].n, 0, 'every Parquet-ingested row is in the JSON batch');
}

describe('Parquet batches through the Batch Ingestion API', () => {
  const fx = useServer();
  const c = clientFor(fx);
  const ds = {};
  const pqBatch = {};

  before(async () => {
    const { profileFg, eventFg } = await createLumaIdentityFieldGroups(c);
    const loyalty = await createLoyaltySchema(c, profileFg.$id);
    const crm = await createCrmSchema(c, profileFg.$id);
    const offline = await createOfflinePurchaseSchema(c, eventFg.$id);
    for (const [k, s] of [['loyalty', loyalty], ['crm', crm], ['offline', offline]]) {
      ds[`${k}Json`] = await createDataset(c, { name: `pq-${k}-json`, schemaId: s.$id });
      ds[`${k}Pq`] = await createDataset(c, { name: `pq-${k}-parquet`, schemaId: s.$id });
    }
  });

  for (const [key, file, records, codec] of [
    ['loyalty', 'luma-loyalty.json', 1000, 'zstd'],
    ['crm', 'luma-crm.json', 1001, 'snappy'],
    ['offline', 'luma-offline-purchases.json', 1000, 'gzip'],
  ]) {
    it(`ingests ${file} as Parquet (${codec}) with the same rows as the JSON file`, async () => {
      const json = await ingestFile(c, ds[`${key}Json`], { fileName: file, data: fs.readFileSync(lumaPath(file)) });
      assertBatchSuccess(json.batch, `${file} as JSON`);
      const pq = await toParquet(lumaPath(file), `${key}.parquet`, codec);
      const res = await ingestFile(c, ds[`${key}Pq`], { fileName: `${key}.parquet`, data: fs.readFileSync(pq),
        inputFormat: { format: 'parquet' } });
      assertBatchSuccess(res.batch, `${file} as Parquet`);
      pqBatch[key] = res.batch.id;
      const m = res.batch.metrics;
      assert.equal(m.inputRecordCount, records);
      assert.equal(m.outputRecordCount, records);
      assert.equal(m.failedRecordCount, 0);
      assert.equal(m.inputByteSize, fs.statSync(pq).size);
      await sameRows(fx.server, ds[`${key}Json`], json.batch.id, ds[`${key}Pq`], res.batch.id);
    });
  }

  it('converts Parquet types by the JSON rules: loyaltyId BIGINT -> "5625458", DATE -> date-time', async () => {
    const files = parquetSource(batchParquetFiles(fx.server, 'prod', ds.loyaltyPq, pqBatch.loyalty));
    const rows = await duckQuery(`SELECT "${TENANT_KEY}".systemIdentifier.loyaltyId AS id,
      typeof("${TENANT_KEY}".systemIdentifier.loyaltyId) AS t, strftime(loyalty.joinDate, '%Y-%m-%d %H:%M:%S') AS j
      FROM ${files} WHERE "${TENANT_KEY}".systemIdentifier.loyaltyId = '5625458'`);
    assert.deepEqual(rows, [{ id: '5625458', t: 'VARCHAR', j: '2000-05-15 00:00:00' }]);
  });

  it('names the row and field of Parquet values that do not convert; partial ingestion lands the rest', async () => {
    const schema = await createSchema(c, { title: 'pq typed', classRef: XDM.profile, fieldGroups: [XDM.loyaltyDetails] });
    const dsId = await createDataset(c, { name: 'pq-typed', schemaId: schema.$id });
    const bad = path.join(tmp, 'bad-points.parquet');
    // loyalty.points is a number in XDM: 'lots' (row 3) cannot convert; the other rows can.
    await duckQuery(`COPY (SELECT {'points': p, 'tier': 'gold'} AS loyalty FROM (VALUES ('10'), ('20.5'), ('lots'), ('40')) v(p))
      TO '${bad}' (FORMAT parquet)`);
    const strict = await ingestFile(c, dsId, { fileName: 'bad-points.parquet', data: fs.readFileSync(bad),
      inputFormat: { format: 'parquet' } });
    assertBatchFailed(strict.batch, 'one bad row without partial ingestion');
    const text = JSON.stringify(strict.batch.errors);
    assert.match(text, /bad-points\.parquet/, text);
    assert.match(text, /loyalty\.points/, text);
    assert.ok(strict.batch.errors.some((e) => (e.rows || []).map(String).includes('3')), text);

    const batchId = await (async () => {
      const id = await createBatch(c, dsId, { format: 'parquet' }, { partialIngestionPercent: 50, enableErrorDiagnostics: true });
      await uploadFile(c, id, dsId, 'bad-points.parquet', fs.readFileSync(bad));
      await completeBatch(c, id);
      const b = await waitBatch(c, id);
      assertBatchSuccess(b, 'partial ingestion of the Parquet file');
      assert.equal(b.metrics.outputRecordCount, 3);
      assert.equal(b.metrics.failedRecordCount, 1);
      return id;
    })();
    const rows = await duckQuery(`SELECT loyalty.points AS p FROM ${parquetSource(batchParquetFiles(fx.server, 'prod', dsId, batchId))} ORDER BY p`);
    assert.deepEqual(rows.map((r) => r.p), [10, 20.5, 40]);
  });

  it('fails a batch whose file is not Parquet, with a clear error', async () => {
    const res = await ingestFile(c, ds.loyaltyPq, { fileName: 'not.parquet', data: Buffer.from('{"a":1}\n'),
      inputFormat: { format: 'parquet' } });
    assertBatchFailed(res.batch, 'a JSON file sent as Parquet');
    assert.match(JSON.stringify(res.batch.errors), /not\.parquet.*Parquet/i);
  });
});
