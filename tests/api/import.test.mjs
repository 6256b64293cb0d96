// import.test.mjs - the small-file path of the Batch Ingestion API: a PUT replaces an earlier
// upload of the same path (idempotent), the directory structure of filePath is kept in staging,
// several files make one batch, isMultiLineJson reads concatenated multi-line objects, a JSON
// array is read as records without the flag, and batches are invisible across sandboxes.
import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useServer } from './lib/server.mjs';
import {
  clientFor, XDM, IMPORT, CATALOG, expectStatus, expectAepError, createSchema, createDataset, createBatch,
  uploadFile, completeBatch, waitBatch, assertBatchSuccess, stagingBatchDir, queryBatch,
} from './lib/aep.mjs';

const person = (first, city) => ({ person: { name: { firstName: first } }, homeAddress: { city } });
const lines = (recs) => recs.map((r) => JSON.stringify(r)).join('\n') + '\n';

describe('Batch Ingestion API: small files', () => {
  const fx = useServer();
  const c = clientFor(fx);
  let datasetId;

  before(async () => {
    const schema = await createSchema(c, { title: 'Import people', classRef: XDM.profile,
      fieldGroups: [XDM.personDetails, XDM.personalDetails] });
    datasetId = await createDataset(c, { name: 'import-people', schemaId: schema.$id });
  });

  it('replaces an upload of the same path and keeps directory structure', async () => {
    const batchId = await createBatch(c, datasetId);
    await uploadFile(c, batchId, datasetId, 'part1=a/part2=b/people.json', lines([person('Old', 'X')]));
    await uploadFile(c, batchId, datasetId, 'part1=a/part2=b/people.json',
      lines([person('Ann', 'Oslo'), person('Bob', 'Rome')]));
    await uploadFile(c, batchId, datasetId, 'other/more.json', lines([person('Cid', 'Lima')]));
    const staged = path.join(stagingBatchDir(fx.server, 'prod', batchId), datasetId);
    assert.ok(fs.existsSync(path.join(staged, 'part1=a/part2=b/people.json')), 'nested path kept in staging');
    assert.ok(fs.existsSync(path.join(staged, 'other/more.json')));
    await completeBatch(c, batchId);
    const batch = await waitBatch(c, batchId);
    assertBatchSuccess(batch);
    assert.equal(batch.metrics.inputFileCount, 2);
    assert.equal(batch.metrics.inputRecordCount, 3, 'the replaced upload is gone');
    const rows = await queryBatch(fx.server, 'prod', datasetId, batchId,
      'SELECT person.name.firstName AS f FROM {src} ORDER BY f');
    assert.deepEqual(rows.map((r) => r.f), ['Ann', 'Bob', 'Cid']);
  });

  it('reads concatenated multi-line objects with isMultiLineJson, arrays without it', async () => {
    const multi = `{\n  "person": {"name": {"firstName": "Dee"}}\n}\n{\n  "person": {"name": {"firstName": "Eve"}}\n}\n`;
    const b1 = await createBatch(c, datasetId, { format: 'json', isMultiLineJson: true });
    await uploadFile(c, b1, datasetId, 'multi.json', multi);
    await completeBatch(c, b1);
    const r1 = await waitBatch(c, b1);
    assertBatchSuccess(r1);
    assert.equal(r1.metrics.outputRecordCount, 2);

    const b2 = await createBatch(c, datasetId, { format: 'JSON' });
    await uploadFile(c, b2, datasetId, 'array.json', JSON.stringify([person('Fay', 'Rio'), person('Gus', 'Rio')], null, 2));
    await completeBatch(c, b2);
    const r2 = await waitBatch(c, b2);
    assertBatchSuccess(r2);
    assert.equal(r2.metrics.outputRecordCount, 2);
    assert.equal(r2.inputFormat.format, 'json', 'format stored lower-case');
  });

  it('refuses uploads to a batch that is no longer loading and to another dataset', async () => {
    const batchId = await createBatch(c, datasetId);
    await uploadFile(c, batchId, datasetId, 'a.json', lines([person('Hal', 'Kyiv')]));
    await completeBatch(c, batchId);
    assertBatchSuccess(await waitBatch(c, batchId));
    expectAepError(await c.put(`${IMPORT}/batches/${batchId}/datasets/${datasetId}/files/b.json`,
      Buffer.from(lines([person('Ian', 'Nice')]))), 400, 'PUT after COMPLETE');
    const b2 = await createBatch(c, datasetId);
    expectAepError(await c.put(`${IMPORT}/batches/${b2}/datasets/ffffffffffffffffffffffff/files/b.json`,
      Buffer.from(lines([person('Ian', 'Nice')]))), 400, 'PUT to a dataset that is not the batch\'s');
    // A second COMPLETE of a finished batch succeeds and changes nothing (AEP: safe to retry).
    expectStatus(await c.post(`${IMPORT}/batches/${batchId}?action=COMPLETE`), 200, 'COMPLETE again');
    assert.equal((await waitBatch(c, batchId)).status, 'success');
  });

  it('keeps batches of one sandbox invisible to another', async () => {
    const batchId = await createBatch(c, datasetId);
    const dev = c.inSandbox('dev');
    expectAepError(await dev.get(`${CATALOG}/batches/${batchId}`), 404, 'batch from dev');
    expectAepError(await dev.put(`${IMPORT}/batches/${batchId}/datasets/${datasetId}/files/a.json`,
      Buffer.from(lines([person('Jo', 'Bern')]))), 404, 'upload from dev');
    expectAepError(await c.inSandbox('Bad Name!').get(`${CATALOG}/batches/${batchId}`), 400, 'invalid sandbox name');
  });
});
