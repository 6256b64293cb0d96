// notify.test.mjs - ingestion notifications end to end: webhook registrations verified with the
// challenge, the Luma loyalty batch's ing_load_success, ig_load_success and ps_load_success in
// pipeline order, ing_load_failure for a bad batch, signatures checked with node's crypto, the
// journal, and the fault cases: a receiver answering 500 three times, a receiver that is down and
// comes back, and kill -9 of ingot between a batch's success and the delivery of its event.
// Every receiver is a node http server on a loopback port started by the test.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import { setTimeout as sleep } from 'node:timers/promises';
import { useServer } from './lib/server.mjs';
import {
  clientFor, expectStatus, expectAepError, createNamespace, createIdentityDescriptor, createDataset,
  ingestFile, assertBatchSuccess, assertBatchFailed, getBatch,
} from './lib/aep.mjs';
import {
  lumaPath, createLumaIdentityFieldGroups, createLoyaltySchema, LOYALTY_ID_PATH, CRM_ID_PATH,
} from './lib/luma.mjs';

const REG = '/events/registrations';
const JOURNAL = '/events/journal';
const PROFILE_TAGS = { unifiedProfile: ['enabled:true'], unifiedIdentity: ['enabled:true'] };
const ALL_CODES = ['ing_load_success', 'ing_load_failure', 'ig_load_success', 'ig_load_failure',
  'ps_load_success', 'ps_load_failure'];
// Fast retries so the fault cases take seconds: 300 ms, 600 ms, then 1.2 s apart.
const SERVER_ARGS = ['--notify-retry-first-ms', '300', '--notify-retry-cap-ms', '1200',
  '--notify-timeout-ms', '3000', '--notify-poll-ms', '50'];

// A webhook receiver. `challenge`: how it answers the verification GET ('raw', 'json', 'wrong',
// '404' or 'hang'); `statuses`: the answers to the next POSTs (200 after the list runs out).
class Receiver {
  constructor({ challenge = 'raw', statuses = [] } = {}) {
    this.challenge = challenge;
    this.statuses = [...statuses];
    this.posts = [];
    this.challenges = [];
    this.sockets = new Set();
    this.server = null;
    this.port = 0;
  }

  get url() {
    return `http://127.0.0.1:${this.port}/hook`;
  }

  async start(port = this.port) {
    this.server = http.createServer((req, res) => this.handle(req, res));
    this.server.on('connection', (s) => {
      this.sockets.add(s);
      s.on('close', () => this.sockets.delete(s));
    });
    await new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, '127.0.0.1', resolve);
    });
    this.port = this.server.address().port;
    return this;
  }

  // Close the port at once (open connections too), as a receiver that died would.
  async stop() {
    if (!this.server) return;
    const srv = this.server;
    this.server = null;
    for (const s of this.sockets) s.destroy();
    await new Promise((resolve) => srv.close(resolve));
  }

  handle(req, res) {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const u = new URL(req.url, 'http://x');
      if (req.method === 'GET' && u.searchParams.has('challenge')) {
        const value = u.searchParams.get('challenge');
        this.challenges.push(value);
        if (this.challenge === 'hang') return; // never answers
        if (this.challenge === '404') { res.writeHead(404).end('no'); return; }
        if (this.challenge === 'wrong') { res.writeHead(200, { 'Content-Type': 'text/plain' }).end('ok'); return; }
        if (this.challenge === 'json') {
          res.writeHead(200, { 'Content-Type': 'application/json' }).end(JSON.stringify({ challenge: value }));
          return;
        }
        res.writeHead(200, { 'Content-Type': 'text/plain' }).end(value);
        return;
      }
      let json;
      try { json = JSON.parse(raw.toString('utf8')); } catch { json = undefined; }
      const status = this.statuses.length ? this.statuses.shift() : 200;
      this.posts.push({ method: req.method, headers: req.headers, raw, json, status, at: Date.now() });
      res.writeHead(status).end();
    });
  }

  // POSTs answered 2xx, by event_id, in arrival order.
  delivered() {
    return this.posts.filter((p) => p.status >= 200 && p.status < 300);
  }

  async waitFor(pred, what, timeoutMs = 60_000) {
    const t0 = Date.now();
    while (!pred(this)) {
      if (Date.now() - t0 > timeoutMs)
        assert.fail(`receiver: ${what} did not happen within ${timeoutMs} ms; got ${this.posts.length} POSTs: ${JSON.stringify(this.posts.map((p) => [p.json?.event?.['xdm:eventCode'], p.status, p.headers['x-adobe-retry-count']]))}`);
      await sleep(50);
    }
  }
}

