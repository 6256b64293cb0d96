// http.mjs - the HTTP side of the benchmark: ingot end to end through the AEP APIs.
//
//   node bench/http.mjs setup URL FULL_SCHEMA_OUT  -> {"datasetId","schemaId"}
//       the tutorial's way: identity field group, Luma loyalty schema (Individual Profile +
//       Person, Personal Contact and Loyalty Details + the identity group), a dataset on it; the
//       resolved (xed-full) schema is saved so that `ingot ingest` runs on the very same schema.
//   node bench/http.mjs ingest URL DATASET_ID FILE -> {"batchId","upload_s","process_s","total_s",...}
//       create batch, upload (one PUT up to 256 MB, else the large-file API: INITIALIZE, PATCH
//       chunks with Content-Range, COMPLETE), COMPLETE the batch, poll the Catalog (every
//       BENCH_POLL_MS, default 5) until a final state. total_s runs from the batch creation to
//       the poll that saw the final state.
//   node bench/http.mjs upload URL DATASET_ID FILE -> {"batchId","upload_s"}
//       the upload alone (create batch, upload the file), leaving the batch loading: for
//       measuring the server's receiving side (perf stat -p on the server around it).
//
// The bytes go the way a user would send them: with curl (BENCH_CLIENT=curl, the default), one
// `curl -T FILE` per request: a PUT up to 256 MB, else one PATCH chunk with the whole file (AEP
// takes chunks up to 512,000,000 bytes, so a file up to that size needs no cutting). curl cannot
// send a byte range of a file, so a larger file, and BENCH_CLIENT=node, use node's own client:
// the body is read from the file in large pieces (BENCH_READ_MB, default 4; three buffers used
// in turn) written straight to the socket, and a large file goes as chunks of BENCH_CHUNK_MB
// (default 64) with BENCH_PARALLEL (default 2) of them in flight at once (AEP takes chunks in any
// order), so one chunk's fsync on the server overlaps the next one's bytes. BENCH_CHUNK_MB=256
// BENCH_PARALLEL=1 is the sequential client of the earlier figures. curl costs about half the
// CPU of node's client per byte (0.13-0.15 s for 272 MB against about 0.3 s), on the same two
// cores as the server.
//
// The schema helpers are the API tests' (tests/api/lib), so the bench and the tests build the
// tutorial's schema the same way.
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { AepClient, XDM, IMPORT, createBatch, createDataset, createFieldGroup, fileUrl,
  getBatch, getSchemaFull } from '../tests/api/lib/aep.mjs';
import { createLoyaltySchema, identityFieldGroupBody } from '../tests/api/lib/luma.mjs';

const MAX_PUT = 256 * 1024 * 1024;   // AEP's small-file limit
const MB = 1024 * 1024;
// large-file chunk size (AEP allows up to 512,000,000)
const CHUNK = Number(process.env.BENCH_CHUNK_MB || 64) * MB;
const PARALLEL = Math.max(1, Number(process.env.BENCH_PARALLEL || 2));
const READ = Number(process.env.BENCH_READ_MB || 4) * MB;
const RING = 3;
const CLIENT = process.env.BENCH_CLIENT || 'curl';
const MAX_CHUNK = 512000000;         // AEP's largest chunk
// Catalog polls after COMPLETE: a GET costs the server well under a millisecond, and the poll's
// granularity is counted in the processing time (20 ms, the earlier value, added 10 ms on average).
const POLL_MS = Number(process.env.BENCH_POLL_MS || 5);

