// Quick start: against a local blindsight-server, create a tenant, generate and register a
// key set, record three sessions as an app back end would, score them on ciphertext and
// decrypt the results as the key holder.
//
//   BLINDSIGHT_ADMIN_TOKEN=$(openssl rand -hex 32) cargo run --release -p blindsight-server -- serve &
//   BLINDSIGHT_URL=http://127.0.0.1:8080 BLINDSIGHT_ADMIN_TOKEN=… BLINDSIGHT_PASSPHRASE='a long passphrase' \
//     node examples/quickstart.mjs
//
// In a real deployment the three roles are three places: the operator creates the tenant, the
// clinic (key holder) keeps the keystore, and the app back end holds only the ingest token and
// the pinned fingerprint.

import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';

const require = createRequire(import.meta.url);
const { Recorder, KeyHolder, keygen, createTenant, InvalidSessionError } = require('..');

const url = process.env.BLINDSIGHT_URL ?? 'http://127.0.0.1:8080';
const adminToken = process.env.BLINDSIGHT_ADMIN_TOKEN;
const passphrase = process.env.BLINDSIGHT_PASSPHRASE;
if (!adminToken || !passphrase) {
  console.error('set BLINDSIGHT_ADMIN_TOKEN (the server\'s) and BLINDSIGHT_PASSPHRASE (12+ characters)');
  process.exit(2);
}

// The operator: a tenant with its three tokens (shown only now).
const tenantId = `quickstart-${Date.now()}`;
const tenant = await createTenant(url, adminToken, { name: 'Quick start clinic', tenant_id: tenantId, min_cohort_size: 2 });

// The clinic: a key set (the keystore is written passphrase-encrypted; its secrets never reach
// JavaScript), registered with the server.
const keyDir = fs.mkdtempSync(path.join(os.tmpdir(), 'blindsight-keys-'));
const keys = await keygen(keyDir, passphrase);
const keyholder = await KeyHolder.open(url, tenant.tokens.keyholder, tenantId, keys.keystore, passphrase);
await keyholder.register(keys.public);
console.log(`key set ${keys.key_id}, fingerprint ${keys.fingerprint}`);

// The app back end: the ingest token and the pinned fingerprint. Each record is encrypted,
// proven and sealed on a worker thread; the event loop keeps serving meanwhile.
const recorder = await Recorder.connect(url, tenant.tokens.ingest, tenantId, keys.key_id, keys.fingerprint);
const base = JSON.parse(fs.readFileSync(new URL('../../../docs/session-example.json', import.meta.url), 'utf8'));
const sessions = [
  { ...base, record_id: 'qs-1' },
  { ...base, record_id: 'qs-2', phq9: [0, 1, 0, 0, 1, 0, 0, 0, 0], cssrs: { ...base.cssrs, wish_dead: false } },
  { ...base, record_id: 'qs-3', mood_after: 7, transcript: 'A calmer week; I saw friends twice.' },
];
for (const s of sessions) {
  const stored = await recorder.record(s);
  console.log(`recorded ${stored.record_id} (seq ${stored.seq})`);
}

// A bad session is refused before anything is encrypted, with the field named.
try {
  await recorder.record({ ...base, record_id: 'qs-bad', gad7: [1, 1, 4, 1, 1, 1, 1] });
} catch (e) {
  if (!(e instanceof InvalidSessionError)) throw e;
  console.log(`refused: ${e.fields.map((f) => `${f.field}: ${f.reason}`).join('; ')}`);
}

// The clinic: score on ciphertext, wait, decrypt.
const job = await keyholder.score({ select: { record_ids: sessions.map((s) => s.record_id) } });
await keyholder.wait(job.job_id, { onProgress: (j) => console.log(`job ${j.job_id}: ${j.status}`) });
console.table(await keyholder.results(job.job_id));