function signatureOk(post, secret) {
  const want = crypto.createHmac('sha256', secret).update(post.raw).digest('base64');
  return post.headers['x-adobe-signature'] === want;
}

async function register(c, rx, { codes, secret, name = 'test hook' } = {}) {
  const body = { name, webhook_url: rx.url };
  if (codes) body.eventCodes = codes;
  if (secret) body.secret = secret;
  const res = expectStatus(await c.post(REG, body), 201, 'create registration');
  return res.json;
}

async function unregister(c, reg) {
  expectStatus(await c.del(`${REG}/${reg.id}`), 204, `delete registration ${reg.id}`);
}

// The first `n` Luma loyalty records as JSON Lines (a small, fast batch).
function loyaltyLines(n, from = 0) {
  const all = JSON.parse(fs.readFileSync(lumaPath('luma-loyalty.json'), 'utf8'));
  return all.slice(from, from + n).map((r) => JSON.stringify(r)).join('\n') + '\n';
}

async function journal(c, query = {}) {
  const qs = new URLSearchParams(query).toString();
  return expectStatus(await c.get(`${JOURNAL}${qs ? `?${qs}` : ''}`), 200, 'journal').json;
}

async function journalEvent(c, batchId, code) {
  const j = await journal(c, { batchId, eventCode: code });
  assert.equal(j.events.length, 1, `one ${code} for ${batchId} in the journal: ${JSON.stringify(j)}`);
  return j.events[0];
}

// A receiver holds a POST before ingot has read the answer and recorded the delivery, so a check
// of the journal right after a delivery waits for the record (at most 30 s).
async function deliveredEvent(c, batchId, code, regId) {
  let e;
  for (const t0 = Date.now(); Date.now() - t0 < 30_000; await sleep(50)) {
    e = await journalEvent(c, batchId, code);
    if (e?.deliveries?.[regId]?.status === 'delivered') return e;
  }
  assert.fail(`${code} of ${batchId} not recorded as delivered: ${JSON.stringify(e?.deliveries)}`);
}

