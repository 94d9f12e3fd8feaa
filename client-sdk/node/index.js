'use strict';
// @blindsight/sdk: the Blindsight client SDK for Node.js app back ends.
//
// The native addon (`blindsight.node`, built from this folder's Rust crate) does all the work
// on libuv's thread pool: encrypting, proving and sealing sessions, HTTP, key generation,
// decryption. This file gives it a JavaScript shape: promises, plain objects, and `Error`
// subclasses carrying `problemType`, `status` and `fields`.
//
// Secrets stay in Rust: a KeyHolder's keystore is opened inside the addon and no call returns
// key bytes. A Recorder holds public material only (the app bundle) and has no call that
// decrypts.

const fs = require('node:fs');
const path = require('node:path');

function loadNative() {
  // BLINDSIGHT_NODE_ADDON names the addon explicitly; else `blindsight.node` beside this file
  // (cargo's cdylib, renamed), else the one `@napi-rs/cli build --platform` wrote for this
  // platform (e.g. blindsight.linux-x64-gnu.node).
  const candidates = [];
  if (process.env.BLINDSIGHT_NODE_ADDON) candidates.push(process.env.BLINDSIGHT_NODE_ADDON);
  candidates.push(path.join(__dirname, 'blindsight.node'));
  const prefix = `blindsight.${process.platform}-${process.arch}`;
  try {
    for (const name of fs.readdirSync(__dirname).sort()) {
      if (name.startsWith(prefix) && name.endsWith('.node')) candidates.push(path.join(__dirname, name));
    }
  } catch {
    // An unreadable folder: only the explicit candidates.
  }
  for (const file of candidates) {
    if (fs.existsSync(file)) return require(file);
  }
  throw new Error(
    `the Blindsight native addon was not found (looked for ${candidates.join(', ')} and ` +
      `${prefix}*.node); build it with \`npx @napi-rs/cli build --release --platform\` in ` +
      'client-sdk/node, or `cargo build --release --workspace` and copy ' +
      'target/release/libblindsight_node.so (.dylib on macOS, blindsight_node.dll on Windows) ' +
      'to blindsight.node (README.md, "Building")',
  );
}

const native = loadNative();

// ---------------------------------------------------------------------------------------------
// Errors

/** Base class of every error the SDK raises. */
class BlindsightError extends Error {
  constructor(message, details = {}) {
    super(message);
    this.name = new.target.name;
    /** The server's problem type slug (`forbidden`, `proof-invalid`, …), or null. */
    this.problemType = null;
    /** The HTTP status, or null when the server did not refuse. */
    this.status = null;
    /** Field errors, `[{field, reason}]` (empty when no field is at fault). */
    this.fields = [];
    Object.assign(this, details);
  }
}

/** The server refused the request (`problemType`, `status`, `detail`), or its answer was not understood. */
class ApiError extends BlindsightError {}
/** The server could not be reached (`url`, `detail`). */
class UnreachableError extends ApiError {}
/** An argument that cannot be used (`field`, `reason`, `fields`). */
class InvalidInputError extends BlindsightError {}
/** A session that cannot be recorded; nothing was encrypted or sent. */
class InvalidSessionError extends InvalidInputError {}
/** The key set's manifest is not the pinned one (`component`, `expected`, `found`). */
class PinMismatchError extends BlindsightError {}
/** Wrong passphrase, not a keystore, an existing keystore, another key set's keystore (`path`). */
class KeystoreError extends BlindsightError {}
/** A job that is not finished, failed, or whose output is wrong (`jobId`, `jobStatus`, `reason`). */
class JobError extends BlindsightError {}
/** A job did not finish in time; it keeps running on the server (`jobId`, `jobStatus`, `done`, `total`). */
class WaitTimeoutError extends BlindsightError {}
/** Any other cryptographic failure. */
class CryptoError extends BlindsightError {}

