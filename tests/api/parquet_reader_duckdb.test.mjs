// parquet_reader_duckdb.test.mjs - ingot's Parquet reader against DuckDB, value for value.
// DuckDB writes files with every compression, dictionary on and off, data pages v1 and v2
// (DELTA_BINARY_PACKED, DELTA_LENGTH_BYTE_ARRAY, BYTE_STREAM_SPLIT), small row groups, nested
// structs, lists, lists of lists, maps, nulls at each level, decimals, timestamps, dates, all
// integer widths, booleans, blobs, UUIDs and enums. Each file is read by ingot's reader (the unit
// test binary test_pq_reader in its PQ_READ_FILE mode prints rows as JSON Lines) and by DuckDB
// (to_json of every row), and the two must agree. Also: a file written by ingot's writer read by
// both, and the Luma JSON files converted to Parquet by DuckDB read back equal to the JSON.
//
// Comparison: numbers are compared exactly as decimal text (trailing zeros aside) and as doubles
// when either side uses an exponent; FLOAT columns (names starting with f32) as float32, because
// DuckDB prints them widened to double; timestamps and times ignore the "T"/" " separator, the
// "Z"/"+00" suffix and trailing zeros of the fraction; blobs are compared in base64 (ingot's
// rendering of unannotated binaries).
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
const readerBin = path.join(path.dirname(ingotBin), 'tests', 'test_pq_reader');
const lumaDir = [path.join(repoRoot, '..', 'shared', 'reference', 'luma'),
  '/work/shared/reference/luma'].find((d) => existsSync(d));

let dir;
let con;
const sqlPath = (p) => p.replaceAll("'", "''");

// ---- JSON parsing that keeps numbers as their text (64-bit integers survive)
export function parseJson(text) {
  let i = 0;
  const num = /-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
  const ws = () => { while (i < text.length && ' \t\n\r'.includes(text[i])) i++; };
  const str = () => {
    let j = i + 1;
    while (text[j] !== '"') { if (text[j] === '\\') j++; j++; }
    const s = JSON.parse(text.slice(i, j + 1));
    i = j + 1;
    return s;
  };
  const val = () => {
    ws();
    const c = text[i];
    if (c === '{') {
      i++; const o = {}; ws();
      if (text[i] === '}') { i++; return o; }
      for (;;) { ws(); const k = str(); ws(); i++; o[k] = val(); ws(); if (text[i++] === ',') continue; return o; }
    }
    if (c === '[') {
      i++; const a = []; ws();
      if (text[i] === ']') { i++; return a; }
      for (;;) { a.push(val()); ws(); if (text[i++] === ',') continue; return a; }
    }
    if (c === '"') return str();
    for (const [w, v] of [['true', true], ['false', false], ['null', null]]) {
      if (text.startsWith(w, i)) { i += w.length; return v; }
    }
    num.lastIndex = i;
    const m = num.exec(text);
    if (!m) throw new Error(`bad JSON at ${i}: ${text.slice(i, i + 30)}`);
    i += m[0].length;
    return { num: m[0] };
  };
  const v = val(); ws();
  if (i !== text.length) throw new Error(`trailing text after JSON: ${text.slice(i, i + 30)}`);
  return v;
}

const canonNum = (s) => {
  if (/[eE]/.test(s)) return null;
  let [a, b = ''] = s.split('.');
  b = b.replace(/0+$/, '');
  let r = b ? `${a}.${b}` : a;
  if (/^-0$/.test(r)) r = '0';
  return r;
};
const tsRe = /^(-?\d{4,})-(\d\d)-(\d\d)[T ](\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:Z|[+-]00(?::?00)?)?$/;
const timeRe = /^(\d\d):(\d\d):(\d\d)(?:\.(\d+))?$/;
const canonStr = (s) => {
  let m = tsRe.exec(s);
  if (m) {
    const f = (m[7] || '').replace(/0+$/, '');
    return `${m[1]}-${m[2]}-${m[3]}T${m[4]}:${m[5]}:${m[6]}${f ? '.' + f : ''}`;
  }
  m = timeRe.exec(s);
  if (m) {
    const f = (m[4] || '').replace(/0+$/, '');
    return `${m[1]}:${m[2]}:${m[3]}${f ? '.' + f : ''}`;
  }
  return s;
};
const isNum = (v) => v !== null && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 1 && 'num' in v;

