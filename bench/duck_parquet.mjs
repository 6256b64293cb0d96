// duck_parquet.mjs - DuckDB side of the Parquet-input measurement in bench/README.md:
//   node bench/duck_parquet.mjs tojson IN.json OUT.parquet   (write the input with DuckDB)
//   node bench/duck_parquet.mjs pq IN.parquet OUT.parquet    (read_parquet -> zstd Parquet, timed)
// Run from the repository root; DuckDB comes from tests/node_modules.
import { createRequire } from 'node:module';
const require = createRequire(new URL('../tests/package.json', import.meta.url));
const { DuckDBInstance } = require('@duckdb/node-api');
const inst = await DuckDBInstance.create(':memory:');
const con = await inst.connect();
await con.run("SET threads=2");
const [,, mode, a, b] = process.argv;
const t0 = Date.now();
if (mode === 'tojson') await con.run(`COPY (SELECT * FROM read_json_auto('${a}')) TO '${b}' (FORMAT parquet, COMPRESSION zstd)`);
else await con.run(`COPY (SELECT * FROM read_parquet('${a}')) TO '${b}' (FORMAT parquet, COMPRESSION zstd)`);
console.log(JSON.stringify({mode, ms: Date.now()-t0}));
