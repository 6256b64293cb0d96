// crash.test.mjs - kill -9 and restart on the same data directory. A batch killed while
// "processing" must end all or nothing: success with every row readable and exactly one batch
// folder in the lake, or failed with no lake files. An upload accepted before a crash must
// survive it (COMPLETE after the restart succeeds), and so must a COMPLETEd batch.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { useServer } from './lib/server.mjs';
import {
  clientFor, createDataset, createBatch, uploadFile, completeBatch, waitBatch, getBatch, assertBatchSuccess,
  batchParquetFiles, lakeDatasetDir, listTree, queryBatch, stagingBatchDir,
} from './lib/aep.mjs';
import { TENANT_KEY, lumaPath, createLumaIdentityFieldGroups, createLoyaltySchema } from './lib/luma.mjs';

const FIRST = ['Daniel', 'Romy', 'Kara-lynn', 'Obie', 'Greer', 'Hermy', 'Rudie', 'Xylia', 'Morris', 'Henka'];
const LAST = ['Wright', 'Soppett', 'Domanski', 'Bryett', 'Carruthers', 'Devote', 'Gurrado', 'Posselt'];
const CITY = ['New York City', 'Portland', 'Tamanan', 'Labuhan', 'Carahue', null];
const TIERS = ['bronze', 'silver', 'gold', 'platinum'];