// First difference between ingot's value `a` and DuckDB's `b`, or null.
export function diff(a, b, where = '', isFloat = false) {
  const fl = isFloat || /(^|\.)f32/.test(where);
  const show = (v) => (isNum(v) ? v.num : JSON.stringify(v));
  if (isNum(a)) {
    if (!isNum(b)) return `${where}: ${a.num} vs ${show(b)}`;
    let same;
    if (fl) same = Math.fround(Number(a.num)) === Math.fround(Number(b.num));
    else {
      const ca = canonNum(a.num), cb = canonNum(b.num);
      same = ca !== null && cb !== null ? ca === cb : Number(a.num) === Number(b.num);
    }
    return same ? null : `${where}: ${a.num} vs ${b.num}`;
  }
  if (typeof a === 'string') {
    return typeof b === 'string' && canonStr(a) === canonStr(b) ? null : `${where}: ${show(a)} vs ${show(b)}`;
  }
  if (a === null || typeof a !== 'object') return a === b ? null : `${where}: ${show(a)} vs ${show(b)}`;
  if (Array.isArray(a)) {
    if (!Array.isArray(b) || a.length !== b.length) return `${where}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`;
    for (let k = 0; k < a.length; k++) {
      const d = diff(a[k], b[k], `${where}[${k}]`, fl);
      if (d) return d;
    }
    return null;
  }
  if (!b || typeof b !== 'object' || Array.isArray(b) || isNum(b)) return `${where}: object vs ${show(b)}`;
  const ka = Object.keys(a), kb = Object.keys(b);
  if (ka.join(',') !== kb.join(',')) return `${where}: keys [${ka}] vs [${kb}]`;
  for (const k of ka) {
    const d = diff(a[k], b[k], where ? `${where}.${k}` : k, fl);
    if (d) return d;
  }
  return null;
}

// ---- the two readers
function ingotRows(file) {
  const r = spawnSync(readerBin, [], {
    env: { ...process.env, PQ_READ_FILE: file },
    encoding: 'utf8',
    maxBuffer: 256 << 20,
    timeout: 120000,
  });
  return { status: r.status, stderr: r.stderr, lines: r.stdout.split('\n').filter(Boolean) };
}

async function duckRows(selectSql) {
  const r = await con.runAndReadAll(`SELECT to_json(t) AS j FROM (${selectSql}) t`);
  return r.getRowObjects().map((o) => o.j);
}

function assertSame(ours, theirs, label) {
  assert.equal(ours.length, theirs.length, `${label}: row count`);
  for (let k = 0; k < ours.length; k++) {
    assert.ok(!ours[k].includes('"__error"'), `${label}: row ${k + 1} failed in ingot: ${ours[k]}`);
    const d = diff(parseJson(ours[k]), parseJson(theirs[k]));
    assert.equal(d, null, `${label}: row ${k + 1} differs: ${d}`);
  }
}

// ---- the data
const SCALARS = (n) => `SELECT i::INTEGER AS id,
  CASE WHEN i % 7 = 0 THEN NULL ELSE ((i * 37) % 256 - 128)::TINYINT END AS i8,
  ((i * 997) % 65536 - 32768)::SMALLINT AS i16,
  (i * 104729 - 50000000)::INTEGER AS i32,
  CASE WHEN i = 1 THEN 9223372036854775807 WHEN i = 2 THEN -9223372036854775808 WHEN i % 5 = 0 THEN NULL
       ELSE i::BIGINT * 1000000000007 - 1000000000000000 END::BIGINT AS i64,
  (i % 256)::UTINYINT AS u8, (i * 31 % 65536)::USMALLINT AS u16,
  (i::BIGINT * 1431655 % 4294967296)::UINTEGER AS u32,
  CASE WHEN i = 3 THEN 18446744073709551615::UBIGINT ELSE (i % 3000)::UBIGINT * 6148914691236517 END AS u64,
  i % 3 = 0 AS b, CASE WHEN i % 4 = 0 THEN NULL ELSE i % 2 = 0 END AS bn,
  (i * 0.1)::FLOAT AS f32, CASE WHEN i % 9 = 0 THEN NULL ELSE i * 1.0e-3 - 1.5 END::DOUBLE AS d,
  CASE WHEN i = 4 THEN 1e300 WHEN i = 5 THEN -2.5e-300 ELSE i / 7.0 END::DOUBLE AS d2,
  'row ' || i || ' ' || repeat('é', i % 4) ||
    CASE WHEN i % 10 = 0 THEN ' "q" \\ tab' || chr(9) || chr(1) || '✓𝄞' ELSE '' END AS s,
  CASE WHEN i % 6 = 0 THEN NULL ELSE 'cat' || (i % 5) END AS cat,
  ('bin' || i || chr(0))::BLOB AS bin,
  CASE WHEN i = 6 THEN DATE '1969-12-31' WHEN i = 7 THEN DATE '0001-01-01' WHEN i = 8 THEN DATE '9999-12-31'
       ELSE DATE '2020-01-01' + (i * 3)::INTEGER END AS dt,
  TIMESTAMP '2024-01-01 00:00:00' + to_microseconds(i * 3601000123) AS ts,
  CASE WHEN i = 9 THEN TIMESTAMP_MS '1969-12-31 23:59:59.999'
       ELSE (TIMESTAMP '2024-01-01' + to_milliseconds(i * 86399999))::TIMESTAMP_MS END AS tsms,
  (TIMESTAMP_NS '1999-12-31 23:59:59.123456789' + to_microseconds(i))::TIMESTAMP_NS AS tsns,
  (TIMESTAMPTZ '2024-06-01 12:00:00+00' + to_seconds(i * 77))::TIMESTAMPTZ AS tstz,
  (TIME '00:00:00' + to_microseconds(i * 28800123))::TIME AS tm,
  ((i % 1000) * 1.5 - 700)::DECIMAL(4,1) AS dec4,
  CASE WHEN i % 8 = 0 THEN NULL ELSE (i * 12345.6789 - 1e6)::DECIMAL(15,4) END AS dec15,
  (i * 98765432109.87654321 - 1e13)::DECIMAL(30,8) AS dec30,
  md5(i::VARCHAR)::UUID AS uid,
  (['sad','ok','happy'])[i % 3 + 1]::mood AS mood
FROM range(${n}) t(i)`;