const CLASSES = {
  BlindsightError,
  ApiError,
  UnreachableError,
  InvalidInputError,
  InvalidSessionError,
  PinMismatchError,
  KeystoreError,
  JobError,
  WaitTimeoutError,
  CryptoError,
};

const MARKER = 'BLINDSIGHT_ERROR ';

/** The SDK error a native error stands for (others are returned as they are). */
function convert(err) {
  const message = err && typeof err.message === 'string' ? err.message : '';
  const at = message.indexOf(MARKER);
  if (at < 0) return err;
  let doc;
  try {
    doc = JSON.parse(message.slice(at + MARKER.length));
  } catch {
    return err;
  }
  const { class: name, message: text, ...details } = doc;
  const Class = CLASSES[name] || BlindsightError;
  return new Class(text, details);
}

/** Awaits a native promise, converting its error. */
async function call(promise) {
  try {
    return await promise;
  } catch (err) {
    throw convert(err);
  }
}

/** Awaits a native promise of JSON text and parses it. */
async function json(promise) {
  return JSON.parse(await call(promise));
}

/** JSON text of a plain object (a JSON string is taken as it is). */
function text(value, what) {
  if (typeof value === 'string') return value;
  if (value === null || typeof value !== 'object') {
    throw new InvalidInputError(`${what} must be an object`, {
      reason: `${what} must be an object`,
    });
  }
  return JSON.stringify(value);
}

function sessionText(session) {
  if (session === null || typeof session !== 'object' || Array.isArray(session)) {
    if (typeof session === 'string') return session;
    throw new InvalidSessionError('a session must be an object', {
      field: null,
      reason: 'a session must be an object',
    });
  }
  return JSON.stringify(session);
}

async function bytesOf(bundle) {
  if (Buffer.isBuffer(bundle)) return bundle;
  if (bundle instanceof Uint8Array) return Buffer.from(bundle);
  if (typeof bundle === 'string') {
    try {
      return await fs.promises.readFile(bundle);
    } catch (e) {
      throw new BlindsightError(`couldn't read ${bundle}: ${e.message}`, { path: bundle });
    }
  }
  throw new InvalidInputError('expected a Buffer or the path of a file', {
    reason: 'expected a Buffer or the path of a file',
  });
}

// ---------------------------------------------------------------------------------------------
// Roles

/**
 * An app recording sessions for one tenant under one key set. Holds the ingest token and the
 * app bundle (public material only): it cannot decrypt anything, and has no call that would.
 */
class Recorder {
  #native;
  #keyId;
  #fingerprint;

  constructor(nativeRecorder, identity) {
    if (!(nativeRecorder instanceof native.NativeRecorder)) {
      throw new TypeError('use Recorder.connect() or Recorder.fromAppBundle()');
    }
    this.#native = nativeRecorder;
    this.#keyId = identity.key_id;
    this.#fingerprint = identity.fingerprint;
  }

  /**
   * Connects to the server at `url` with an ingest token and loads the app bundle of `keyId`,
   * refused (PinMismatchError) unless its manifest fingerprint is `pin`.
   */
  static async connect(url, ingestToken, tenant, keyId, pin) {
    const n = new native.NativeRecorder(String(url), String(ingestToken), String(tenant));
    const identity = await json(n.connect(String(keyId), String(pin)));
    return new Recorder(n, identity);
  }

  /**
   * A recorder over an app bundle the app already holds (a Buffer, or the path of a `.app`
   * file), refused unless its manifest fingerprint is `pin`. Without `url` and `ingestToken`
   * it only builds envelopes.
   */
  static async fromAppBundle(bundle, { tenant, pin, url = '', ingestToken = '' }) {
    const bytes = await bytesOf(bundle);
    const n = new native.NativeRecorder(String(url), String(ingestToken), String(tenant));
    const identity = await json(n.useAppBundle(bytes, String(pin)));
    return new Recorder(n, identity);
  }