// One request whose body is the whole file, sent by curl (`-T`, streamed from the file; no
// "Expect: 100-continue" round trip).
function curlFile(c, method, urlPath, file, extraHeaders = {}) {
  const url = new URL(urlPath, c.baseUrl);
  const headers = { ...c.headers(extraHeaders), 'Content-Type': 'application/octet-stream', Expect: '' };
  const args = ['-sS', '-X', method, '-T', file, '-w', '\n%{http_code}'];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}:${v === '' ? '' : ` ${v}`}`);
  args.push(url.href);
  return new Promise((resolve, reject) => {
    execFile('curl', args, { maxBuffer: 16 * MB }, (e, stdout, stderr) => {
      if (e) return reject(new Error(`curl ${method} ${urlPath}: ${stderr || e.message}`));
      const cut = stdout.lastIndexOf('\n');
      resolve({ status: Number(stdout.slice(cut + 1)), text: stdout.slice(0, cut) });
    });
  });
}

// One request whose body is bytes start..end (inclusive) of an open file, read in large pieces
// and written to the socket as they come (waiting for 'drain' keeps memory bounded).
async function sendFile(c, method, urlPath, fh, start, end, extraHeaders = {}) {
  const url = new URL(urlPath, c.baseUrl);
  const headers = {
    ...c.headers(extraHeaders),
    'Content-Type': 'application/octet-stream',
    'Content-Length': String(end - start + 1),
  };
  const req = http.request({ method, hostname: url.hostname, port: url.port,
    path: url.pathname + url.search, headers, agent: false });
  const answer = new Promise((resolve, reject) => {
    req.on('response', (res) => {
      const parts = [];
      res.on('data', (d) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode, text: Buffer.concat(parts).toString('utf8') }));
    });
    req.on('error', reject);
  });
  // A few buffers used in turn: a buffer is read into again only once the socket took its last
  // bytes (the write callback), so no fresh memory is faulted in per piece.
  const ring = Array.from({ length: RING }, () => ({ buf: Buffer.allocUnsafe(READ), sent: Promise.resolve() }));
  for (let pos = start, i = 0; pos <= end; i++) {
    const slot = ring[i % RING];
    await slot.sent;
    const want = Math.min(READ, end - pos + 1);
    const { bytesRead } = await fh.read(slot.buf, 0, want, pos);
    if (bytesRead <= 0) throw new Error(`short read at ${pos}`);
    pos += bytesRead;
    slot.sent = new Promise((resolve, reject) =>
      req.write(slot.buf.subarray(0, bytesRead), (e) => (e ? reject(e) : resolve())));
  }
  req.end();
  return answer;
}

function expectOk(res, what) {
  if (res.status < 200 || res.status > 299)
    throw new Error(`${what}: HTTP ${res.status} ${res.text.slice(0, 500)}`);
}

async function upload(c, batchId, datasetId, name, file) {
  const size = (await fs.promises.stat(file)).size;
  if (CLIENT === 'curl' && size <= MAX_CHUNK) {
    const urlPath = fileUrl(batchId, datasetId, name);
    if (size <= MAX_PUT) {
      expectOk(await curlFile(c, 'PUT', urlPath, file), `PUT ${name}`);
      return 'curl, one PUT';
    }
    expectOk(await c.post(`${urlPath}?action=INITIALIZE`), `INITIALIZE ${name}`);
    expectOk(await curlFile(c, 'PATCH', urlPath, file,
      { 'Content-Range': `bytes 0-${size - 1}/${size}` }), `PATCH ${name}`);
    expectOk(await c.post(`${urlPath}?action=COMPLETE`), `COMPLETE ${name}`);
    return 'curl, one chunk';
  }
  const fh = await fs.promises.open(file, 'r');
  try {
    return await uploadOpen(c, batchId, datasetId, name, fh, (await fh.stat()).size);
  } finally {
    await fh.close();
  }
}

async function uploadOpen(c, batchId, datasetId, name, fh, size) {
  const urlPath = fileUrl(batchId, datasetId, name);
  if (size <= MAX_PUT) {
    expectOk(await sendFile(c, 'PUT', urlPath, fh, 0, size - 1), `PUT ${name}`);
    return 'put';
  }
  const init = await c.post(`${urlPath}?action=INITIALIZE`);
  if (init.status === 404 || init.status === 405) {
    // A server without the large-file API: one PUT (it may refuse a large body).
    expectOk(await sendFile(c, 'PUT', urlPath, fh, 0, size - 1), `PUT ${name}`);
    return 'put';
  }
  expectOk({ status: init.status, text: init.text }, `INITIALIZE ${name}`);
  // PARALLEL senders take the chunks in order from one shared cursor.
  let next = 0;
  const sender = async () => {
    while (next < size) {
      const start = next;
      const end = Math.min(size, start + CHUNK) - 1;
      next = end + 1;
      expectOk(await sendFile(c, 'PATCH', urlPath, fh, start, end,
        { 'Content-Range': `bytes ${start}-${end}/${size}` }), `PATCH ${name} ${start}-${end}`);
    }
  };
  await Promise.all(Array.from({ length: PARALLEL }, sender));
  const done = await c.post(`${urlPath}?action=COMPLETE`);
  expectOk({ status: done.status, text: done.text }, `COMPLETE ${name}`);
  return `chunks of ${CHUNK / MB} MiB, ${PARALLEL} in flight`;
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
    await sleep(POLL_MS);
  }
  const t2 = performance.now();
  return {
    batchId, status: batch.status, upload: mode,
    upload_s: (t1 - t0) / 1000, process_s: (t2 - t1) / 1000, total_s: (t2 - t0) / 1000,
    records: batch.metrics?.outputRecordCount ?? batch.recordCount ?? null,
    errors: batch.status === 'failed' ? batch.errors : undefined,
  };
}

async function uploadOnly(url, datasetId, file) {
  const c = new AepClient(url);
  const t0 = performance.now();
  const batchId = await createBatch(c, datasetId, { format: 'json' });
  const mode = await upload(c, batchId, datasetId, 'loyalty.json', file);
  return { batchId, upload: mode, upload_s: (performance.now() - t0) / 1000 };
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'setup' && args.length === 2) {
  console.log(JSON.stringify(await setup(args[0], args[1])));
} else if (cmd === 'ingest' && args.length === 3) {
  console.log(JSON.stringify(await ingest(args[0], args[1], args[2])));
} else if (cmd === 'upload' && args.length === 3) {
  console.log(JSON.stringify(await uploadOnly(args[0], args[1], args[2])));
} else {
  console.error('usage: http.mjs setup URL FULL_SCHEMA_OUT | ingest|upload URL DATASET_ID FILE');
  process.exit(2);
}