// Deterministic Luma-loyalty-shaped JSON Lines (mulberry32), with the totals to check against.
function writeLoyaltyFile(file, n, seed = 20240601) {
  let s = seed >>> 0;
  const rnd = () => {
    s = (s + 0x6D2B79F5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const pick = (a) => a[Math.floor(rnd() * a.length)];
  const hex = () => Array.from({ length: 4 }, () => Math.floor(rnd() * 0x100000000).toString(16).padStart(8, '0')).join('');
  const fd = fs.openSync(file, 'w');
  let pointsSum = 0;
  let gold = 0;
  let lines = [];
  for (let i = 0; i < n; i++) {
    const points = Math.floor(rnd() * 1_000_000);
    const tier = pick(TIERS);
    pointsSum += points;
    if (tier === 'gold') gold++;
    const y = 1970 + Math.floor(rnd() * 50);
    const m = 1 + Math.floor(rnd() * 12);
    const d = 1 + Math.floor(rnd() * 28);
    lines.push(JSON.stringify({
      [TENANT_KEY]: { systemIdentifier: { loyaltyId: 5_000_000 + i, crmId: rnd() < 0.2 ? null : hex() } },
      loyalty: { points, tier, joinDate: `${y}-${String(m).padStart(2, '0')}-${String(d).padStart(2, '0')}` },
      person: { name: { firstName: pick(FIRST), lastName: pick(LAST) } },
      homeAddress: { city: pick(CITY) },
    }));
    if (lines.length === 10_000) {
      fs.writeSync(fd, lines.join('\n') + '\n');
      lines = [];
    }
  }
  if (lines.length) fs.writeSync(fd, lines.join('\n') + '\n');
  fs.closeSync(fd);
  return { n, pointsSum, gold, bytes: fs.statSync(file).size };
}

describe('crash recovery: kill -9 and restart on the same data directory', () => {
  const fx = useServer();
  const c = clientFor(fx);
  let schemaId;

  it('setup: the Luma loyalty schema', async () => {
    const { profileFg } = await createLumaIdentityFieldGroups(c);
    schemaId = (await createLoyaltySchema(c, profileFg['$id']))['$id'];
  });

  // The dataset's lake folder holds exactly the batch folder (success) or nothing (failed).
  async function assertAllOrNothing(ds, batchId, batch, expect) {
    const lake = lakeDatasetDir(fx.server, 'prod', ds);
    const top = fs.existsSync(lake) ? fs.readdirSync(lake).sort() : [];
    if (batch.status === 'success') {
      assert.deepEqual(top, [batchId], `exactly one batch folder, no .tmp- leftovers: ${JSON.stringify(listTree(lake))}`);
      assert.equal(batch.metrics?.outputRecordCount, expect.n, JSON.stringify(batch));
      assert.equal(batch.metrics?.inputRecordCount, expect.n, JSON.stringify(batch));
      const [row] = await queryBatch(fx.server, 'prod', ds, batchId, `SELECT count(*) AS n,
          count(DISTINCT "${TENANT_KEY}".systemIdentifier.loyaltyId) AS ids, sum(loyalty.points) AS points,
          count(*) FILTER (WHERE loyalty.tier = 'gold') AS gold FROM {src}`);
      assert.deepEqual(row, { n: expect.n, ids: expect.n, points: expect.pointsSum, gold: expect.gold },
        'every row exactly once');
    } else {
      assert.equal(batch.status, 'failed', JSON.stringify(batch));
      assert.ok(Array.isArray(batch.errors) && batch.errors.length > 0, `a failed batch says why: ${JSON.stringify(batch)}`);
      assert.deepEqual(listTree(lake).filter((f) => !f.endsWith('/')), [], 'no lake files for a failed batch');
      assert.deepEqual(batchParquetFiles(fx.server, 'prod', ds, batchId), []);
    }
  }

  it('a batch killed while processing ends all or nothing after the restart', async (t) => {
    let n = 300_000;
    let killed = null;
    for (let attempt = 0; attempt < 2 && !killed; attempt++, n *= 3) {
      const file = path.join(fx.server.workDir, `loyalty-${n}.json`);
      const expect = writeLoyaltyFile(file, n);
      const ds = await createDataset(c, { name: `crash ${n}`, schemaId });
      const batchId = await createBatch(c, ds);
      await uploadFile(c, batchId, ds, 'big-loyalty.json', { file });
      await completeBatch(c, batchId);
      const b = await waitBatch(c, batchId, { until: ['processing', 'success', 'failed'], intervalMs: 5, timeoutMs: 120_000 });
      if (b.status !== 'processing') {
        t.diagnostic(`${n} records went to ${b.status} before the poll saw "processing"; retrying with more`);
        fs.rmSync(file);
        continue;
      }
      // Pull the plug once the worker has Parquet output half written (a part file in its .tmp-
      // folder), or after 2 s at most.
      const lake = lakeDatasetDir(fx.server, 'prod', ds);
      for (let waited = 0; waited < 2000; waited += 10) {
        if (listTree(lake).some((f) => f.startsWith(`.tmp-${batchId}/`) && f.endsWith('.parquet'))) break;
        await sleep(10);
      }
      const tmpBefore = listTree(lake);
      await fx.server.kill9();
      t.diagnostic(`killed with ${n} records; lake folder at kill time: ${JSON.stringify(tmpBefore).slice(0, 300)}`);
      fs.rmSync(file);
      killed = { ds, batchId, expect };
    }
    assert.ok(killed, 'the batch was never seen in "processing"; it finished too fast to crash it');

    await fx.server.restart();
    const b = await waitBatch(c, killed.batchId, { timeoutMs: 180_000 });
    t.diagnostic(`after the restart the batch is ${b.status}`);
    await assertAllOrNothing(killed.ds, killed.batchId, b, killed.expect);
  });

  it('an upload accepted before kill -9 survives: COMPLETE after the restart succeeds', async () => {
    const file = lumaPath('luma-loyalty.json');
    const ds = await createDataset(c, { name: 'crash after PUT', schemaId });
    const batchId = await createBatch(c, ds);
    await uploadFile(c, batchId, ds, 'luma-loyalty.json', { file });
    await fx.server.kill9();
    assert.ok(fs.existsSync(stagingBatchDir(fx.server, 'prod', batchId)), 'the staged upload is on disk');
    await fx.server.restart();
    assert.equal((await getBatch(c, batchId)).status, 'loading', 'still loading after the restart');
    await completeBatch(c, batchId);
    const b = await waitBatch(c, batchId);
    assertBatchSuccess(b, 'COMPLETE after a crash');
    assert.equal(b.metrics?.inputByteSize, fs.statSync(file).size, JSON.stringify(b));
    assert.deepEqual(await queryBatch(fx.server, 'prod', ds, batchId, 'SELECT count(*) AS n FROM {src}'), [{ n: 1000 }]);
  });

  it('a batch COMPLETEd just before kill -9 is not lost', async (t) => {
    const file = path.join(fx.server.workDir, 'loyalty-small.json');
    const expect = writeLoyaltyFile(file, 20_000, 7);
    const ds = await createDataset(c, { name: 'crash after COMPLETE', schemaId });
    const batchId = await createBatch(c, ds);
    await uploadFile(c, batchId, ds, 'loyalty.json', { file });
    await completeBatch(c, batchId);
    await fx.server.kill9();
    await fx.server.restart();
    const b = await waitBatch(c, batchId, { timeoutMs: 120_000 });
    t.diagnostic(`after the restart the batch is ${b.status}`);
    await assertAllOrNothing(ds, batchId, b, expect);
    fs.rmSync(file);
  });
});