  /** The key set records are encrypted under. */
  get keyId() {
    return this.#keyId;
  }

  /** The manifest fingerprint of that key set (the pin). */
  get fingerprint() {
    return this.#fingerprint;
  }

  /** The tenant. */
  get tenant() {
    return this.#native.tenant;
  }

  /**
   * Records a session (docs/session-example.json's format): validated, its lexicon features
   * extracted, encrypted, proven, its transcript sealed, and uploaded, on a worker thread.
   * Resolves to `{record_id, seq, proven_list_digest, created}`; `created` is false when an
   * earlier attempt already stored this exact record.
   */
  async record(session) {
    return json(this.#native.record(sessionText(session)));
  }

  /** Records a practice session under `training` v1 (docs/training-example.json's format). */
  async recordTraining(session) {
    return json(this.#native.recordTraining(sessionText(session)));
  }

  /**
   * The record envelope of a session (encrypted, proven, sealed) as a Buffer, without
   * uploading it: the body of `POST /v1/records` (application/octet-stream).
   */
  async buildEnvelope(session) {
    return call(this.#native.buildEnvelope(sessionText(session)));
  }

  /** `buildEnvelope` for a practice session under `training` v1. */
  async buildTrainingEnvelope(session) {
    return call(this.#native.buildTrainingEnvelope(sessionText(session)));
  }

  /** The encoded app bundle this recorder encrypts under (public material only). */
  async appBundle() {
    return call(this.#native.appBundle());
  }

  toString() {
    return `Recorder(tenant=${this.tenant}, keyId=${this.#keyId})`;
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The key holder of one tenant: registers keys, queues jobs, waits for them and decrypts
 * their results. The keystore is opened inside the addon; no call returns key bytes.
 */
class KeyHolder {
  #native;

  constructor(nativeKeyHolder) {
    if (!(nativeKeyHolder instanceof native.NativeKeyHolder)) {
      throw new TypeError('use KeyHolder.open() or KeyHolder.connect()');
    }
    this.#native = nativeKeyHolder;
  }

  /**
   * Opens the keystore at `keystorePath` with `passphrase` (KeystoreError when it is wrong)
   * for the server at `url`, with the tenant's keyholder token.
   */
  static async open(url, keyholderToken, tenant, keystorePath, passphrase) {
    const n = new native.NativeKeyHolder(String(url), String(keyholderToken), String(tenant));
    await json(n.open(String(keystorePath), String(passphrase)));
    return new KeyHolder(n);
  }

  /** A key holder without a keystore yet: it can register keys and queue jobs, not decrypt. */
  static connect(url, keyholderToken, tenant) {
    return new KeyHolder(
      new native.NativeKeyHolder(String(url), String(keyholderToken), String(tenant)),
    );
  }

  /** The key set of the opened keystore (null before one is opened). */
  get keyId() {
    return this.#native.keyId ?? null;
  }

  /**
   * Registers a key set's public bundle (a Buffer or the path of a `.public` file). Resolves
   * to `{key_id, manifest_fingerprint, parameter_set, created}`.
   */
  async register(publicBundle) {
    return json(this.#native.register(await bytesOf(publicBundle)));
  }

  /**
   * Queues a risk-score job: `{keyId, model: {id, version}, select}` (defaults: the
   * keystore's key set, `crisis` v1, every `session` v1 record). Resolves to
   * `{job_id, kind, records, status}`.
   */
  async score({ keyId, model, select } = {}) {
    return json(this.#native.score(JSON.stringify({ key_id: keyId, model, select })));
  }

  /**
   * Queues an aggregate job over a cohort: `query` as `{aggregates: [{op: 'count'}, …]}`
   * (docs/MODELS.md), `select` as for `score`. Resolves to `{job_id, kind, records, status}`.
   */
  async aggregate(query, { keyId, select } = {}) {
    return json(this.#native.aggregate(JSON.stringify({ key_id: keyId, query, select })));
  }

  /** One job's state and progress. */
  async job(jobId) {
    return json(this.#native.job(String(jobId)));
  }

  /** The tenant's jobs, newest first. */
  async jobs() {
    return (await json(this.#native.jobs())).map((job) => job);
  }

  /**
   * Waits until the job has succeeded or failed (WaitTimeoutError after `timeoutMs`; the job
   * keeps running), calling `onProgress(job)` when its state changes. Polls every `pollMs`
   * without holding a thread while it sleeps. Resolves to the job as it finished (a failed
   * job is returned; `results` then throws a JobError).
   */
  async wait(jobId, { timeoutMs = 600_000, pollMs = 500, onProgress } = {}) {
    const start = Date.now();
    let last = null;
    for (;;) {
      const job = await this.job(jobId);
      const seen = JSON.stringify([job.status, job.progress_done, job.progress_total, job.tasks]);
      if (seen !== last) {
        last = seen;
        if (onProgress) onProgress(job);
      }
      if (job.status === 'succeeded' || job.status === 'failed') return job;
      const waited = Date.now() - start;
      if (waited >= timeoutMs) {
        throw new WaitTimeoutError(
          `job ${job.job_id} did not finish within ${Math.round(waited / 1000)} s (it is ` +
            `${job.status}, ${job.progress_done} of ${job.progress_total} steps); it keeps running on the server`,
          {
            jobId: job.job_id,
            jobStatus: job.status,
            done: job.progress_done,
            total: job.progress_total,
          },
        );
      }
      await sleep(Math.min(pollMs, timeoutMs - waited));
    }
  }

  /**
   * Fetches a finished job's output and decrypts it, on a worker thread: an array of plain
   * objects, one per row (risk jobs: `record_id`, `score`, `tier`; aggregate jobs:
   * `aggregate` (its description), `op`, `field`, the value's fields such as `count`, `sum`,
   * `mean`, `buckets`, and `computed_by`). JobError while the job is queued or running, or
   * when it failed.
   */
  async results(jobId) {
    return json(this.#native.results(String(jobId)));
  }

  /**
   * The whole decrypted result as one object: `job_id`, `key_id`, `function`, `kind`,
   * `records`, and `rows` (risk) or `aggregates` (aggregate), as `blindsight results --json`
   * prints it.
   */
  async jobResults(jobId) {
    return json(this.#native.jobResults(String(jobId)));
  }

  /** Fetches a record's sealed transcript and opens it with the keystore's transcript key. */
  async openTranscript(recordId) {
    return json(this.#native.openTranscript(String(recordId)));
  }

  toString() {
    return `KeyHolder(keyId=${this.keyId}, keystore=${this.keyId ? 'opened' : 'none'})`;
  }
}

/**
 * Generates a key set in `outDir`: `<keyId>.keystore` (the secrets, encrypted under
 * `passphrase`, never overwritten), `<keyId>.public` (what the key holder registers) and
 * `<keyId>.app` (what apps load). Resolves to `{key_id, fingerprint, keystore, public, app}`.
 * The secret keys never reach JavaScript.
 */
async function keygen(outDir, passphrase, { keyId } = {}) {
  return json(native.keygen(String(outDir), String(passphrase), keyId ?? null));
}

/**
 * Creates a tenant with the server's admin token: `{name, tenant_id, min_cohort_size}`.
 * Resolves to `{tenant_id, name, min_cohort_size, tokens: {keyholder, ingest, auditor}}`
 * (the tokens are shown only now).
 */
async function createTenant(url, adminToken, tenant) {
  return json(native.createTenant(String(url), String(adminToken), text(tenant, 'the tenant')));
}

/** The SDK's version: the addon's, which is the Rust workspace's. */
const version = native.version();

module.exports = {
  Recorder,
  KeyHolder,
  keygen,
  createTenant,
  version,
  ...CLASSES,
};
