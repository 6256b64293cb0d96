// ingest_parallel.test.mjs - the engine on two threads gives what it gives on one: `ingot gen`
// writes a loyalty JSON Lines file larger than the engine's split threshold (8 MiB) with bad rows
// spread over the whole file; `ingot ingest --threads 2` (the file cut into two ranges, two part
// files) and `--threads 1` (sequential, one part file) run on it with diagnostics on, for partial
// ingestion on (no row limit) and off (the first bad row stops the run). DuckDB reads both lakes
// and finds the same rows (order-insensitive: counts, EXCEPT ALL both ways); the row errors, the
// first error and every row_errors file are identical byte for byte.
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { duckQuery } from './lib/aep.mjs';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ingotBin = process.env.INGOT_BIN || path.join(repoRoot, 'build/asan/ingot');
const RECORDS = 36000; // about 9.8 MB: above the 8 MiB split threshold

let dir, file, schema, stats;
const q = (s) => `'${s.replaceAll("'", "''")}'`;

function run(args) {
  const r = spawnSync(ingotBin, args, { encoding: 'utf8', timeout: 180_000 });
  return r;
}

function ingest(name, threads, maxFailed) {
  const out = path.join(dir, `${name}-out`);
  const diag = path.join(dir, `${name}-diag`);
  const errors = path.join(dir, `${name}-errors.json`);
  const r = run(['ingest', '--schema', schema, '--out', out, '--threads', String(threads),
    '--max-failed', String(maxFailed), '--diagnostics', diag, '--errors-out', errors, file]);
  assert.ok(r.stdout, `ingot ingest printed no summary: ${r.stderr}`);
  return { status: r.status, sum: JSON.parse(r.stdout), out, diag, errors: JSON.parse(fs.readFileSync(errors, 'utf8')) };
}

function rowErrorFiles(d) {
  const root = path.join(d, 'row_errors');
  return fs.readdirSync(root).sort().map((name) => [name, fs.readFileSync(path.join(root, name))]);
}

function assertSameDiagnostics(a, b) {
  const fa = rowErrorFiles(a.diag), fb = rowErrorFiles(b.diag);
  assert.deepEqual(fb.map(([n]) => n), fa.map(([n]) => n));
  for (let i = 0; i < fa.length; i++)
    assert.ok(fa[i][1].equals(fb[i][1]), `${fa[i][0]} differs between the runs`);
  return fa;
}

async function assertSameRows(a, b) {
  const src = (o) => `read_parquet(${q(path.join(o.out, '*.parquet'))})`;
  const [n] = await duckQuery(`SELECT (SELECT count(*) FROM ${src(a)})::BIGINT AS a, (SELECT count(*) FROM ${src(b)})::BIGINT AS b,
    (SELECT count(*) FROM (SELECT * FROM ${src(a)} EXCEPT ALL SELECT * FROM ${src(b)}))::BIGINT AS a_only,
    (SELECT count(*) FROM (SELECT * FROM ${src(b)} EXCEPT ALL SELECT * FROM ${src(a)}))::BIGINT AS b_only`);
  assert.equal(n.a, n.b);
  assert.equal(n.a_only, 0);
  assert.equal(n.b_only, 0);
  return n.a;
}

describe('ingot ingest --threads 2 = --threads 1', () => {
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingot-par-'));
    file = path.join(dir, 'loyalty.json');
    schema = path.join(dir, 'schema.json');
    const r = run(['gen', '--kind', 'loyalty', '--records', String(RECORDS), '--seed', '21',
      '--bad-share', '0.02', '--out', file, '--schema-out', schema]);
    assert.equal(r.status, 0, r.stderr);
    stats = JSON.parse(r.stderr.trim().split('\n').pop());
    assert.ok(fs.statSync(file).size > 8 * 1024 * 1024, 'the file must be above the split threshold');
  });
  after(() => { if (dir) fs.rmSync(dir, { recursive: true, force: true }); });

  test('partial ingestion on: same rows in the lake, same errors and diagnostics', async () => {
    const seq = ingest('seq', 1, -1);
    const par = ingest('par', 2, -1);
    assert.equal(seq.status, 0);
    assert.equal(par.status, 0);
    assert.equal(seq.sum.output_files, 1);
    assert.equal(par.sum.output_files, 2, 'the file was cut into two ranges');
    for (const k of ['records_in', 'records_out', 'records_failed', 'unknown_fields', 'input_bytes'])
      assert.equal(par.sum[k], seq.sum[k], k);
    assert.equal(seq.sum.records_failed, stats.bad_records);
    assert.deepEqual(par.errors, seq.errors);
    // Bad rows in both halves, numbered in the whole file.
    const rows = seq.errors.errors.map((e) => e.row);
    assert.ok(rows.some((r) => r < RECORDS / 2) && rows.some((r) => r > RECORDS / 2));
    const files = assertSameDiagnostics(seq, par);
    assert.ok(files.length >= 2);
    const n = await assertSameRows(seq, par);
    assert.equal(n, RECORDS - stats.bad_records);
  });

  test('partial ingestion off: the same first bad row stops both runs', async () => {
    const seq = ingest('seq0', 1, 0);
    const par = ingest('par0', 2, 0);
    assert.equal(seq.status, 1);
    assert.equal(par.status, 1);
    assert.equal(seq.sum.records_failed, 1);
    assert.deepEqual(par.errors, seq.errors);
    assert.equal(par.sum.records_in, seq.sum.records_in);
    assert.equal(seq.errors.first_error.row, seq.sum.records_in);
    assertSameDiagnostics(seq, par);
  });
});
