// export.test.mjs - the Data Access API (/data/foundation/export) over a real batch: the batch's
// dataset files, a file's listing, the download (whole, with Range, HEAD), the dataset preview,
// and the errors for unknown ids and unsatisfiable ranges. The downloaded bytes must be the
// Parquet file in the lake, and DuckDB must read the download.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { useServer } from './lib/server.mjs';
import {
  clientFor, XDM, expectStatus, expectAepError, createSchema, createDataset, ingestFile,
  assertBatchSuccess, batchParquetFiles, duckQuery,
} from './lib/aep.mjs';

const EXPORT = '/data/foundation/export';
const ROWS = 300;

function people() {
  const lines = [];
  for (let i = 0; i < ROWS; i++)
    lines.push(JSON.stringify({ person: { name: { firstName: `First${i}`, lastName: `Last${i}` } },
      homeAddress: { city: i % 2 ? 'Portland' : 'Boston' } }));
  return lines.join('\n') + '\n';
}

describe('Data Access API: files, downloads and preview', () => {
  const fx = useServer();
  const c = clientFor(fx);
  let datasetId, batch, fileId, lakeFile;

  before(async () => {
    const schema = await createSchema(c, { title: 'Export people', classRef: XDM.profile,
      fieldGroups: [XDM.personDetails, XDM.personalDetails] });
    datasetId = await createDataset(c, { name: 'export-people', schemaId: schema.$id });
    ({ batch } = await ingestFile(c, datasetId, { fileName: 'people.json', data: people() }));
    assertBatchSuccess(batch, 'people batch');
    const files = batchParquetFiles(fx.server, 'prod', datasetId, batch.id);
    assert.equal(files.length, 1, 'one part file in the lake');
    lakeFile = files[0];
  });

  it('lists the batch files with links and counts', async () => {
    const res = expectStatus(await c.get(`${EXPORT}/batches/${batch.id}/files`), 200, 'batch files');
    const { data, _page } = res.json;
    assert.equal(data.length, 1, res.describe());
    assert.equal(_page.count, 1);
    fileId = data[0].dataSetFileId;
    assert.match(fileId, /^[0-9a-f]{24}$/);
    assert.equal(data[0].isValid, true);
    assert.equal(Number(data[0].records), ROWS);
    assert.equal(Number(data[0].size), fs.statSync(lakeFile).size);
    assert.ok(data[0]._links.self.href.endsWith(`${EXPORT}/files/${fileId}`), data[0]._links.self.href);
  });

  it('lists a dataset file and downloads it whole, by range and by HEAD', async () => {
    const listing = expectStatus(await c.get(`${EXPORT}/files/${fileId}`), 200, 'file listing').json;
    assert.equal(listing.data.length, 1);
    const name = listing.data[0].name;
    assert.equal(name, path.basename(lakeFile));
    assert.equal(Number(listing.data[0].length), fs.statSync(lakeFile).size);
    const whole = fs.readFileSync(lakeFile);

    const full = expectStatus(await c.get(`${EXPORT}/files/${fileId}`, { query: { path: name } }), 200, 'download');
    assert.ok(full.buf.equals(whole), 'downloaded bytes are the lake file');
    const tmp = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'ingot-export-')), name);
    fs.writeFileSync(tmp, full.buf);
    const rows = await duckQuery(`SELECT count(*)::INTEGER AS n, count(*) FILTER (WHERE homeAddress.city = 'Portland')::INTEGER AS p FROM read_parquet('${tmp}')`);
    assert.deepEqual(rows[0], { n: ROWS, p: ROWS / 2 });
    fs.rmSync(path.dirname(tmp), { recursive: true, force: true });

    const first = expectStatus(await c.get(`${EXPORT}/files/${fileId}`, { query: { path: name }, headers: { Range: 'bytes=0-3' } }), 206, 'first 4 bytes');
    assert.equal(first.buf.toString('latin1'), 'PAR1');
    assert.equal(first.headers['content-range'], `bytes 0-3/${whole.length}`);
    const tail = expectStatus(await c.get(`${EXPORT}/files/${fileId}`, { query: { path: name }, headers: { Range: 'bytes=-4' } }), 206, 'last 4 bytes');
    assert.equal(tail.buf.toString('latin1'), 'PAR1');
    const mid = expectStatus(await c.get(`${EXPORT}/files/${fileId}`, { query: { path: name }, headers: { Range: 'bytes=100-' } }), 206, 'from 100');
    assert.ok(mid.buf.equals(whole.subarray(100)));
    expectStatus(await c.get(`${EXPORT}/files/${fileId}`, { query: { path: name }, headers: { Range: `bytes=${whole.length + 10}-` } }), 416, 'past the end');

    const head = expectStatus(await c.request('HEAD', `${EXPORT}/files/${fileId}?path=${encodeURIComponent(name)}`), 200, 'HEAD');
    assert.equal(Number(head.headers['content-length']), whole.length);
    assert.equal(head.buf.length, 0);
  });

  it('previews the dataset as JSON rows with converted values', async () => {
    const res = expectStatus(await c.get(`${EXPORT}/datasets/${datasetId}/preview`), 200, 'preview');
    const rows = res.json.data;
    assert.ok(rows.length > 0 && rows.length <= 100, `preview row count ${rows.length}`);
    assert.deepEqual(rows[0], { person: { name: { firstName: 'First0', lastName: 'Last0' } }, homeAddress: { city: 'Boston' } });
  });

  it('answers unknown ids and files in the AEP error shape', async () => {
    expectAepError(await c.get(`${EXPORT}/batches/01ZZZZZZZZZZZZZZZZZZZZZZZZ/files`), 404, 'unknown batch');
    expectAepError(await c.get(`${EXPORT}/files/ffffffffffffffffffffffff`), 404, 'unknown file');
    expectAepError(await c.get(`${EXPORT}/files/${fileId}`, { query: { path: 'nope.parquet' } }), 404, 'unknown name');
    expectAepError(await c.get(`${EXPORT}/datasets/ffffffffffffffffffffffff/preview`), 404, 'unknown dataset');
    // Another sandbox sees none of it.
    expectAepError(await c.inSandbox('dev').get(`${EXPORT}/files/${fileId}`), 404, 'file from another sandbox');
  });
});

describe('the lake codec is a server setting', () => {
  const fx = useServer({ extraArgs: ['--parquet-codec', 'snappy'] });
  const c = clientFor(fx);

  it('writes snappy Parquet when started with --parquet-codec snappy', async () => {
    const schema = await createSchema(c, { title: 'Codec people', classRef: XDM.profile,
      fieldGroups: [XDM.personDetails] });
    const datasetId = await createDataset(c, { name: 'codec-people', schemaId: schema.$id });
    const { batch } = await ingestFile(c, datasetId, { fileName: 'p.json', data: people() });
    assertBatchSuccess(batch);
    const [file] = batchParquetFiles(fx.server, 'prod', datasetId, batch.id);
    const codecs = await duckQuery(`SELECT DISTINCT compression FROM parquet_metadata('${file}')`);
    assert.deepEqual(codecs.map((r) => r.compression), ['SNAPPY']);
    const n = await duckQuery(`SELECT count(*)::INTEGER AS n FROM read_parquet('${file}')`);
    assert.equal(n[0].n, ROWS);
  });
});
