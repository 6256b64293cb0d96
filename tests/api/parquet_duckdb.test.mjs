// parquet_duckdb.test.mjs - reads the Parquet writer's sample files back with DuckDB.
// Runs the cmocka binary test_parquet with PQ_SAMPLE_DIR set, then checks every file's values,
// nulls, nested lists/maps/structs, row counts, row groups, statistics and logical types.
// Expected values come from the same formulas as tests/unit/test_parquet.c (not from output).
import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { DuckDBInstance } from '@duckdb/node-api';

const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
const ingotBin = process.env.INGOT_BIN || path.join(repoRoot, 'build/asan/ingot');
const testBin = path.join(path.dirname(ingotBin), 'tests', 'test_parquet');

let dir;
let con;
const file = (name) => path.join(dir, name).replaceAll("'", "''");
const rows = async (sql) => (await con.runAndReadAll(sql)).getRowObjects();

// ---- the formulas of test_parquet.c
function flatRow(i) {
  return {
    id: `id-${i}`,
    n: i % 7 === 3 ? null : BigInt(i) * 123456789012n - 50000000000000n,
    d: i % 5 === 1 ? null : i * 0.25 - 100.0,
    b: i % 11 === 0 ? null : i % 3 === 0,
    day: 18000 + i,
    ts: 1700000000000 + i * 3600000,
    small: i % 13 === 0 ? null : ((i * 37) % 256) - 128,
  };
}

function nestedRow(i) {
  const p = i % 4;
  const person = p === 0 ? null
    : p === 1 ? { name: null }
    : { name: { first: `F${i}`, last: p === 3 ? `L${i}` : null } };
  const k = i % 5;
  let items = null;
  if (k === 1) items = [];
  if (k >= 2) {
    items = [];
    for (let j = 0; j < k; j++) {
      if (j === 1 && i % 3 === 0) items.push(null);
      else items.push({ sku: (i + j) % 4 === 0 ? null : `S${i}-${j}`, qty: i * 10 + j });
    }
  }
  const m = i % 6;
  let attrs = null;
  if (m >= 1) {
    attrs = [];
    for (let j = 0; j < m - 1; j++) attrs.push([`k${j}`, j === 2 ? null : `v${i}-${j}`]);
  }
  return { id: i, person, items, attrs };
}

const multiHash = (i) => (Math.imul(i, 2654435761) >>> 0).toString(16).padStart(8, '0');
function multiRow(i) {
  return { id: BigInt(i), s: `row-${i}-${multiHash(i)}`, c: i % 17 === 0 ? null : `cat-${i % 10}` };
}

