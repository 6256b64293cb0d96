// report.mjs - the benchmark's table from bench/run's results (one JSON object per line):
// records/s, MB/s, speed relative to DuckDB on the same file, peak RSS, and whether the output
// holds the same rows as DuckDB's. Also prints the gap to the targets of shared/product.md.
import fs from 'node:fs';

const rows = fs.readFileSync(process.argv[2], 'utf8').split('\n').filter(Boolean).map((l) => JSON.parse(l));
const TARGET_RATIO = 4;     // at least 4x DuckDB
const TARGET_GBPS = 1;      // 1 GB/s on two cores
const TARGET_RSS_MIB = 256; // whatever the file size
const HTTP_SHARE = 0.7;     // end to end within 70% of the engine's rate

const pad = (s, n, right = false) => (right ? String(s).padEnd(n) : String(s).padStart(n));
const header = ['records', 'run', 'seconds', 'records/s', 'MB/s', 'x DuckDB', 'CPU s', 'peak RSS MiB', 'same rows'];
const widths = [10, 15, 8, 11, 8, 9, 7, 13, 10];
console.log(header.map((h, i) => pad(h, widths[i], i === 1)).join('  '));
const order = ['engine', 'engine-8col', 'http', 'duckdb', 'engine-parquet', 'duckdb-parquet'];
const scales = [...new Set(rows.map((r) => r.scale))];
const notes = [];
for (const scale of scales) {
  const at = rows.filter((r) => r.scale === scale);
  const duck = at.find((r) => r.name === 'duckdb');
  const duckPq = at.find((r) => r.name === 'duckdb-parquet');
  const engine = at.find((r) => r.name === 'engine');
  for (const name of order) {
    const r = at.find((x) => x.name === name);
    if (!r) continue;
    // Parquet-input runs compare with DuckDB on the same Parquet file.
    const peer = name.endsWith('parquet') ? duckPq : duck;
    const ratio = peer ? peer.seconds / r.seconds : NaN;
    const mbps = r.bytes / 1e6 / r.seconds;
    const cells = [scale, name, r.seconds.toFixed(2), Math.round(r.records / r.seconds).toLocaleString('en-US'),
      mbps.toFixed(0), ratio.toFixed(2), r.cpu_s.toFixed(2), (r.rss_kib / 1024).toFixed(0), name.startsWith('duckdb') ? '-' : (r.same ? 'yes' : 'NO')];
    console.log(cells.map((c, i) => pad(c, widths[i], i === 1)).join('  '));
  }
  if (engine && duck) {
    const ratio = duck.seconds / engine.seconds;
    const gbps = engine.bytes / 1e9 / engine.seconds;
    notes.push(`${scale} records: engine ${ratio.toFixed(2)}x DuckDB (target ${TARGET_RATIO}x), ` +
      `${gbps.toFixed(2)} GB/s (target ${TARGET_GBPS}), peak ${(engine.rss_kib / 1024).toFixed(0)} MiB ` +
      `(target < ${TARGET_RSS_MIB})`);
    const http = at.find((r) => r.name === 'http');
    const pq = at.find((r) => r.name === 'engine-parquet');
    if (pq && duckPq)
      notes.push(`${scale} records: Parquet input ${(duckPq.seconds / pq.seconds).toFixed(2)}x DuckDB reading the ` +
        `same file (target >= 1x, issue 7)`);
    if (http)
      notes.push(`${scale} records: HTTP end to end at ${(100 * engine.seconds / http.seconds).toFixed(0)}% of the ` +
        `engine's rate (target ${HTTP_SHARE * 100}%)`);
  }
}
console.log('\nGap to the targets (shared/product.md):');
for (const n of notes) console.log(`  ${n}`);
if (rows.some((r) => !r.name.startsWith('duckdb') && !r.same)) {
  console.log('\nOUTPUT MISMATCH: some run does not hold the same rows as DuckDB');
  process.exitCode = 1;
}
