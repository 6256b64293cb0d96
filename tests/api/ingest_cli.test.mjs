// ingest_cli.test.mjs - the benchmark's smoke test: `ingot gen` makes Luma-shaped files,
// `ingot ingest` runs the engine on them, and DuckDB reads the lake file back and finds the same
// rows as its own JSON-to-Parquet conversion of the same file (count and a hash over every
// column). Also: bad rows are counted exactly, and a raw schema with standard $refs and a tenant
// field group (--resource) resolves to the same lake as the compact resolved schema.
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
const TENANT = '_techmarketingdemos';

let dir;
const q = (s) => `'${s.replaceAll("'", "''")}'`;

function run(args) {
  const r = spawnSync(ingotBin, args, { encoding: 'utf8', timeout: 120_000 });
  assert.equal(r.status, 0, `ingot ${args.join(' ')} exited ${r.status}\n${r.stderr}\n${r.stdout}`);
  return r;
}

function gen(name, extra) {
  const file = path.join(dir, name);
  const r = run(['gen', '--out', file, ...extra]);
  return { file, stats: JSON.parse(r.stderr.trim().split('\n').pop()) };
}

function ingest(schema, out, files, extra = []) {
  const r = run(['ingest', '--schema', schema, '--out', out, ...extra, ...files]);
  return JSON.parse(r.stdout);
}

// The loyalty columns with ingot's conversions (XDM string, number, date-time).
const LOYALTY_COLUMNS = `{${TENANT}: 'STRUCT(systemIdentifier STRUCT(loyaltyId VARCHAR, crmId VARCHAR))',
  loyalty: 'STRUCT(points DOUBLE, tier VARCHAR, joinDate TIMESTAMP)',
  person: 'STRUCT(name STRUCT(firstName VARCHAR, lastName VARCHAR))',
  homeAddress: 'STRUCT(city VARCHAR)'}`;
const KEY = `${TENANT}.systemIdentifier.loyaltyId, ${TENANT}.systemIdentifier.crmId, loyalty.points,
  loyalty.tier, loyalty.joinDate, person.name.firstName, person.name.lastName, homeAddress.city`;

async function countAndHash(from) {
  const [r] = await duckQuery(`SELECT count(*)::BIGINT AS n, sum(hash(${KEY}) % 1000000007)::BIGINT AS h FROM ${from}`);
  return r;
}

