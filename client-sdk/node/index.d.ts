// Type declarations of @blindsight/sdk (hand-written; index.js is the implementation).
//
// Data objects (sessions, selections, queries, jobs, results) use the SDK's documented JSON
// formats, with snake_case keys: the same as docs/session-example.json, the HTTP API and
// `blindsight results --json`. Methods and option bags are camelCase.

/// <reference types="node" />

// ---------------------------------------------------------------------------------------------
// Sessions (docs/session-example.json, docs/training-example.json)

/** C-SSRS screener answers. */
export interface CssrsScreener {
  wish_dead: boolean;
  thoughts: boolean;
  method: boolean;
  intent: boolean;
  plan: boolean;
  behavior: boolean;
}

/** One therapy session as an app records it (the built-in `session` v1 schema). */
export interface Session {
  /** Chosen by the app, so a retried upload cannot create a duplicate. */
  record_id: string;
  /** The cohort label analytics select on. */
  cohort?: string | null;
  /** Seconds since the Unix epoch. */
  recorded_at?: number | null;
  /** 0–10. */
  mood_before: number;
  /** 0–10. */
  mood_after: number;
  /** 0–240. */
  duration_min: number;
  /** The nine PHQ-9 answers, 0–3 each. */
  phq9: number[];
  /** The seven GAD-7 answers, 0–3 each. */
  gad7: number[];
  cssrs: CssrsScreener;
  /** Lexicon features are extracted from it on the device, then it is sealed to the key holder. */
  transcript?: string | null;
}

/** One message of a practice conversation. */
export interface TrainingMessage {
  role: 'trainee' | 'client';
  text: string;
}

/** One practice session of a therapist trainee (the built-in `training` v1 schema). */
export interface TrainingSession {
  record_id: string;
  /** The trainee's pseudonym (`[A-Za-z0-9._-]`): the record's cohort label. */
  trainee: string;
  recorded_at?: number | null;
  /** A scenario category, e.g. `substance_use` (docs/MODELS.md). */
  scenario: string;
  duration_min: number;
  talk_share_pct?: number | null;
  self_confidence: number;
  supervisor_rating?: number | null;
  messages: TrainingMessage[];
}

// ---------------------------------------------------------------------------------------------
// Replies

/** What an upload did. `created` is false (and `seq`, the digest null) when an earlier attempt stored this exact record. */
export interface Stored {
  record_id: string;
  seq: number | null;
  proven_list_digest: string | null;
  created: boolean;
}

/** Which records a job reads (every `session` v1 record by default). */
export interface Selection {
  schema_id?: string;
  schema_version?: number;
  cohort?: string;
  /** Recorded at or after, seconds since the epoch. */
  since?: number;
  /** Recorded before, seconds since the epoch. */
  until?: number;
  record_ids?: string[];
}

/** A risk model by id and version (`crisis` v1 is built in; docs/MODELS.md). */
export interface ModelRef {
  id: string;
  version: number;
}

/** An aggregate query (docs/MODELS.md), e.g. `{aggregates: [{op: 'count'}, {op: 'mean', field: 'mood_change'}]}`. */
export interface AggregateQuery {
  aggregates: Array<{ op: string; field?: string; [key: string]: unknown }>;
  [key: string]: unknown;
}

export type JobStatus = 'queued' | 'running' | 'succeeded' | 'failed';

export interface JobCreated {
  job_id: string;
  kind: string;
  records: number;
  status: JobStatus;
}

export interface Job {
  job_id: string;
  tenant_id: string;
  key_id: string;
  kind: string;
  spec: string;
  status: JobStatus;
  attempts: number;
  max_attempts: number;
  progress_done: number;
  progress_total: number;
  error?: string | null;
  created_at: number;
  started_at?: number | null;
  finished_at?: number | null;
  tasks?: { total: number; succeeded: number; running: number } | null;
}

/** One record's decrypted risk score. */
export interface RiskRow {
  record_id: string;
  score: number;
  tier: 'none' | 'low' | 'moderate' | 'high';
}

/** One decrypted aggregate: its description, the aggregate's own fields, its value's fields. */
export interface AggregateRow {
  /** The aggregate's description, e.g. `mean(mood_change)`. */
  aggregate: string;
  op: string;
  field?: string;
  count?: number;
  sum?: number;
  mean?: number | null;
  buckets?: number[];
  labels?: string[];
  computed_by: string;
  [key: string]: unknown;
}

export type ResultRow = RiskRow | AggregateRow;

/** A job's whole decrypted result, as `blindsight results --json` prints it. */
export interface JobResults {
  job_id: string;
  key_id: string;
  function: string;
  kind: 'risk' | 'aggregate';
  records: number;
  rows?: RiskRow[];
  aggregates?: Array<Record<string, unknown>>;
}

export interface KeysetRegistered {
  key_id: string;
  manifest_fingerprint: string;
  parameter_set: string;
  created: boolean;
}

export interface KeyGenerated {
  key_id: string;
  /** The manifest fingerprint apps pin. */
  fingerprint: string;
  /** The keystore's path (secrets, passphrase-encrypted). */
  keystore: string;
  /** The public bundle's path (what the key holder registers). */
  public: string;
  /** The app bundle's path (what apps load). */
  app: string;
}

