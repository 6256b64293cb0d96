// process.test.mjs - how `ingot serve` sets up its own process: glibc's allocator tuned for batch
// work (util/mem.h, mem_tune_process). The server runs itself again with GLIBC_TUNABLES set, as
// the same pid, unless the user has chosen otherwise; either way it serves.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { startServer } from './lib/server.mjs';

// The environment the running server process was executed with, as /proc shows it. glibc parses
// GLIBC_TUNABLES in place at start-up and leaves only its first entry visible there, so the
// checks below look at that first entry and at INGOT_MALLOC_TUNED, which only the exec sets.
function environOf(pid) {
  const env = {};
  for (const entry of fs.readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0')) {
    const eq = entry.indexOf('=');
    if (eq > 0) env[entry.slice(0, eq)] = entry.slice(eq + 1);
  }
  return env;
}

// Start a server with `env` added (GLIBC_TUNABLES and INGOT_MALLOC_TUNED removed first unless
// given), check that it answers, and return its process environment.
async function serverEnviron(env) {
  const saved = { t: process.env.GLIBC_TUNABLES, m: process.env.INGOT_MALLOC_TUNED };
  delete process.env.GLIBC_TUNABLES;
  delete process.env.INGOT_MALLOC_TUNED;
  let srv;
  try {
    srv = await startServer({ env });
  } finally {
    if (saved.t !== undefined) process.env.GLIBC_TUNABLES = saved.t;
    if (saved.m !== undefined) process.env.INGOT_MALLOC_TUNED = saved.m;
  }
  try {
    const r = await fetch(`${srv.url}/data/foundation/catalog/dataSets`, {
      headers: { 'x-sandbox-name': 'prod' } });
    assert.ok(r.status < 500, `the server answers (status ${r.status})`);
    return environOf(srv.child.pid);
  } finally {
    await srv.stop();
    srv.cleanup();
  }
}

test('serve tunes the allocator by running itself again with GLIBC_TUNABLES', async () => {
  const env = await serverEnviron({});
  assert.equal(env.INGOT_MALLOC_TUNED, '1');
  assert.match(env.GLIBC_TUNABLES, /^glibc\.malloc\.hugetlb=1\b/);
});

test('a user\'s other tunables do not stop the tuning', async () => {
  const env = await serverEnviron({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' });
  assert.equal(env.INGOT_MALLOC_TUNED, '1');
  assert.match(env.GLIBC_TUNABLES, /^glibc\.malloc\.hugetlb=1\b/);
});

test('a user who chose glibc.malloc.hugetlb is left alone', async () => {
  const env = await serverEnviron({ GLIBC_TUNABLES: 'glibc.malloc.hugetlb=0' });
  assert.equal(env.INGOT_MALLOC_TUNED, undefined);
  assert.match(env.GLIBC_TUNABLES, /^glibc\.malloc\.hugetlb=0\b/);
});

test('INGOT_MALLOC_TUNED set turns the tuning off', async () => {
  const env = await serverEnviron({ INGOT_MALLOC_TUNED: '1' });
  assert.equal(env.GLIBC_TUNABLES, undefined);
});
