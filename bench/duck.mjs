// duck.mjs - DuckDB's side of the benchmark, run as its own process so that /usr/bin/time -v
// measures DuckDB alone: read a loyalty-shaped JSON file with the columns and conversions ingot
// applies (loyaltyId as VARCHAR, points DOUBLE, joinDate TIMESTAMP, ...) and COPY it to Parquet.
//
//   node bench/duck.mjs convert FILE OUT.parquet [threads] [codec]   -> {"seconds":..,"rows":..}
//   node bench/duck.mjs check A.parquet B.parquet                    -> row count + key hash of each
// DuckDB comes from tests/node_modules (@duckdb/node-api), the copy the API tests use.
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
const require = createRequire(path.join(here, '../tests/package.json'));
const { DuckDBInstance } = require('@duckdb/node-api');

// The loyalty file's columns as ingot's tutorial schema types them (XDM string, number,
// date-time): the same conversions on both sides.
export const LOYALTY_COLUMNS = `{
  _techmarketingdemos: 'STRUCT(systemIdentifier STRUCT(loyaltyId VARCHAR, crmId VARCHAR))',
  loyalty: 'STRUCT(points DOUBLE, tier VARCHAR, joinDate TIMESTAMP)',
  person: 'STRUCT(name STRUCT(firstName VARCHAR, lastName VARCHAR))',
  homeAddress: 'STRUCT(city VARCHAR)'
}`;

function sqlString(s) {
  return `'${String(s).replaceAll("'", "''")}'`;
}

async function connect(threads) {
  const db = await DuckDBInstance.create(':memory:');
  const con = await db.connect();
  if (threads) await con.run(`SET threads=${Number(threads)}`);
  return con;
}

async function convert(file, out, threads = 2, codec = 'zstd') {
  const con = await connect(threads);
  const t0 = process.hrtime.bigint();
  await con.run(`COPY (SELECT _techmarketingdemos.systemIdentifier.loyaltyId AS loyaltyId,
      _techmarketingdemos.systemIdentifier.crmId AS crmId, loyalty.points AS points,
      loyalty.tier AS tier, loyalty.joinDate AS joinDate, person.name.firstName AS firstName,
      person.name.lastName AS lastName, homeAddress.city AS city
    FROM read_json(${sqlString(file)}, format='newline_delimited', columns=${LOYALTY_COLUMNS}))
    TO ${sqlString(out)} (FORMAT parquet, COMPRESSION ${codec})`);
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const r = await con.runAndReadAll(`SELECT count(*)::BIGINT AS n FROM read_parquet(${sqlString(out)})`);
  return { seconds, rows: Number(r.getRowObjects()[0].n) };
}

// Count and an order-independent hash over the key columns. `nested` says whether the file has
// ingot's nested layout (the lake) or DuckDB's flat one.
async function keyHash(file, nested) {
  const con = await connect(2);
  const cols = nested
    ? `_techmarketingdemos.systemIdentifier.loyaltyId, _techmarketingdemos.systemIdentifier.crmId,
       loyalty.tier, loyalty.points, loyalty.joinDate, person.name.firstName, person.name.lastName,
       homeAddress.city`
    : 'loyaltyId, crmId, tier, points, joinDate, firstName, lastName, city';
  const r = await con.runAndReadAll(`SELECT count(*)::BIGINT AS n,
      sum(hash(${cols}) % 1000000007)::BIGINT AS h FROM read_parquet(${sqlString(file)})`);
  const row = r.getRowObjects()[0];
  return { rows: Number(row.n), hash: String(row.h) };
}

const [cmd, ...args] = process.argv.slice(2);
if (cmd === 'convert') {
  console.log(JSON.stringify(await convert(args[0], args[1], args[2] || 2, args[3] || 'zstd')));
} else if (cmd === 'check') {
  // args: ingot parquet glob, duckdb parquet file
  const a = await keyHash(args[0], true);
  const b = await keyHash(args[1], false);
  console.log(JSON.stringify({ ingot: a, duckdb: b, same: a.rows === b.rows && a.hash === b.hash }));
} else {
  console.error('usage: duck.mjs convert FILE OUT [threads] [codec] | check INGOT.parquet DUCK.parquet');
  process.exit(2);
}
