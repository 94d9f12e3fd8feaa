// The SDK against a real blindsight-server (SQLite): record → score → results, envelopes an
// app uploads itself, aggregates, the event loop while proofs run, and what is refused: a bad
// session (the field named), a wrong pin, a wrong token, a wrong passphrase, and a recorder
// that cannot decrypt.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { PASSPHRASE, cssrs, exampleSession, sdk, session, setUp } from './support.mjs';

const TIERS = ['none', 'low', 'moderate', 'high'];

// crisis v1 (docs/MODELS.md) for sessions without a transcript: 2·PHQ-9 total + GAD-7 total
// + 4·item 9 + C-SSRS weights; tier = thresholds reached (10, 25, 45), raised by the rules.
function crisis(s) {
  const phq9 = s.phq9.reduce((a, b) => a + b, 0);
  const gad7 = s.gad7.reduce((a, b) => a + b, 0);
  const c = s.cssrs;
  const score =
    2 * phq9 +
    gad7 +
    4 * s.phq9[8] +
    3 * c.wish_dead +
    5 * c.thoughts +
    8 * c.method +
    10 * (c.intent + c.plan + c.behavior);
  let tier = [10, 25, 45].filter((t) => score >= t).length;
  if (s.phq9[8] > 0 || c.intent || c.plan || c.behavior) tier = Math.max(tier, 3);
  else if (c.method) tier = Math.max(tier, 2);
  else if (c.wish_dead || c.thoughts) tier = Math.max(tier, 1);
  return { score, tier: TIERS[tier] };
}

/** Envelope parts ("u16 count, then per part u64 length and bytes"), docs/FORMATS.md. */
function envelope(bytes) {
  let at = 0;
  const take = (n) => {
    assert.ok(at + n <= bytes.length, 'truncated envelope');
    const out = bytes.subarray(at, at + n);
    at += n;
    return out;
  };
  assert.equal(take(4).toString('latin1'), 'BLSE');
  assert.equal(take(2).readUInt16BE(0), 1);
  const kind = take(1)[0];
  take(take(1)[0]); // parameter set
  const keyId = take(take(1)[0]).toString('utf8');
  take(take(4).readUInt32BE(0)); // metadata
  const payload = take(Number(take(8).readBigUInt64BE(0)));
  assert.equal(at, bytes.length, 'nothing follows the payload');
  return { kind, keyId, payload };
}

function parts(payload) {
  const count = payload.readUInt16BE(0);
  const out = [];
  let at = 2;
  for (let i = 0; i < count; i++) {
    const len = Number(payload.readBigUInt64BE(at));
    at += 8;
    out.push(payload.subarray(at, at + len));
    at += len;
  }
  assert.equal(at, payload.length);
  return out;
}

