// bad_input.test.mjs - what ingot does with bad input: malformed JSON, values that cannot be
// converted, missing required fields, an empty file, COMPLETE without files, unknown ids, path
// traversal in filePath, a 70 MB record and a 10000-deep document. Each bad batch must fail
// cleanly (status "failed", errors naming file/row/field, no lake output) and, while it runs, a
// good batch alongside must still succeed: the server stays up and keeps working.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { useServer } from './lib/server.mjs';
import {
  clientFor, XDM, CATALOG, IMPORT, expectStatus, expectAepError, createFieldGroup, createSchema, createDataset,
  createBatch, uploadFile, completeBatch, waitBatch, ingestFile, assertBatchSuccess, assertBatchFailed, getBatch,
  batchParquetFiles, lakeDatasetDir, listTree, queryBatch,
} from './lib/aep.mjs';
import { TENANT_KEY } from './lib/luma.mjs';

const GOOD_RECORDS = 200;

function testFieldGroup(title, classRef, props) {
  return {
    type: 'object',
    title,
    description: 'fields for the bad-input tests',
    'meta:intendedToExtend': [classRef],
    definitions: {
      customFields: {
        properties: { [TENANT_KEY]: { type: 'object', properties: { test: { type: 'object', properties: props } } } },
      },
    },
    allOf: [{ $ref: '#/definitions/customFields' }],
  };
}

const rec = (test) => JSON.stringify({ [TENANT_KEY]: { test } });

function goodFile() {
  const lines = [];
  for (let i = 0; i < GOOD_RECORDS; i++)
    lines.push(rec({ name: `good-${i}`, count: i, when: '2021-01-01T00:00:00Z' }));
  return lines.join('\n') + '\n';
}

// Does some error of the batch name this file (and row, and field)? Errors may carry the row as
// rows[] (AEP), as row, or in the text.
function errorNames(batch, { file, row, field }) {
  return (batch.errors || []).some((e) => {
    const text = JSON.stringify(e);
    if (file && !text.includes(file)) return false;
    if (row !== undefined) {
      const rows = (e.rows || []).map(String);
      const hit = rows.some((r) => r === String(row) || (r.includes('-') &&
        Number(r.split('-')[0]) <= row && row <= Number(r.split('-')[1]))) ||
        e.row === row || new RegExp(`\\brow\\D{0,3}${row}\\b`, 'i').test(text);
      if (!hit) return false;
    }
    if (field && !text.includes(field)) return false;
    return true;
  });
}