const NESTED = (n) => `SELECT i::INTEGER AS id,
  CASE WHEN i % 5 = 0 THEN NULL ELSE {'name': CASE WHEN i % 5 = 1 THEN NULL ELSE 'n' || i END,
    'addr': CASE WHEN i % 5 = 2 THEN NULL ELSE {'city': 'c' || (i % 7), 'zip': CASE WHEN i % 3 = 0 THEN NULL ELSE i * 10 END} END} END AS person,
  CASE WHEN i % 6 = 0 THEN NULL WHEN i % 6 = 1 THEN []::BIGINT[]
       ELSE list_transform(range(i % 6), x -> CASE WHEN x = 2 THEN NULL ELSE x * i END) END AS ints,
  CASE WHEN i % 8 = 0 THEN NULL ELSE list_transform(range(i % 4), x -> CASE WHEN x = 1 AND i % 2 = 0 THEN NULL
       ELSE {'sku': 's' || x, 'qty': CASE WHEN x = 2 THEN NULL ELSE x + i END} END) END AS items,
  CASE WHEN i % 9 = 0 THEN [NULL, []]
       ELSE list_transform(range(i % 3), x -> list_transform(range(x + 1), y -> y * i)) END AS grid,
  CASE WHEN i % 7 = 0 THEN NULL ELSE MAP(list_transform(range(i % 4), x -> 'k' || x),
       list_transform(range(i % 4), x -> CASE WHEN x = 1 THEN NULL ELSE x * i END)) END AS attrs,
  MAP(list_transform(range(i % 3), x -> (x * 10)::INTEGER), list_transform(range(i % 3), x -> 'v' || x)) AS imap,
  [(i * 0.1)::FLOAT, NULL] AS f32l,
  {'tags': list_transform(range(i % 3), x -> 't' || x), 'n': i, 'deep': {'l': [[{'x': i}]]}} AS doc
FROM range(${n}) t(i)`;

const VARIANTS = [
  ['uncompressed', 'COMPRESSION uncompressed'],
  ['snappy', 'COMPRESSION snappy'],
  ['gzip', 'COMPRESSION gzip'],
  ['zstd', 'COMPRESSION zstd'],
  ['lz4_raw', 'COMPRESSION lz4_raw'],
  ['brotli', 'COMPRESSION brotli'],
  ['v2 zstd', 'PARQUET_VERSION v2, COMPRESSION zstd'],
  ['v2 uncompressed', 'PARQUET_VERSION v2, COMPRESSION uncompressed'],
  ['no dictionary', 'DICTIONARY_SIZE_LIMIT 1, COMPRESSION snappy'],
  // DuckDB cuts row groups at multiples of its 2048-row vectors: more rows for these two
  ['small row groups', 'ROW_GROUP_SIZE 2048, COMPRESSION zstd', 5000],
  ['v2 small row groups', 'ROW_GROUP_SIZE 2048, PARQUET_VERSION v2, COMPRESSION gzip', 5000],
];

before(async () => {
  assert.ok(existsSync(readerBin), `reader test binary missing: ${readerBin}`);
  dir = mkdtempSync(path.join(tmpdir(), 'ingot-pqr-'));
  const inst = await DuckDBInstance.create(':memory:');
  con = await inst.connect();
  await con.run('SET threads = 1'); // rows in file order
  await con.run("CREATE TYPE mood AS ENUM ('sad', 'ok', 'happy')");
});