describe('ingot gen + ingot ingest (benchmark smoke test)', () => {
  before(() => { dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingot-cli-')); });
  after(() => { if (dir) fs.rmSync(dir, { recursive: true, force: true }); });

  test('1000 loyalty records: the lake holds the rows DuckDB reads from the JSON', async () => {
    const { file, stats } = gen('loyalty.json', ['--kind', 'loyalty', '--records', '1000', '--seed', '11',
      '--schema-out', path.join(dir, 'loyalty-schema.json')]);
    assert.equal(stats.records, 1000);
    assert.equal(stats.bad_records, 0);
    const out = path.join(dir, 'out');
    const sum = ingest(path.join(dir, 'loyalty-schema.json'), out, [file]);
    assert.equal(sum.status, 'success');
    assert.equal(sum.records_in, 1000);
    assert.equal(sum.records_out, 1000);
    assert.equal(sum.records_failed, 0);
    assert.equal(sum.input_bytes, fs.statSync(file).size);
    assert.ok(sum.seconds > 0 && sum.mb_per_s > 0);
    const lake = await countAndHash(`read_parquet(${q(path.join(out, '*.parquet'))})`);
    const json = await countAndHash(`read_json(${q(file)}, format='newline_delimited', columns=${LOYALTY_COLUMNS})`);
    assert.equal(lake.n, 1000);
    assert.deepEqual(lake, json);
    // A decoded escape (M\u00fcnchen) and a date-only joinDate as midnight UTC, as DuckDB has them.
    const [m] = await duckQuery(`SELECT count(*)::INT AS n FROM read_parquet(${q(path.join(out, '*.parquet'))})
      WHERE homeAddress.city = 'München'`);
    assert.ok(m.n > 0, 'some records live in München');
  });

  test('bad rows: exactly the generated ones fail, with AEP codes, and the rest lands', async () => {
    const { file, stats } = gen('bad.json', ['--kind', 'purchases', '--records', '1000', '--seed', '3',
      '--bad-share', '0.05', '--layout', 'array', '--schema-out', path.join(dir, 'purchases-schema.json')]);
    assert.ok(stats.bad_records > 10 && stats.bad_records < 120, JSON.stringify(stats));
    const out = path.join(dir, 'out-bad');
    const sum = ingest(path.join(dir, 'purchases-schema.json'), out, [file]);
    assert.equal(sum.status, 'success');
    assert.equal(sum.records_in, 1000);
    assert.equal(sum.records_failed, stats.bad_records);
    assert.equal(sum.records_out, 1000 - stats.bad_records);
    assert.ok(sum.errors.length > 0 && sum.errors.every((e) => /^INGEST-1[45]\d\d-400$/.test(e.code)),
      JSON.stringify(sum.errors));
    const [r] = await duckQuery(`SELECT count(*)::INT AS n, count(DISTINCT _id)::INT AS ids
      FROM read_parquet(${q(path.join(out, '*.parquet'))})`);
    assert.equal(r.n, 1000 - stats.bad_records);
    assert.equal(r.ids, r.n);
    // Without partial ingestion the first bad row fails the run.
    const strict = spawnSync(ingotBin, ['ingest', '--schema', path.join(dir, 'purchases-schema.json'),
      '--out', path.join(dir, 'out-strict'), '--max-failed', '0', file], { encoding: 'utf8' });
    assert.equal(strict.status, 1);
    assert.equal(JSON.parse(strict.stdout).status, 'failed');
  });

  test('a raw schema with standard $refs resolves like the Schema Registry does', async () => {
    const { file } = gen('raw.json', ['--kind', 'loyalty', '--records', '300', '--seed', '5']);
    const fg = {
      $id: 'https://ns.adobe.com/techmarketingdemos/mixins/clitestidentity', type: 'object',
      title: 'Luma Identity profile field group', 'meta:intendedToExtend': ['https://ns.adobe.com/xdm/context/profile'],
      definitions: { customFields: { properties: { [TENANT]: { type: 'object', properties: { systemIdentifier: {
        type: 'object', properties: { loyaltyId: { type: 'string', 'meta:xdmType': 'string' },
          crmId: { type: 'string', 'meta:xdmType': 'string' } } } } } } } },
      allOf: [{ $ref: '#/definitions/customFields' }],
    };
    const schema = {
      type: 'object', title: 'Luma Loyalty Schema', allOf: [
        { $ref: 'https://ns.adobe.com/xdm/context/profile' },
        { $ref: 'https://ns.adobe.com/xdm/context/profile-person-details' },
        { $ref: 'https://ns.adobe.com/xdm/context/profile-personal-details' },
        { $ref: 'https://ns.adobe.com/xdm/mixins/profile/profile-loyalty-details' },
        { $ref: fg.$id }],
    };
    fs.writeFileSync(path.join(dir, 'fg.json'), JSON.stringify(fg));
    fs.writeFileSync(path.join(dir, 'raw-schema.json'), JSON.stringify(schema));
    const out = path.join(dir, 'out-raw');
    const sum = ingest(path.join(dir, 'raw-schema.json'), out, [file], ['--resource', path.join(dir, 'fg.json')]);
    assert.equal(sum.records_out, 300);
    const lake = await countAndHash(`read_parquet(${q(path.join(out, '*.parquet'))})`);
    const json = await countAndHash(`read_json(${q(file)}, format='newline_delimited', columns=${LOYALTY_COLUMNS})`);
    assert.deepEqual(lake, json);
    // The tutorial schema has far more columns than the file fills: they are there, all null.
    const [c] = await duckQuery(`SELECT count(*)::INT AS n FROM parquet_schema(${q(path.join(out, 'part-00000.parquet'))})
      WHERE num_children IS NULL OR num_children = 0`);
    assert.ok(c.n > 100, `leaf columns: ${c.n}`);
    // Without the tenant field group the schema cannot be resolved.
    const bad = spawnSync(ingotBin, ['ingest', '--schema', path.join(dir, 'raw-schema.json'), '--out',
      path.join(dir, 'out-x'), file], { encoding: 'utf8' });
    assert.equal(bad.status, 1);
    assert.match(bad.stderr, /clitestidentity/);
  });
});