describe('bad input fails batches cleanly while good batches go on', () => {
  const fx = useServer();
  const c = clientFor(fx);
  let profileDs;
  let eventDs;
  let goodDs;

  it('setup: profile and event schemas and datasets', async () => {
    const fg = await createFieldGroup(c, testFieldGroup('Bad Input Profile Fields', XDM.profile, {
      name: { type: 'string' },
      count: { type: 'integer', minimum: -2147483648, maximum: 2147483647 },
      when: { type: 'string', format: 'date-time' },
    }));
    const schema = await createSchema(c, { title: 'Bad Input Profile', classRef: XDM.profile, fieldGroups: [fg['$id']] });
    profileDs = await createDataset(c, { name: 'bad input profiles', schemaId: schema['$id'] });
    goodDs = await createDataset(c, { name: 'good profiles', schemaId: schema['$id'] });
    const efg = await createFieldGroup(c, testFieldGroup('Bad Input Event Fields', XDM.experienceEvent, {
      name: { type: 'string' },
    }));
    const eschema = await createSchema(c, { title: 'Bad Input Events', classRef: XDM.experienceEvent,
      fieldGroups: [efg['$id']] });
    eventDs = await createDataset(c, { name: 'bad input events', schemaId: eschema['$id'] });
  });

  // A good batch in parallel with `bad`; afterwards the server must be up and the good batch whole.
  async function alongsideGood(bad) {
    const [badResult, good] = await Promise.all([
      bad(),
      ingestFile(c, goodDs, { fileName: 'good.json', data: goodFile() }),
    ]);
    assertBatchSuccess(good.batch, 'the good batch alongside');
    assert.equal(good.batch.metrics?.outputRecordCount, GOOD_RECORDS, JSON.stringify(good.batch));
    assert.ok(fx.server.running, `server still running\n${fx.server.describe()}`);
    expectStatus(await c.get(`${CATALOG}/dataSets/${goodDs}`), 200, 'server still answers');
    return badResult;
  }

  // A failed batch leaves nothing in the lake.
  function assertNoOutput(datasetId, batchId) {
    assert.deepEqual(batchParquetFiles(fx.server, 'prod', datasetId, batchId), []);
    const left = listTree(lakeDatasetDir(fx.server, 'prod', datasetId)).filter((f) => f.includes(batchId));
    assert.deepEqual(left, [], `no output (final or .tmp-) for failed batch ${batchId}`);
  }

  async function badBatch(datasetId, fileName, data) {
    const { batchId, batch } = await ingestFile(c, datasetId, { fileName, data });
    return { batchId, batch };
  }

  it('malformed JSON: the batch fails and the error names the file and row', async () => {
    const data = [rec({ name: 'a' }), rec({ name: 'b' }), '{"_x": {"test": {"name": "c"}', rec({ name: 'd' })].join('\n');
    const { batchId, batch } = await alongsideGood(() => badBatch(profileDs, 'broken.json', data));
    assertBatchFailed(batch, 'malformed JSON');
    assert.ok(errorNames(batch, { file: 'broken.json', row: 3 }), `error names broken.json row 3: ${JSON.stringify(batch.errors)}`);
    assertNoOutput(profileDs, batchId);
  });

  it('a value that cannot be converted fails the batch; one that can is converted', async () => {
    const bad = [rec({ name: 'a', count: 1 }), rec({ name: 'b', count: 'abc' })].join('\n');
    const { batchId, batch } = await alongsideGood(() => badBatch(profileDs, 'wrongtype.json', bad));
    assertBatchFailed(batch, 'string into integer');
    assert.ok(errorNames(batch, { file: 'wrongtype.json', row: 2, field: 'count' }),
      `error names wrongtype.json row 2 field count: ${JSON.stringify(batch.errors)}`);
    assertNoOutput(profileDs, batchId);

    const badDate = await badBatch(profileDs, 'baddate.json', rec({ name: 'a', when: 'not a date' }));
    assertBatchFailed(badDate.batch, 'invalid date-time');
    assert.ok(errorNames(badDate.batch, { file: 'baddate.json', field: 'when' }), JSON.stringify(badDate.batch.errors));

    // The conversion matrix: a numeric string converts to an integer.
    const ok = await badBatch(profileDs, 'convertible.json', rec({ name: 'z', count: '42' }));
    assertBatchSuccess(ok.batch, 'numeric string into integer');
    assert.deepEqual(await queryBatch(fx.server, 'prod', profileDs, ok.batchId,
      `SELECT "${TENANT_KEY}".test.count AS n, typeof("${TENANT_KEY}".test.count) AS t FROM {src}`), [{ n: 42, t: 'INTEGER' }]);
  });

  it('an ExperienceEvent without _id or timestamp fails the batch', async () => {
    const ok = { _id: 'e1', timestamp: '2021-06-01T10:00:00Z', [TENANT_KEY]: { test: { name: 'fine' } } };
    const good = await badBatch(eventDs, 'events-ok.json', JSON.stringify(ok));
    assertBatchSuccess(good.batch, 'a complete event');

    const noId = [JSON.stringify(ok), JSON.stringify({ ...ok, _id: undefined })].join('\n');
    const r1 = await alongsideGood(() => badBatch(eventDs, 'no-id.json', noId));
    assertBatchFailed(r1.batch, 'event without _id');
    assert.ok(errorNames(r1.batch, { file: 'no-id.json', row: 2, field: '_id' }), JSON.stringify(r1.batch.errors));
    assertNoOutput(eventDs, r1.batchId);

    const noTs = JSON.stringify({ ...ok, _id: 'e2', timestamp: undefined });
    const r2 = await badBatch(eventDs, 'no-timestamp.json', noTs);
    assertBatchFailed(r2.batch, 'event without timestamp');
    assert.ok(errorNames(r2.batch, { file: 'no-timestamp.json', row: 1, field: 'timestamp' }), JSON.stringify(r2.batch.errors));
    // null is the same as absent.
    const r3 = await badBatch(eventDs, 'null-timestamp.json', JSON.stringify({ ...ok, _id: 'e3', timestamp: null }));
    assertBatchFailed(r3.batch, 'event with a null timestamp');
  });

  it('an empty file fails the batch with error code 106', async () => {
    const { batchId, batch } = await alongsideGood(() => badBatch(profileDs, 'empty.json', Buffer.alloc(0)));
    assertBatchFailed(batch, 'empty file');
    assert.ok(batch.errors.some((e) => String(e.code) === '106'), `code 106: ${JSON.stringify(batch.errors)}`);
    assertNoOutput(profileDs, batchId);
  });

  it('COMPLETE on a batch without files gives error code 133', async () => {
    await alongsideGood(async () => {
      const batchId = await createBatch(c, profileDs);
      const res = await c.post(`${IMPORT}/batches/${batchId}?action=COMPLETE`);
      if (res.status === 200) {
        const b = await waitBatch(c, batchId);
        assertBatchFailed(b, 'COMPLETE without files');
        assert.ok(b.errors.some((e) => String(e.code) === '133'), `code 133: ${JSON.stringify(b.errors)}`);
      } else {
        const e = expectAepError(res, 400, 'COMPLETE without files');
        assert.ok(JSON.stringify(e).includes('133'), `code 133 in the error\n${res.describe()}`);
      }
    });
  });

  it('unknown batch and dataset ids answer 404', async () => {
    await alongsideGood(async () => {
      const batchId = await createBatch(c, profileDs);
      expectAepError(await c.get(`${CATALOG}/batches/01NOSUCHBATCH000000000000`), 404, 'GET unknown batch');
      expectAepError(await c.get(`${CATALOG}/dataSets/nosuchdataset00000000000`), 404, 'GET unknown dataset');
      expectAepError(await c.put(`${IMPORT}/batches/01NOSUCHBATCH000000000000/datasets/${profileDs}/files/a.json`,
        Buffer.from(rec({ name: 'x' }))), 404, 'PUT into an unknown batch');
      expectAepError(await c.put(`${IMPORT}/batches/${batchId}/datasets/nosuchdataset00000000000/files/a.json`,
        Buffer.from(rec({ name: 'x' }))), [400, 404], 'PUT into an unknown dataset');
      expectAepError(await c.post(`${IMPORT}/batches/01NOSUCHBATCH000000000000?action=COMPLETE`), 404,
        'COMPLETE an unknown batch');
      expectAepError(await c.post(`${IMPORT}/batches`, { datasetId: 'nosuchdataset00000000000', inputFormat: { format: 'json' } }),
        [400, 404], 'batch for an unknown dataset');
      // The real batch is unaffected.
      assert.equal((await getBatch(c, batchId)).status, 'loading');
    });
  });

  it('path traversal in filePath is refused with 400 and writes nothing outside staging', async () => {
    await alongsideGood(async () => {
      const batchId = await createBatch(c, profileDs);
      const base = `${IMPORT}/batches/${batchId}/datasets/${profileDs}/files/`;
      const body = Buffer.from(rec({ name: 'x' }));
      for (const p of ['..%2F..%2Fetc%2Fescape.json', '..%2F..%2F..%2F..%2F..%2Fescape.json', '%2Fetc%2Fescape.json',
        '%2Ftmp%2Fescape.json', 'a%2F..%2F..%2F..%2Fescape.json', 'sub/..%2F..%2F..%2Fescape.json', '%2E%2E%2Fescape.json'])
        expectAepError(await c.put(base + p, body), 400, `PUT files/${p}`);
      // Literal dot segments may be refused by the router (404) instead of the handler (400).
      for (const p of ['../../../escape.json', '..', 'x/../../escape.json'])
        expectStatus(await c.put(base + p, body), [400, 404], `PUT files/${p}`);
      const stray = listTree(fx.server.dataDir).filter((f) => f.endsWith('escape.json'));
      assert.deepEqual(stray, [], 'no escape.json anywhere in the data directory');
      assert.ok(!fs.existsSync('/etc/escape.json') && !fs.existsSync('/tmp/escape.json'), 'nothing written outside');

      // The batch still works, and a filePath with partition folders is accepted.
      await uploadFile(c, batchId, profileDs, 'part1=a/part2=b/ok.json', rec({ name: 'ok', count: 7 }));
      await completeBatch(c, batchId);
      const b = await waitBatch(c, batchId);
      assertBatchSuccess(b, 'after the refused uploads');
      assert.equal(b.metrics?.inputFileCount, 1, JSON.stringify(b));
    });
  });

  it('a 70 MB single record fails the batch cleanly', async () => {
    const file = path.join(fx.server.workDir, 'huge.json');
    const fd = fs.openSync(file, 'w');
    fs.writeSync(fd, `{"${TENANT_KEY}":{"test":{"name":"`);
    const chunk = Buffer.alloc(1 << 20, 'a');
    for (let i = 0; i < 70; i++) fs.writeSync(fd, chunk);
    fs.writeSync(fd, '"}}}\n');
    fs.closeSync(fd);
    const { batchId, batch } = await alongsideGood(() => badBatch(profileDs, 'huge.json', { file }));
    assertBatchFailed(batch, '70 MB record');
    assert.ok(errorNames(batch, { file: 'huge.json' }), JSON.stringify(batch.errors).slice(0, 2000));
    assertNoOutput(profileDs, batchId);
    fs.rmSync(file);
  });

  it('a document nested 10000 deep fails the batch cleanly', async () => {
    const depth = 10000;
    const deep = `{"${TENANT_KEY}":{"test":{"name":"deep"}},"nested":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    const deepObj = `{"${TENANT_KEY}":{"test":{"name":"deep"}},"nested":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`;
    const { batchId, batch } = await alongsideGood(() => badBatch(profileDs, 'deep.json', deep + '\n'));
    assertBatchFailed(batch, 'arrays nested 10000 deep');
    assertNoOutput(profileDs, batchId);
    const r2 = await alongsideGood(() => badBatch(profileDs, 'deep-objects.json', deepObj + '\n'));
    assertBatchFailed(r2.batch, 'objects nested 10000 deep');
    assertNoOutput(profileDs, r2.batchId);
  });
});
