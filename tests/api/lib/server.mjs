// server.mjs - runs a real `ingot serve` for the API tests: start on a fresh temporary data
// directory (port 0, the real port read from stdout), stop with SIGTERM (exit code must be 0),
// kill -9, restart on the same data directory, and clean everything up after the suite.
//
// The server's stderr goes to a file inside the test's temporary folder; its tail is attached to
// every error this module raises, so a failing test shows what the server said (ASan reports
// included).
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { before, after, afterEach } from 'node:test';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const INGOT_BIN = process.env.INGOT_BIN || path.join(REPO_ROOT, 'build/asan/ingot');
export const TENANT = 'techmarketingdemos';

// Under ASan the first start can be slow; a server that has not said where it listens by then is
// broken.
const START_TIMEOUT_MS = 60_000;
const STOP_TIMEOUT_MS = 60_000;

// Every process started in this test process, so that nothing outlives the runner even when a
// suite is cancelled before its `after` hook runs.
const live = new Set();
process.on('exit', () => {
  for (const child of live) {
    try { child.kill('SIGKILL'); } catch { /* already gone */ }
  }
});

function tail(file, bytes = 6000) {
  try {
    const buf = fs.readFileSync(file);
    const text = buf.subarray(Math.max(0, buf.length - bytes)).toString('utf8');
    return text.trim() ? text : '(empty)';
  } catch {
    return '(no stderr file)';
  }
}

function waitExit(child, timeoutMs) {
  if (child.exitCode !== null || child.signalCode !== null)
    return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve({ code: null, signal: null, timedOut: true }), timeoutMs);
    child.once('exit', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal });
    });
  });
}

