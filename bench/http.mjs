// http.mjs - the HTTP side of the benchmark: ingot end to end through the AEP APIs.
//
//   node bench/http.mjs setup URL FULL_SCHEMA_OUT  -> {"datasetId","schemaId"}
//       the tutorial's way: identity field group, Luma loyalty schema (Individual Profile +
//       Person, Personal Contact and Loyalty Details + the identity group), a dataset on it; the
//       resolved (xed-full) schema is saved so that `ingot ingest` runs on the very same schema.
//   node bench/http.mjs ingest URL DATASET_ID FILE -> {"batchId","upload_s","process_s","total_s",...}
//       create batch, upload (one PUT up to 256 MB, else the large-file API: INITIALIZE, PATCH
//       chunks with Content-Range, COMPLETE), COMPLETE the batch, poll the Catalog until a final
//       state. total_s runs from the batch creation to the poll that saw the final state.
//
// The schema helpers are the API tests' (tests/api/lib), so the bench and the tests build the
// tutorial's schema the same way.
import fs from 'node:fs';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { AepClient, XDM, IMPORT, createBatch, createDataset, createFieldGroup, fileUrl,
  getBatch, getSchemaFull } from '../tests/api/lib/aep.mjs';
import { createLoyaltySchema, identityFieldGroupBody } from '../tests/api/lib/luma.mjs';

const MAX_PUT = 256 * 1024 * 1024;   // AEP's small-file limit
const CHUNK = 256 * 1024 * 1024;     // large-file chunk size (AEP allows up to 512,000,000)

// One request whose body streams from a byte range of a file.
function sendFile(c, method, urlPath, file, start, end, extraHeaders = {}) {
  const url = new URL(urlPath, c.baseUrl);
  const headers = {
    ...c.headers(extraHeaders),
    'Content-Type': 'application/octet-stream',
    'Content-Length': String(end - start + 1),
  };
  return new Promise((resolve, reject) => {
    const req = http.request({ method, hostname: url.hostname, port: url.port, path: url.pathname + url.search, headers },
      (res) => {
        const parts = [];
        res.on('data', (d) => parts.push(d));
        res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(parts).toString('utf8') }));
      });
    req.on('error', reject);
    fs.createReadStream(file, { start, end, highWaterMark: 1 << 20 }).pipe(req);
  });
}

function expectOk(res, what) {
  if (res.status < 200 || res.status > 299)
    throw new Error(`${what}: HTTP ${res.status} ${res.text.slice(0, 500)}`);
}

async function upload(c, batchId, datasetId, name, file) {
  const size = fs.statSync(file).size;
  const urlPath = fileUrl(batchId, datasetId, name);
  if (size <= MAX_PUT) {
    expectOk(await sendFile(c, 'PUT', urlPath, file, 0, size - 1), `PUT ${name}`);
    return 'put';
  }
  const init = await c.post(`${urlPath}?action=INITIALIZE`);
  if (init.status === 404 || init.status === 405) {
    // A server without the large-file API: one PUT (it may refuse a large body).
    expectOk(await sendFile(c, 'PUT', urlPath, file, 0, size - 1), `PUT ${name}`);
    return 'put';
  }
  expectOk({ status: init.status, text: init.text }, `INITIALIZE ${name}`);
  for (let start = 0; start < size; start += CHUNK) {
    const end = Math.min(size, start + CHUNK) - 1;
    expectOk(await sendFile(c, 'PATCH', urlPath, file, start, end,
      { 'Content-Range': `bytes ${start}-${end}/${size}` }), `PATCH ${name} ${start}-${end}`);
  }
  const done = await c.post(`${urlPath}?action=COMPLETE`);
  expectOk({ status: done.status, text: done.text }, `COMPLETE ${name}`);
  return 'chunks';
}

async function setup(url, schemaOut) {
  const c = new AepClient(url);
  const fg = await createFieldGroup(c, identityFieldGroupBody('Luma Identity profile field group',
    'system identifiers for XDM Individual Profile class', XDM.profile));
  const schema = await createLoyaltySchema(c, fg['$id']);
  const full = await getSchemaFull(c, schema['$id']);
  fs.writeFileSync(schemaOut, JSON.stringify(full));
  const datasetId = await createDataset(c, { name: 'Luma Loyalty Dataset (bench)', schemaId: schema['$id'] });
  return { datasetId, schemaId: schema['$id'] };
}

async function ingest(url, datasetId, file) {
  const c = new AepClient(url);
  const t0 = performance.now();
  const batchId = await createBatch(c, datasetId, { format: 'json' });
  const mode = await upload(c, batchId, datasetId, 'loyalty.json', file);
  const t1 = performance.now();
  expectOk(await c.post(`${IMPORT}/batches/${batchId}?action=COMPLETE`), 'COMPLETE batch');
  let batch;
  for (;;) {
    batch = await getBatch(c, batchId);
    if (batch.status === 'success' || batch.status === 'failed') break;
    await sleep(20);
  }
  const t2 = performance.now();
  return {
    batchId, status: batch.status, upload: mode,
    upload_s: (t1 - t0) / 1000, process_s: (t2 - t1) / 1000, total_s: (t2 - t0) / 1000,
    records: batch.metrics?.outputRecordCount ?? batch.recordCount ?? null,
    errors: batch.status === 'failed' ? batch.errors : undefined,
  };
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'setup' && args.length === 2) {
  console.log(JSON.stringify(await setup(args[0], args[1])));
} else if (cmd === 'ingest' && args.length === 3) {
  console.log(JSON.stringify(await ingest(args[0], args[1], args[2])));
} else {
  console.error('usage: http.mjs setup URL FULL_SCHEMA_OUT | ingest URL DATASET_ID FILE');
  process.exit(2);
}