describe('ingestion notifications (webhooks, journal, faults)', () => {
  const fx = useServer({ extraArgs: SERVER_ARGS });
  const c = clientFor(fx);
  const ids = {};

  it('setup: Luma namespaces, loyalty schema with identities, a Profile-enabled and a plain dataset', async () => {
    await createNamespace(c, { name: 'Luma Loyalty Id', code: 'lumaLoyaltyId', idType: 'Cross_device' });
    await createNamespace(c, { name: 'Luma CRM Id', code: 'lumaCrmId', idType: 'Cross_device' });
    const { profileFg } = await createLumaIdentityFieldGroups(c);
    const loyalty = await createLoyaltySchema(c, profileFg['$id']);
    await createIdentityDescriptor(c, { schemaId: loyalty['$id'], sourceProperty: LOYALTY_ID_PATH,
      namespace: 'lumaLoyaltyId', primary: true });
    await createIdentityDescriptor(c, { schemaId: loyalty['$id'], sourceProperty: CRM_ID_PATH,
      namespace: 'lumaCrmId', primary: false });
    ids.profileDs = await createDataset(c, { name: 'Luma Loyalty Dataset', schemaId: loyalty['$id'], tags: PROFILE_TAGS });
    ids.plainDs = await createDataset(c, { name: 'Loyalty, lake only', schemaId: loyalty['$id'] });
  });

  it('registration: the challenge is answered (raw or JSON) -> active; the secret is shown once', async () => {
    const rx = await new Receiver({ challenge: 'json' }).start();
    try {
      const reg = await register(c, rx, { secret: 'my-webhook-secret-1' });
      assert.equal(reg.status, 'active', JSON.stringify(reg));
      assert.equal(reg.enabled, true);
      assert.equal(reg.secret, 'my-webhook-secret-1', 'the create answer shows the secret');
      assert.deepEqual(reg.eventCodes, ALL_CODES, 'default: all six data ingestion codes');
      assert.equal(rx.challenges.length, 1, 'one challenge GET');
      const got = expectStatus(await c.get(`${REG}/${reg.id}`), 200, 'get registration').json;
      assert.equal(got.secret, undefined, 'the secret is never shown again');
      assert.equal(got.webhook_url, rx.url);
      const list = expectStatus(await c.get(REG), 200, 'list').json;
      assert.ok(list._embedded.registrations.some((r) => r.id === reg.id && r.secret === undefined), JSON.stringify(list));

      // A generated secret when none is given.
      const rx2 = await new Receiver({ challenge: 'raw' }).start();
      const reg2 = await register(c, rx2, { codes: ['ing_load_success'] });
      assert.equal(reg2.status, 'active');
      assert.ok(typeof reg2.secret === 'string' && reg2.secret.length >= 32, JSON.stringify(reg2));
      assert.deepEqual(reg2.eventCodes, ['ing_load_success']);

      // Disable, enable (verified again), delete.
      const off = expectStatus(await c.patch(`${REG}/${reg2.id}`, { enabled: false }), 200, 'disable').json;
      assert.equal(off.status, 'disabled');
      assert.equal(off.enabled, false);
      const on = expectStatus(await c.patch(`${REG}/${reg2.id}`, { enabled: true }), 200, 'enable').json;
      assert.equal(on.status, 'active');
      assert.equal(rx2.challenges.length, 2, 'enabling verifies the endpoint again');
      await unregister(c, reg2);
      expectAepError(await c.get(`${REG}/${reg2.id}`), 404, 'deleted registration');
      await rx2.stop();
      await unregister(c, reg);
    } finally {
      await rx.stop();
    }
  });

  it('registration refuses non-http(s) targets and unknown event codes', async () => {
    expectAepError(await c.post(REG, { name: 'x', webhook_url: 'ftp://127.0.0.1/x' }), 400, 'ftp target');
    expectAepError(await c.post(REG, { name: 'x', webhook_url: 'file:///etc/passwd' }), 400, 'file target');
    expectAepError(await c.post(REG, { name: 'x' }), 400, 'no target');
    expectAepError(await c.post(REG, { name: 'x', webhook_url: 'http://127.0.0.1:9/', eventCodes: ['nope'] }), 400,
      'unknown code');
    expectAepError(await c.post(REG, { name: 'x', webhook_url: 'http://127.0.0.1:9/', secret: 'short' }), 400,
      'too short a secret');
  });

  it('a challenge that is not answered leaves the registration inactive, and it gets no events', async () => {
    const wrong = await new Receiver({ challenge: 'wrong' }).start();
    const notFound = await new Receiver({ challenge: '404' }).start();
    const hang = await new Receiver({ challenge: 'hang' }).start();
    try {
      const regs = [];
      for (const rx of [wrong, notFound, hang]) {
        const reg = await register(c, rx);
        assert.equal(reg.status, 'verification_failed', JSON.stringify(reg));
        assert.equal(reg.verification?.status, 'failed', JSON.stringify(reg));
        assert.ok(reg.verification.detail.length > 0);
        assert.equal(rx.challenges.length, 1);
        regs.push(reg);
      }
      const { batch } = await ingestFile(c, ids.plainDs, { fileName: 'few.json', data: loyaltyLines(3) });
      assertBatchSuccess(batch);
      await sleep(1000);
      for (const rx of [wrong, notFound, hang]) assert.equal(rx.posts.length, 0, 'no events to an unverified hook');
      for (const reg of regs) await unregister(c, reg);
    } finally {
      await Promise.all([wrong.stop(), notFound.stop(), hang.stop()]);
    }
  });

  it('the Luma loyalty batch sends ing_load_success, ig_load_success, ps_load_success in order, signed', async () => {
    const rx = await new Receiver().start();
    const secret = 'luma-secret-0123456789';
    const reg = await register(c, rx, { secret });
    try {
      const { batchId, batch } = await ingestFile(c, ids.profileDs, { fileName: 'luma-loyalty.json',
        data: { file: lumaPath('luma-loyalty.json') } });
      assertBatchSuccess(batch);
      const mine = () => rx.posts.filter((p) => p.json?.event?.['xdm:ingestionId'] === batchId);
      await rx.waitFor(() => mine().length >= 3, 'three events for the loyalty batch', 60_000);
      const posts = mine();
      assert.deepEqual(posts.map((p) => p.json.event['xdm:eventCode']),
        ['ing_load_success', 'ig_load_success', 'ps_load_success'], 'pipeline order');
      const final = await getBatch(c, batchId);
      const expected = [batch.metrics.outputRecordCount, final.downstream.identityGraph.recordCount,
        final.downstream.profile.recordCount];
      posts.forEach((p, i) => {
        const ev = p.json.event;
        assert.ok(signatureOk(p, secret), `x-adobe-signature verifies for ${ev['xdm:eventCode']}`);
        assert.equal(p.headers['content-type'], 'application/json');
        assert.equal(p.headers['x-adobe-event-id'], p.json.event_id);
        assert.equal(p.headers['x-adobe-event-code'], ev['xdm:eventCode']);
        assert.equal(p.headers['x-adobe-retry-count'], undefined, 'no retry header on a first attempt');
        assert.match(p.json.event_id, /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
        assert.equal(ev['xdm:ingestionId'], batchId);
        assert.equal(ev['xdm:customerIngestionId'], final.externalId || batchId);
        assert.equal(ev['xdm:datasetId'], ids.profileDs);
        assert.equal(ev['xdm:sandboxName'], 'prod');
        assert.equal(ev['xdm:imsOrg'], 'ingot-tests@AdobeOrg');
        assert.equal(ev['xdm:successfulRecords'], expected[i], `${ev['xdm:eventCode']} count`);
        assert.equal(ev['xdm:successfulRecords'], 1000);
        assert.equal(ev['xdm:failedRecords'], 0);
        assert.equal(typeof ev.sentTime, 'string');
        assert.equal(typeof ev['xdm:completed'], 'number');
        assert.equal(typeof ev.processStartTime, 'number');
        assert.equal(typeof ev.transformedTime, 'number');
        assert.deepEqual(ev.header._adobeio, { imsOrgId: 'ingot-tests@AdobeOrg',
          providerMetadata: 'aep_observability_catalog_events', eventCode: 'platform_event' });
      });
      assert.equal(posts[0].json.event['xdm:completed'], final.completed, 'ing completed = batch completed');
      // The same three in the journal, with their delivery state.
      for (const code of ['ing_load_success', 'ig_load_success', 'ps_load_success'])
        await deliveredEvent(c, batchId, code, reg.id);
      const j = await journal(c, { batchId });
      assert.deepEqual(j.events.map((e) => e.eventCode), ['ing_load_success', 'ig_load_success', 'ps_load_success']);
      for (const e of j.events) {
        assert.equal(e.deliveries[reg.id]?.status, 'delivered', JSON.stringify(e.deliveries));
        assert.deepEqual(e.event, posts.find((p) => p.json.event_id === e.event_id).json,
          'the journal holds the payload as delivered');
      }
    } finally {
      await unregister(c, reg);
      await rx.stop();
    }
  });

  it('a failing batch sends ing_load_failure with its errors', async () => {
    const rx = await new Receiver().start();
    const reg = await register(c, rx, { secret: 'failure-secret-42' });
    try {
      const { batchId, batch } = await ingestFile(c, ids.plainDs, { fileName: 'bad.json',
        data: '{"_techmarketingdemos": {"systemIdentifier": {"loyaltyId": 1}}, "loyalty": \n' });
      assertBatchFailed(batch);
      await rx.waitFor(() => rx.posts.some((p) => p.json?.event?.['xdm:ingestionId'] === batchId), 'failure event');
      const posts = rx.posts.filter((p) => p.json?.event?.['xdm:ingestionId'] === batchId);
      assert.equal(posts.length, 1, 'one event: a failed batch has no identity or profile stage');
      const ev = posts[0].json.event;
      assert.equal(ev['xdm:eventCode'], 'ing_load_failure');
      assert.equal(ev['xdm:status'], 'failure');
      assert.equal(ev['xdm:successfulRecords'], 0);
      assert.ok(Array.isArray(ev['xdm:errors']) && ev['xdm:errors'].length > 0, JSON.stringify(ev));
      assert.equal(ev['xdm:errors'][0]['xdm:code'], batch.errors[0].code);
      assert.ok(signatureOk(posts[0], 'failure-secret-42'));
    } finally {
      await unregister(c, reg);
      await rx.stop();
    }
  });

  it('fault: the receiver answers 500 three times, then 200; each retry carries a rising x-adobe-retry-count', async () => {
    const rx = await new Receiver({ statuses: [500, 500, 500] }).start();
    const reg = await register(c, rx, { codes: ['ing_load_success'], secret: 'retry-secret-777' });
    try {
      const { batchId, batch } = await ingestFile(c, ids.plainDs, { fileName: 'r.json', data: loyaltyLines(4, 10) });
      assertBatchSuccess(batch);
      await rx.waitFor((r) => r.delivered().length >= 1, 'delivery after three 500s');
      await sleep(800); // nothing more may follow a 2xx
      const posts = rx.posts;
      assert.deepEqual(posts.map((p) => p.status), [500, 500, 500, 200]);
      assert.deepEqual(posts.map((p) => p.headers['x-adobe-retry-count']), [undefined, '1', '2', '3']);
      const eventId = posts[0].json.event_id;
      for (const p of posts) {
        assert.equal(p.json.event_id, eventId, 'the same event each time');
        assert.equal(p.json.event['xdm:ingestionId'], batchId);
        assert.ok(signatureOk(p, 'retry-secret-777'));
      }
      // First retry after >= 300 ms, then doubling.
      assert.ok(posts[1].at - posts[0].at >= 250, `first wait ${posts[1].at - posts[0].at} ms`);
      assert.ok(posts[2].at - posts[1].at >= 550, `second wait ${posts[2].at - posts[1].at} ms`);
      const e = await deliveredEvent(c, batchId, 'ing_load_success', reg.id);
      assert.equal(e.deliveries[reg.id].attempts, 4);
    } finally {
      await unregister(c, reg);
      await rx.stop();
    }
  });

  it('fault: the receiver is down, then comes back: the event is delivered', async () => {
    const rx = await new Receiver().start();
    const reg = await register(c, rx, { codes: ['ing_load_success'] });
    const port = rx.port;
    await rx.stop();
    try {
      const { batchId, batch } = await ingestFile(c, ids.plainDs, { fileName: 'd.json', data: loyaltyLines(3, 20) });
      assertBatchSuccess(batch);
      // The journal shows it waiting for a retry.
      const t0 = Date.now();
      for (;;) {
        const e = await journalEvent(c, batchId, 'ing_load_success');
        if (e.deliveries[reg.id]?.status === 'retrying') break;
        assert.ok(Date.now() - t0 < 30_000, `no retry recorded: ${JSON.stringify(e.deliveries)}`);
        await sleep(100);
      }
      await rx.start(port);
      await rx.waitFor((r) => r.delivered().length >= 1, 'delivery after the receiver came back');
      const p = rx.delivered()[0];
      assert.equal(p.json.event['xdm:ingestionId'], batchId);
      assert.ok(Number(p.headers['x-adobe-retry-count']) >= 1, 'a retry');
      await deliveredEvent(c, batchId, 'ing_load_success', reg.id);
    } finally {
      await unregister(c, reg);
      await rx.stop();
    }
  });

  it('fault: kill -9 between the batches\' success and delivery; after the restart exactly those events arrive, once each', async () => {
    const rx = await new Receiver().start();
    const reg = await register(c, rx, { codes: ['ing_load_success', 'ing_load_failure'], secret: 'crash-secret-99' });
    const port = rx.port;
    await rx.stop(); // deliveries cannot happen before the crash
    const batches = [];
    for (let i = 0; i < 2; i++) {
      const { batchId, batch } = await ingestFile(c, ids.plainDs, { fileName: `k${i}.json`, data: loyaltyLines(2, 30 + 2 * i) });
      assertBatchSuccess(batch);
      batches.push(batchId);
    }
    const due = [];
    for (const b of batches) due.push((await journalEvent(c, b, 'ing_load_success')).event_id);

    await fx.server.kill9();
    await rx.start(port);
    await fx.server.restart();
    try {
      await rx.waitFor((r) => r.delivered().length >= 2, 'both events after the restart');
      await sleep(1500); // a duplicate would show up by now
      const got = rx.posts.map((p) => p.json.event_id);
      assert.deepEqual([...got].sort(), [...due].sort(), 'exactly the events that were due, each once');
      for (const p of rx.posts) {
        assert.ok(batches.includes(p.json.event['xdm:ingestionId']));
        assert.ok(signatureOk(p, 'crash-secret-99'));
      }
      // Pipeline order per batch holds; the journal agrees.
      for (const b of batches) {
        await deliveredEvent(c, b, 'ing_load_success', reg.id);
      }
    } finally {
      await unregister(c, reg);
      await rx.stop();
    }
  });

  it('journal: paged with limit and since, per sandbox', async () => {
    const all = await journal(c, { limit: 1000 });
    assert.ok(all.events.length >= 6, `events so far: ${all.events.length}`);
    const seen = [];
    let page = await journal(c, { limit: 2 });
    for (let guard = 0; guard < 100; guard++) {
      seen.push(...page.events.map((e) => e.event_id));
      assert.ok(page.events.length <= 2);
      if (!page._links.next) { assert.equal(page._page.next, null); break; }
      const href = page._links.next.href;
      assert.ok(href.startsWith(`${JOURNAL}?since=`), href);
      page = expectStatus(await c.get(href), 200, href).json;
    }
    assert.deepEqual(seen, all.events.map((e) => e.event_id), 'pages add up to the whole journal, in order');
    const created = all.events.map((e) => e.created);
    assert.deepEqual(created, [...created].sort((a, b) => a - b), 'oldest first');
    // since = a time
    const mid = all.events[Math.floor(all.events.length / 2)];
    const after = await journal(c, { since: String(mid.created), limit: 1000 });
    assert.ok(after.events.every((e) => e.created >= mid.created));
    // Another sandbox sees none of them.
    const dev = expectStatus(await c.inSandbox('dev').get(JOURNAL), 200, 'dev journal').json;
    assert.equal(dev.events.length, 0);
    expectAepError(await c.get(`${JOURNAL}?limit=0`), 400, 'limit 0');
    expectAepError(await c.get(`${JOURNAL}?eventCode=nope`), 400, 'unknown code');
  });
});