export class IngotServer {
  // env: variables added to the server's environment (the test runner's own are passed on).
  constructor({ dataDir, tenant = TENANT, extraArgs = [], env = {} } = {}) {
    this.workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'ingot-api-'));
    this.dataDir = dataDir || path.join(this.workDir, 'data');
    this.tenant = tenant;
    this.extraArgs = extraArgs;
    this.env = env;
    this.child = null;
    this.port = 0;
    this.starts = 0;
    this.stderrPath = null;
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  get running() {
    return !!this.child && this.child.exitCode === null && this.child.signalCode === null;
  }

  // The last bytes the current (or last) process wrote to stderr.
  stderrTail(bytes) {
    return this.stderrPath ? tail(this.stderrPath, bytes) : '(not started)';
  }

  describe() {
    const state = this.child
      ? (this.running ? 'running' : `exited code=${this.child.exitCode} signal=${this.child.signalCode}`)
      : 'not started';
    return `ingot (${INGOT_BIN}) data=${this.dataDir} ${state}\n--- server stderr (${this.stderrPath}) ---\n${this.stderrTail()}`;
  }

  async start() {
    if (this.running) throw new Error('ingot is already running');
    if (!fs.existsSync(INGOT_BIN))
      throw new Error(`ingot binary not found at ${INGOT_BIN} (build it with make BUILD=asan, or set INGOT_BIN)`);
    this.starts += 1;
    this.stderrPath = path.join(this.workDir, `stderr-${this.starts}.log`);
    const errFd = fs.openSync(this.stderrPath, 'w');
    const args = ['serve', '--data', this.dataDir, '--listen', '127.0.0.1:0', '--tenant', this.tenant,
      ...this.extraArgs];
    const child = spawn(INGOT_BIN, args, { stdio: ['ignore', 'pipe', errFd],
      env: { ...process.env, ...this.env } });
    fs.closeSync(errFd);
    this.child = child;
    live.add(child);
    child.once('exit', () => live.delete(child));

    let stdout = '';
    const port = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => finish(new Error(`ingot did not report its port within ${START_TIMEOUT_MS} ms`)),
        START_TIMEOUT_MS);
      const onData = (chunk) => {
        stdout += chunk.toString('utf8');
        const m = /ingot listening on [^\s:]+:(\d+)/.exec(stdout);
        if (m) finish(null, Number(m[1]));
      };
      const onExit = (code, signal) => finish(new Error(`ingot exited before listening (code=${code} signal=${signal})`));
      const onError = (e) => finish(e);
      function finish(err, value) {
        clearTimeout(timer);
        child.stdout.off('data', onData);
        child.off('exit', onExit);
        child.off('error', onError);
        if (err) reject(err); else resolve(value);
      }
      child.stdout.on('data', onData);
      child.once('exit', onExit);
      child.once('error', onError);
    }).catch((e) => {
      try { child.kill('SIGKILL'); } catch { /* gone */ }
      e.message += `\nstdout: ${stdout}\n${this.describe()}`;
      throw e;
    });
    // Keep draining stdout so the server never blocks on a full pipe.
    child.stdout.resume();
    this.port = port;
    return this;
  }

  // Graceful stop: SIGTERM, then the process must exit on its own with status 0 (a sanitizer
  // report or a leak makes it non-zero).
  async stop() {
    if (!this.child) return;
    const child = this.child;
    if (this.running) child.kill('SIGTERM');
    const r = await waitExit(child, STOP_TIMEOUT_MS);
    if (r.timedOut) {
      child.kill('SIGKILL');
      await waitExit(child, 10_000);
      throw new Error(`ingot did not exit within ${STOP_TIMEOUT_MS} ms of SIGTERM\n${this.describe()}`);
    }
    if (r.code !== 0)
      throw new Error(`ingot exited with code=${r.code} signal=${r.signal} on SIGTERM (expected 0)\n${this.describe()}`);
  }

  // kill -9: the crash the recovery tests simulate.
  async kill9() {
    if (!this.child) return;
    const child = this.child;
    if (this.running) child.kill('SIGKILL');
    await waitExit(child, 10_000);
  }

  // A new process on the same data directory (the old one must be gone).
  async restart() {
    if (this.running) throw new Error('restart: ingot is still running; stop() or kill9() first');
    return this.start();
  }

  // Remove the temporary folder unless INGOT_KEEP_DATA is set (for debugging).
  cleanup() {
    if (this.running) {
      try { this.child.kill('SIGKILL'); } catch { /* gone */ }
    }
    if (!process.env.INGOT_KEEP_DATA) fs.rmSync(this.workDir, { recursive: true, force: true });
  }
}

export async function startServer(opts) {
  const srv = new IngotServer(opts);
  try {
    await srv.start();
  } catch (e) {
    srv.cleanup();
    throw e;
  }
  return srv;
}

// For use inside a `describe` body: starts a server before the suite's tests and, after them,
// checks that it is still alive (a crash mid-suite is a failure of its own), stops it gracefully
// (exit code 0) and removes its data.
//
// `fx.server` is the IngotServer. If it could not start, reading `fx.server` throws the start-up
// error, so every test of the suite fails with it (a failing `before` hook would only mark the
// tests "cancelled", which a TAP summary does not count as failures).
export function useServer(opts) {
  let srv = null;
  let startError = null;
  const fx = {
    get server() {
      if (startError) throw startError;
      if (!srv) throw new Error('the suite\'s ingot server has not been started');
      return srv;
    },
  };
  before(async () => {
    try {
      srv = await startServer(opts);
    } catch (e) {
      startError = e;
    }
  });
  // A failed test shows what the server wrote to stderr meanwhile.
  afterEach((t) => {
    if (!srv || t.passed !== false) return;
    t.diagnostic(`server stderr (${srv.stderrPath}), last lines:`);
    for (const line of srv.stderrTail(3000).split('\n').slice(-40)) t.diagnostic(`  ${line}`);
  });
  after(async () => {
    if (!srv) return;
    try {
      if (srv.child && !srv.running)
        throw new Error(`ingot died during the suite\n${srv.describe()}`);
      await srv.stop();
    } finally {
      srv.cleanup();
    }
  });
  return fx;
}