after(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function roundTrip(kind, sql, label, opts) {
  const f = path.join(dir, `${kind}-${label.replaceAll(' ', '_')}.parquet`);
  await con.run(`COPY (${sql}) TO '${sqlPath(f)}' (FORMAT parquet, ${opts})`);
  const ours = ingotRows(f);
  assert.equal(ours.status, 0, `ingot failed on ${label}: ${ours.stderr}`);
  const proj = kind === 'scalars' ? `SELECT * REPLACE (base64(bin) AS bin) FROM '${sqlPath(f)}'` : `SELECT * FROM '${sqlPath(f)}'`;
  assertSame(ours.lines, await duckRows(proj), `${kind} ${label}`);
  return f;
}

describe('DuckDB-written files read by ingot equal DuckDB\'s own read', () => {
  for (const [label, opts, rows = 1500] of VARIANTS) {
    for (const [kind, sql] of [['scalars', SCALARS], ['nested', NESTED]]) {
      test(`${kind}, ${label}`, async (t) => {
        const f = await roundTrip(kind, sql(rows), label, opts);
        if (label === 'no dictionary' || label === 'uncompressed') {
          // the two dictionary settings really differ where it matters (low-cardinality text)
          const enc = await con.runAndReadAll(`SELECT encodings FROM parquet_metadata('${sqlPath(f)}')
            WHERE path_in_schema = '${kind === 'scalars' ? 'cat' : 'person, addr, city'}' AND row_group_id = 0`);
          const e = String(enc.getRowObjects()[0].encodings);
          if (label === 'no dictionary') assert.ok(!/DICTIONARY/.test(e), e);
          else assert.ok(/DICTIONARY/.test(e), e);
        }
        if (label.startsWith('v2')) {
          const enc = await con.runAndReadAll(`SELECT DISTINCT encodings FROM parquet_metadata('${sqlPath(f)}')`);
          const all = enc.getRowObjects().map((o) => String(o.encodings)).join(' ');
          if (kind === 'scalars') assert.match(all, /DELTA_BINARY_PACKED/);
        }
        if (label.includes('small row groups')) {
          const g = await con.runAndReadAll(`SELECT count(DISTINCT row_group_id) AS n FROM parquet_metadata('${sqlPath(f)}')`);
          assert.ok(Number(g.getRowObjects()[0].n) > 1);
        }
      });
    }
  }

  test('an empty file and all-null columns', async () => {
    await roundTrip('scalars', SCALARS(0), 'empty', 'COMPRESSION zstd');
    await roundTrip('nulls', 'SELECT NULL::VARCHAR a, NULL::INTEGER[] b, NULL::STRUCT(x INT) c FROM range(50)', 'nulls', 'COMPRESSION snappy');
  });
});

describe('ingot writer files', () => {
  test('read back by ingot and by DuckDB, equal', async () => {
    const f = path.join(dir, 'ingot-writer.parquet');
    const w = spawnSync(readerBin, [], {
      env: { ...process.env, PQ_WRITE_SAMPLE: f, PQ_SAMPLE_ROWS: '3000', PQ_SAMPLE_RG_BYTES: '65536' },
      encoding: 'utf8',
    });
    assert.equal(w.status, 0, w.stderr);
    const ours = ingotRows(f);
    assert.equal(ours.status, 0, ours.stderr);
    assert.equal(ours.lines.length, 3000);
    const g = await con.runAndReadAll(`SELECT count(DISTINCT row_group_id) AS n FROM parquet_metadata('${sqlPath(f)}')`);
    assert.ok(Number(g.getRowObjects()[0].n) > 1);
    assertSame(ours.lines, await duckRows(`SELECT * FROM '${sqlPath(f)}'`), 'ingot writer');
  });
});

describe('Luma files converted to Parquet by DuckDB', () => {
  for (const name of ['luma-crm', 'luma-loyalty', 'luma-offline-purchases']) {
    test(`${name}: the Parquet rows equal the JSON records`, async (t) => {
      if (!lumaDir) { t.skip('Luma reference data not found'); return; }
      const src = sqlPath(path.join(lumaDir, `${name}.json`));
      const f = path.join(dir, `${name}.parquet`);
      await con.run(`COPY (SELECT * FROM read_json('${src}')) TO '${sqlPath(f)}' (FORMAT parquet, COMPRESSION snappy)`);
      const ours = ingotRows(f);
      assert.equal(ours.status, 0, ours.stderr);
      const json = await duckRows(`SELECT * FROM read_json('${src}')`);
      assert.ok(json.length > 100);
      assertSame(ours.lines, json, name);
    });
  }
});