before(async () => {
  assert.ok(existsSync(testBin), `unit test binary missing: ${testBin}`);
  dir = mkdtempSync(path.join(tmpdir(), 'ingot-pq-'));
  const r = spawnSync(testBin, [], {
    env: { ...process.env, PQ_SAMPLE_DIR: dir },
    encoding: 'utf8',
    timeout: 300000,
  });
  assert.equal(r.status, 0, `test_parquet failed:\n${r.stdout}\n${r.stderr}`);
  const inst = await DuckDBInstance.create(':memory:');
  con = await inst.connect();
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function checkFlat(name, codec) {
  const got = await rows(`SELECT id, n, d, b, datediff('day', DATE '1970-01-01', day) AS day,
      epoch_ms(ts) AS ts, small, typeof(day) AS tday, typeof(ts) AS tts, typeof(small) AS tsmall
    FROM read_parquet('${file(name)}', file_row_number = true) ORDER BY file_row_number`);
  assert.equal(got.length, 1000);
  for (let i = 0; i < 1000; i++) {
    const want = flatRow(i);
    const g = got[i];
    assert.deepEqual({ id: g.id, n: g.n, d: g.d, b: g.b, day: Number(g.day), ts: Number(g.ts), small: g.small },
      want, `${name} row ${i}`);
  }
  assert.equal(got[0].tday, 'DATE');
  assert.equal(got[0].tts, 'TIMESTAMP WITH TIME ZONE'); // isAdjustedToUTC = true
  assert.equal(got[0].tsmall, 'TINYINT');
  const meta = await rows(`SELECT DISTINCT compression, row_group_id FROM parquet_metadata('${file(name)}')`);
  assert.deepEqual(meta.map((m) => m.compression), [codec]);
  assert.equal(meta.length, 1);
  // Filters that DuckDB may answer from statistics must agree with the formula.
  const cut = 123n * 123456789012n - 50000000000000n;
  let want = 0;
  for (let i = 0; i < 1000; i++) { const n = flatRow(i).n; if (n !== null && n > cut) want++; }
  const [c] = await rows(`SELECT count(*) AS c FROM read_parquet('${file(name)}') WHERE n > ${cut}`);
  assert.equal(Number(c.c), want);
}

describe('parquet writer read back by DuckDB', () => {
  test('flat.parquet: values, nulls and types', async () => {
    await checkFlat('flat.parquet', 'ZSTD');
  });

  test('flat.parquet: logical and converted types in parquet_schema()', async () => {
    const sch = await rows(`SELECT name, type, converted_type, logical_type, repetition_type
      FROM parquet_schema('${file('flat.parquet')}')`);
    const by = Object.fromEntries(sch.map((s) => [s.name, s]));
    assert.equal(by.id.type, 'BYTE_ARRAY');
    assert.equal(by.id.converted_type, 'UTF8');
    assert.equal(by.id.logical_type, 'StringType()');
    assert.equal(by.id.repetition_type, 'REQUIRED');
    assert.equal(by.n.type, 'INT64');
    assert.equal(by.n.repetition_type, 'OPTIONAL');
    assert.equal(by.d.type, 'DOUBLE');
    assert.equal(by.b.type, 'BOOLEAN');
    assert.equal(by.day.converted_type, 'DATE');
    assert.equal(by.day.logical_type, 'DateType()');
    assert.equal(by.ts.converted_type, 'TIMESTAMP_MILLIS');
    assert.match(by.ts.logical_type, /^TimestampType\(isAdjustedToUTC=1, unit=TimeUnit\(MILLIS=MilliSeconds\(\)/);
    assert.equal(by.small.type, 'INT32');
    assert.equal(by.small.converted_type, 'INT_8');
    assert.match(by.small.logical_type, /^IntType\(bitWidth=.*, isSigned=1\)$/);
  });

  test('nested.parquet: structs, lists (empty, null, null elements) and maps', async () => {
    const got = await rows(`SELECT id, to_json(person)::VARCHAR AS person,
        to_json(items)::VARCHAR AS items, to_json(map_entries(attrs))::VARCHAR AS attrs,
        typeof(items) AS titems, typeof(attrs) AS tattrs, typeof(person) AS tperson
      FROM read_parquet('${file('nested.parquet')}') ORDER BY id`);
    assert.equal(got.length, 300);
    for (let i = 0; i < 300; i++) {
      const want = nestedRow(i);
      const g = got[i];
      assert.equal(g.id, i);
      assert.deepEqual(JSON.parse(g.person), want.person, `person row ${i}`);
      assert.deepEqual(JSON.parse(g.items), want.items, `items row ${i}`);
      const entries = JSON.parse(g.attrs);
      assert.deepEqual(entries === null ? null : entries.map((e) => [e.key, e.value]), want.attrs,
        `attrs row ${i}`);
    }
    assert.equal(got[0].titems, 'STRUCT(sku VARCHAR, qty INTEGER)[]');
    assert.equal(got[0].tattrs, 'MAP(VARCHAR, VARCHAR)');
    assert.equal(got[0].tperson, 'STRUCT("name" STRUCT("first" VARCHAR, "last" VARCHAR))');
    const sch = await rows(`SELECT name, converted_type, logical_type, repetition_type
      FROM parquet_schema('${file('nested.parquet')}')`);
    const by = Object.fromEntries(sch.map((s) => [s.name, s]));
    assert.equal(by.items.converted_type, 'LIST');
    assert.equal(by.items.logical_type, 'ListType()');
    assert.equal(by.list.repetition_type, 'REPEATED');
    assert.equal(by.attrs.converted_type, 'MAP');
    assert.equal(by.attrs.logical_type, 'MapType()');
    assert.equal(by.key_value.repetition_type, 'REPEATED');
    assert.equal(by.key.repetition_type, 'REQUIRED');
  });

  for (const [name, codec] of [['zstd', 'ZSTD'], ['snappy', 'SNAPPY'], ['gzip', 'GZIP'], ['none', 'UNCOMPRESSED']]) {
    test(`codec_${name}.parquet: same values under ${codec}`, async () => {
      await checkFlat(`codec_${name}.parquet`, codec);
    });
  }

  test('multi_rg.parquet: 100000 rows in many row groups, dictionary fallback', async () => {
    const f = file('multi_rg.parquet');
    const [agg] = await rows(`SELECT count(*) AS n, count(DISTINCT s) AS ds, sum(id) AS sid,
        count(c) AS nc FROM read_parquet('${f}')`);
    let nc = 0;
    for (let i = 0; i < 100000; i++) if (multiRow(i).c !== null) nc++;
    assert.equal(agg.n, 100000n);
    assert.equal(agg.ds, 100000n);
    assert.equal(agg.sid, BigInt(100000 * 99999 / 2));
    assert.equal(agg.nc, BigInt(nc));
    const sample = await rows(`SELECT id, s, c FROM read_parquet('${f}') WHERE id % 997 = 0 ORDER BY id`);
    const want = [];
    for (let i = 0; i < 100000; i += 997) want.push(multiRow(i));
    assert.deepEqual(sample, want);
    // Point and range filters (answerable with row-group statistics).
    const [one] = await rows(`SELECT count(*) AS n FROM read_parquet('${f}') WHERE s = '${multiRow(54321).s}'`);
    assert.equal(one.n, 1n);
    const [range] = await rows(`SELECT count(*) AS n FROM read_parquet('${f}') WHERE id BETWEEN 12345 AND 23456`);
    assert.equal(range.n, 23456n - 12345n + 1n);

    const meta = await rows(`SELECT row_group_id, row_group_num_rows, path_in_schema, encodings,
        stats_min_value, stats_max_value, stats_null_count, compression, dictionary_page_offset
      FROM parquet_metadata('${f}') ORDER BY row_group_id, column_id`);
    const groups = [...new Set(meta.map((m) => m.row_group_id))];
    assert.ok(groups.length >= 5, `expected many row groups, got ${groups.length}`);
    let start = 0;
    for (const g of groups) {
      const cols = meta.filter((m) => m.row_group_id === g);
      const num = Number(cols[0].row_group_num_rows);
      const id = cols.find((m) => m.path_in_schema === 'id');
      assert.equal(id.stats_min_value, String(start));
      assert.equal(id.stats_max_value, String(start + num - 1));
      assert.equal(id.compression, 'ZSTD');
      const c = cols.find((m) => m.path_in_schema === 'c');
      let nulls = 0;
      for (let i = start; i < start + num; i++) if (i % 17 === 0) nulls++;
      assert.equal(Number(c.stats_null_count), nulls);
      assert.match(c.encodings, /RLE_DICTIONARY/);
      start += num;
    }
    assert.equal(start, 100000);
    // In a full row group the high-cardinality column starts with the dictionary and falls back.
    const s0 = meta.find((m) => m.row_group_id === groups[0] && m.path_in_schema === 's');
    assert.match(s0.encodings, /RLE_DICTIONARY/);
    assert.match(s0.encodings, /PLAIN/);
    assert.notEqual(s0.dictionary_page_offset, null);
  });
});