export interface TenantCreated {
  tenant_id: string;
  name: string;
  min_cohort_size: number;
  /** Shown only now. */
  tokens: { keyholder: string; ingest: string; auditor: string };
}

// ---------------------------------------------------------------------------------------------
// Roles

/** An app recording sessions for one tenant under one key set. Holds public material only. */
export class Recorder {
  private constructor();
  /** Loads the app bundle of `keyId`; PinMismatchError unless its manifest fingerprint is `pin`. */
  static connect(
    url: string,
    ingestToken: string,
    tenant: string,
    keyId: string,
    pin: string,
  ): Promise<Recorder>;
  /** A recorder over an app bundle the app holds (a Buffer or a `.app` path); without `url` it only builds envelopes. */
  static fromAppBundle(
    bundle: Buffer | Uint8Array | string,
    options: { tenant: string; pin: string; url?: string; ingestToken?: string },
  ): Promise<Recorder>;
  readonly keyId: string;
  readonly fingerprint: string;
  readonly tenant: string;
  /** Encrypts, proves, seals and uploads a session on a worker thread. */
  record(session: Session): Promise<Stored>;
  recordTraining(session: TrainingSession): Promise<Stored>;
  /** The record envelope (the body of `POST /v1/records`), without uploading it. */
  buildEnvelope(session: Session): Promise<Buffer>;
  buildTrainingEnvelope(session: TrainingSession): Promise<Buffer>;
  /** The encoded app bundle (public material only). */
  appBundle(): Promise<Buffer>;
}

/** The key holder of one tenant. The keystore's secrets stay inside the addon. */
export class KeyHolder {
  private constructor();
  /** Opens the keystore (KeystoreError on a wrong passphrase). */
  static open(
    url: string,
    keyholderToken: string,
    tenant: string,
    keystorePath: string,
    passphrase: string,
  ): Promise<KeyHolder>;
  /** Without a keystore: registers keys and queues jobs, cannot decrypt. */
  static connect(url: string, keyholderToken: string, tenant: string): KeyHolder;
  readonly keyId: string | null;
  register(publicBundle: Buffer | Uint8Array | string): Promise<KeysetRegistered>;
  score(options?: { keyId?: string; model?: ModelRef; select?: Selection }): Promise<JobCreated>;
  aggregate(
    query: AggregateQuery,
    options?: { keyId?: string; select?: Selection },
  ): Promise<JobCreated>;
  job(jobId: string): Promise<Job>;
  jobs(): Promise<Job[]>;
  /** Polls without holding a thread; WaitTimeoutError after `timeoutMs` (default 600 000). */
  wait(
    jobId: string,
    options?: { timeoutMs?: number; pollMs?: number; onProgress?: (job: Job) => void },
  ): Promise<Job>;
  /** Decrypts a finished job's output on a worker thread: one plain object per row. */
  results(jobId: string): Promise<ResultRow[]>;
  jobResults(jobId: string): Promise<JobResults>;
  openTranscript(recordId: string): Promise<string>;
}

/** Generates a key set into `outDir` (keystore, public and app bundles); the secrets never reach JavaScript. */
export function keygen(
  outDir: string,
  passphrase: string,
  options?: { keyId?: string },
): Promise<KeyGenerated>;

/** Creates a tenant with the server's admin token. */
export function createTenant(
  url: string,
  adminToken: string,
  tenant: { name: string; tenant_id?: string; min_cohort_size?: number },
): Promise<TenantCreated>;

/** The SDK's version (the Rust workspace's). */
export const version: string;

// ---------------------------------------------------------------------------------------------
// Errors

export interface FieldError {
  field: string;
  reason: string;
}

/** Base class of every error the SDK raises. */
export class BlindsightError extends Error {
  /** The server's problem type slug (`forbidden`, `proof-invalid`, `cohort-too-small`, …), or null. */
  problemType: string | null;
  /** The HTTP status, or null when the server did not refuse. */
  status: number | null;
  /** Field errors (empty when no field is at fault). */
  fields: FieldError[];
  [detail: string]: unknown;
}
/** The server refused the request, or its answer was not understood. */
export class ApiError extends BlindsightError {
  detail?: string;
  sameContent?: boolean | null;
}
/** The server could not be reached. */
export class UnreachableError extends ApiError {
  url?: string;
}
/** An argument that cannot be used. */
export class InvalidInputError extends BlindsightError {
  field: string | null;
  reason: string;
}
/** A session that cannot be recorded (e.g. `field` `phq9`, `gad7_3`, `cssrs.plan`); nothing was sent. */
export class InvalidSessionError extends InvalidInputError {}
/** The key set's manifest is not the pinned one. */
export class PinMismatchError extends BlindsightError {
  component: string;
  expected: string;
  found: string;
}
/** Wrong passphrase, not a keystore, an existing keystore, or another key set's keystore. */
export class KeystoreError extends BlindsightError {
  path: string | null;
}
/** A job that is not finished, failed, or whose output does not match its request. */
export class JobError extends BlindsightError {
  jobId: string;
  jobStatus: string | null;
  reason: string | null;
}
/** A job did not finish in time; it keeps running on the server. */
export class WaitTimeoutError extends BlindsightError {
  jobId: string;
  jobStatus: string;
  done: number;
  total: number;
}
/** Any other cryptographic failure. */
export class CryptoError extends BlindsightError {}