describe('against a real blindsight-server', () => {
  let env;
  let recorder;

  before(async () => {
    env = await setUp('node-sdk');
    recorder = await sdk.Recorder.connect(
      env.url,
      env.tokens.ingest,
      env.tenant,
      env.keys.key_id,
      env.keys.fingerprint,
    );
  });

  after(async () => {
    if (env) await env.tearDown();
  });

  test('record three sessions → score → decrypt the results', async () => {
    assert.equal(recorder.keyId, env.keys.key_id);
    assert.equal(recorder.fingerprint, env.keys.fingerprint);
    const sessions = [
      session('node-s1'),
      session('node-s2', { phq9: [2, 2, 1, 1, 1, 1, 1, 1, 0], gad7: [1, 1, 1, 1, 1, 0, 0] }),
      session('node-s3', {
        phq9: [1, 1, 1, 1, 1, 1, 1, 1, 1],
        gad7: [0, 0, 0, 0, 0, 0, 0],
        cssrs: cssrs({ plan: true }),
      }),
    ];
    const stored = [];
    for (const s of sessions) stored.push(await recorder.record(s));
    for (const [i, s] of stored.entries()) {
      assert.equal(s.record_id, sessions[i].record_id);
      assert.equal(s.created, true);
      assert.equal(typeof s.seq, 'number');
      assert.match(s.proven_list_digest, /^[0-9a-f]{64}$/);
    }
    // A retried upload of the same record is recognised, never stored twice... but a new
    // proof is new bytes: the same record id with other content is refused.
    await assert.rejects(recorder.record(sessions[0]), (e) => {
      assert.ok(e instanceof sdk.ApiError, e.stack);
      assert.equal(e.status, 409);
      assert.equal(e.problemType, 'record-exists');
      assert.equal(e.sameContent, false);
      return true;
    });

    const ids = sessions.map((s) => s.record_id);
    const job = await env.keyholder.score({ select: { record_ids: ids } });
    assert.equal(job.records, 3);
    const seen = [];
    const done = await env.keyholder.wait(job.job_id, {
      timeoutMs: 300_000,
      pollMs: 200,
      onProgress: (j) => seen.push(j.status),
    });
    assert.equal(done.status, 'succeeded', done.error);
    assert.ok(seen.length >= 1 && seen.at(-1) === 'succeeded', seen.join(','));

    const rows = await env.keyholder.results(job.job_id);
    assert.ok(Array.isArray(rows));
    assert.deepEqual(
      rows.map((r) => r.record_id),
      ids,
    );
    for (const [i, row] of rows.entries()) {
      assert.deepEqual(row, { record_id: ids[i], ...crisis(sessions[i]) }, ids[i]);
    }
    assert.equal(rows[2].tier, 'high');

    const whole = await env.keyholder.jobResults(job.job_id);
    assert.equal(whole.job_id, job.job_id);
    assert.equal(whole.key_id, env.keys.key_id);
    assert.equal(whole.function, 'risk_score/crisis-v1');
    assert.equal(whole.records, 3);
    assert.deepEqual(whole.rows, rows);
  });

  test('the transcript is sealed on the device and opened by the key holder', async () => {
    const s = exampleSession();
    s.record_id = 'node-example';
    const stored = await recorder.record(s);
    assert.equal(stored.created, true);
    assert.equal(await env.keyholder.openTranscript('node-example'), s.transcript);
  });

  test('an aggregate over the cohort', async () => {
    const job = await env.keyholder.aggregate(
      { aggregates: [{ op: 'count' }, { op: 'mean', field: 'mood_change' }] },
      { select: { cohort: 'node-pilot' } },
    );
    await env.keyholder.wait(job.job_id, { timeoutMs: 300_000, pollMs: 200 });
    const rows = await env.keyholder.results(job.job_id);
    assert.equal(rows.length, 2);
    assert.equal(rows[0].op, 'count');
    assert.equal(rows[0].count, job.records);
    assert.equal(rows[1].op, 'mean');
    assert.equal(rows[1].field, 'mood_change');
    // Every session of the cohort went from mood 4 to 6.
    assert.equal(rows[1].mean, 2);
  });

  test('the event loop keeps ticking while a session is proven', async () => {
    let ticks = 0;
    let last = performance.now();
    let maxGap = 0;
    const timer = setInterval(() => {
      const now = performance.now();
      maxGap = Math.max(maxGap, now - last);
      last = now;
      ticks++;
    }, 5);
    const start = performance.now();
    const bytes = await recorder.buildEnvelope(session('node-loop'));
    const elapsed = performance.now() - start;
    clearInterval(timer);
    assert.ok(Buffer.isBuffer(bytes) && bytes.length > 1000);
    assert.ok(elapsed > 200, `proving took only ${elapsed.toFixed(0)} ms`);
    assert.ok(ticks >= 10, `${ticks} ticks in ${elapsed.toFixed(0)} ms`);
    assert.ok(
      maxGap < Math.max(250, elapsed / 4),
      `the event loop stalled for ${maxGap.toFixed(0)} ms while proving took ${elapsed.toFixed(0)} ms`,
    );
  });

  test('buildEnvelope gives the bytes an app uploads with its own HTTP stack', async () => {
    const bytes = await recorder.buildEnvelope(session('node-own-http'));
    const { kind, keyId } = envelope(bytes);
    assert.equal(kind, 8, 'a record envelope');
    assert.equal(keyId, env.keys.key_id);
    const res = await fetch(`${env.url}/v1/records`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${env.tokens.ingest}`,
        'content-type': 'application/octet-stream',
      },
      body: bytes,
    });
    const reply = await res.text();
    assert.equal(res.status, 201, reply);
    const body = JSON.parse(reply);
    assert.equal(body.record_id, 'node-own-http');
  });

  test('a bad session is refused with the field named, before anything is sent', async () => {
    const cases = [
      [{ phq9: [1, 1, 1, 1, 1, 1, 1, 1] }, 'phq9'],
      [{ gad7: [1, 1, 4, 1, 1, 1, 1] }, 'gad7_3'],
      [{ mood_before: 11 }, 'mood_before'],
      [{ mood_after: -1 }, 'mood_after'],
      [{ cssrs: { ...cssrs(), plan: 'yes' } }, 'cssrs.plan'],
      [{ diagnosis: 'x' }, 'diagnosis'],
      [{ cssrs: { ...cssrs(), sometimes: true } }, 'cssrs.sometimes'],
    ];
    for (const [overrides, field] of cases) {
      await assert.rejects(recorder.record(session('node-bad', overrides)), (e) => {
        assert.ok(e instanceof sdk.InvalidSessionError, `${field}: ${e.stack}`);
        assert.ok(e instanceof Error);
        assert.equal(e.field, field);
        assert.deepEqual(
          e.fields.map((f) => f.field),
          [field],
        );
        assert.match(e.message, new RegExp(field.replace('.', '\\.')));
        assert.equal(e.status, null);
        assert.equal(e.problemType, null);
        return true;
      });
    }
    const missing = session('node-bad');
    delete missing.mood_before;
    await assert.rejects(recorder.buildEnvelope(missing), (e) => {
      assert.ok(e instanceof sdk.InvalidSessionError, e.stack);
      assert.equal(e.field, 'mood_before');
      return true;
    });
    await assert.rejects(recorder.record('not json'), sdk.InvalidSessionError);
    await assert.rejects(recorder.record(42), sdk.InvalidSessionError);
    // Nothing was stored under the bad record's id.
    const res = await fetch(`${env.url}/v1/records?limit=1000`, {
      headers: { authorization: `Bearer ${env.tokens.keyholder}` },
    });
    const page = await res.json();
    assert.ok(!page.records.some((r) => r.record_id === 'node-bad'));
  });

  test('a wrong pin is refused', async () => {
    const wrong = '0'.repeat(64);
    await assert.rejects(
      sdk.Recorder.connect(env.url, env.tokens.ingest, env.tenant, env.keys.key_id, wrong),
      (e) => {
        assert.ok(e instanceof sdk.PinMismatchError, e.stack);
        assert.equal(e.expected, wrong);
        assert.equal(e.found, env.keys.fingerprint);
        assert.equal(e.status, null);
        return true;
      },
    );
    // The same for a bundle the app holds.
    await assert.rejects(
      sdk.Recorder.fromAppBundle(env.keys.app, { tenant: env.tenant, pin: wrong }),
      sdk.PinMismatchError,
    );
  });

  test('the server refuses a wrong token and a role that may not', async () => {
    await assert.rejects(
      sdk.Recorder.connect(env.url, 'bst_not-a-token', env.tenant, env.keys.key_id, env.keys.fingerprint),
      (e) => {
        assert.ok(e instanceof sdk.ApiError, e.stack);
        assert.equal(e.status, 401);
        assert.equal(e.problemType, 'unauthorized');
        return true;
      },
    );
    const asApp = sdk.KeyHolder.connect(env.url, env.tokens.ingest, env.tenant);
    await assert.rejects(asApp.score({ keyId: env.keys.key_id }), (e) => {
      assert.ok(e instanceof sdk.ApiError, e.stack);
      assert.equal(e.status, 403);
      assert.equal(e.problemType, 'forbidden');
      return true;
    });
    await assert.rejects(env.keyholder.results('job-does-not-exist'), (e) => {
      assert.ok(e instanceof sdk.ApiError, e.stack);
      assert.equal(e.status, 404);
      return true;
    });
  });

  test('a wrong passphrase is refused', async () => {
    await assert.rejects(
      sdk.KeyHolder.open(env.url, env.tokens.keyholder, env.tenant, env.keys.keystore, `${PASSPHRASE} (wrong)`),
      (e) => {
        assert.ok(e instanceof sdk.KeystoreError, e.stack);
        assert.match(e.message, /wrong passphrase/);
        assert.equal(e.path, env.keys.keystore);
        return true;
      },
    );
  });

  test('a recorder cannot decrypt: no such call, and its app bundle holds no secret', async () => {
    // No call that decrypts.
    const methods = Object.getOwnPropertyNames(sdk.Recorder.prototype).sort();
    assert.deepEqual(methods, [
      'appBundle',
      'buildEnvelope',
      'buildTrainingEnvelope',
      'constructor',
      'fingerprint',
      'keyId',
      'record',
      'recordTraining',
      'tenant',
      'toString',
    ]);
    for (const name of ['results', 'jobResults', 'openTranscript', 'decrypt', 'open']) {
      assert.equal(recorder[name], undefined, name);
    }
    assert.deepEqual(Object.keys(recorder), [], 'nothing enumerable on the object');

    // What it holds: the app bundle, as the server serves it and keygen wrote it.
    const bundle = await recorder.appBundle();
    assert.deepEqual(bundle, fs.readFileSync(env.keys.app));
    const outer = envelope(bundle);
    assert.equal(outer.kind, 7, 'an app bundle');
    const kinds = parts(outer.payload).map((p) => envelope(p).kind);
    // manifest, compact public key, CRS, transcript public key; no server key (2), no
    // keystore (11), nothing else.
    assert.deepEqual(kinds, [1, 3, 4, 5]);
    const manifest = JSON.parse(envelope(parts(outer.payload)[0]).payload.toString('utf8'));
    assert.deepEqual(Object.keys(manifest.fingerprints).sort(), [
      'compact_public_key',
      'crs',
      'server_key',
      'transcript_public_key',
    ]);
    // The transcript key is the 32-byte X25519 public key, not the secret.
    assert.equal(envelope(parts(outer.payload)[3]).payload.length, 32);

    // The app bundle is no keystore: nothing opens it.
    await assert.rejects(
      sdk.KeyHolder.open(env.url, env.tokens.keyholder, env.tenant, env.keys.app, PASSPHRASE),
      sdk.KeystoreError,
    );
    // A key holder without a keystore cannot decrypt either.
    const noKeys = sdk.KeyHolder.connect(env.url, env.tokens.keyholder, env.tenant);
    const jobs = await noKeys.jobs();
    assert.ok(jobs.length > 0);
    await assert.rejects(noKeys.results(jobs[0].job_id), /no keystore open/);
  });

  test('a recorder from an app bundle builds envelopes without a server', async () => {
    const offline = await sdk.Recorder.fromAppBundle(env.keys.app, {
      tenant: env.tenant,
      pin: env.keys.fingerprint,
    });
    assert.equal(offline.keyId, env.keys.key_id);
    const bytes = await offline.buildEnvelope(session('node-offline'));
    assert.equal(envelope(bytes).kind, 8);
  });
});
