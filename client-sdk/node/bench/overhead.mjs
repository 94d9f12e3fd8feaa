// The binding's overhead over the Rust SDK, for `record` and for `results` of a 100-record
// job (docs/BENCHMARKS.md, "Language bindings").
//
// Starts a real blindsight-server (SQLite in a temporary directory), generates and registers a
// key set, then times, in alternating blocks, the same calls through the binding
// (`await recorder.record(session)`, `await keyholder.results(jobId)`) and through
// `blindsight-client` directly (the `node_overhead` example, bench/overhead.rs), each timed
// around the call alone in its own process. Prints a table and one JSON line.
//
//   node bench/overhead.mjs [--records 100] [--rounds 2] [--reps 5] [--job risk|aggregate]
//
// Environment: BLINDSIGHT_NODE_PACKAGE (the staged package; default this folder, with
// blindsight.node in it), BLINDSIGHT_SERVER_BIN (default target/<profile>/blindsight-server),
// BLINDSIGHT_BENCH_RUST (the node_overhead binary; default target/<profile>/examples/
// node_overhead), BLINDSIGHT_PROFILE (`debug` or `release`, default `release`).

import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

const args = process.argv.slice(2);
const opt = (name, fallback) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : fallback;
};
const RECORDS = Number(opt('records', 100));
const ROUNDS = Number(opt('rounds', 2));
const REPS = Number(opt('reps', 5));
const JOB = opt('job', 'risk');

const here = path.dirname(new URL(import.meta.url).pathname);
const workspace = path.join(here, '..', '..', '..');
const profile = process.env.BLINDSIGHT_PROFILE ?? 'release';
process.env.BLINDSIGHT_SERVER_BIN ??= path.join(workspace, 'target', profile, 'blindsight-server');
const rustBin =
  process.env.BLINDSIGHT_BENCH_RUST ?? path.join(workspace, 'target', profile, 'examples', 'node_overhead');

const { sdk, setUp, PASSPHRASE, cssrs } = await import('../test/support.mjs');

/** The benchmark's session (the same as `session()` in bench/overhead.rs). */
function session(recordId) {
  return {
    record_id: recordId,
    cohort: 'bench',
    recorded_at: 1795300000,
    mood_before: 4,
    mood_after: 6,
    duration_min: 50,
    phq9: [1, 2, 1, 0, 1, 0, 1, 0, 0],
    gad7: [1, 1, 0, 1, 0, 0, 1],
    cssrs: cssrs(),
    transcript: 'We talked about the week. I slept better and went for a walk twice.',
  };
}

const stats = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const mean = s.reduce((a, b) => a + b, 0) / s.length;
  const median = s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
  return { n: s.length, mean, median, min: s[0], max: s.at(-1) };
};

const env = await setUp('bench');
const rustEnv = {
  ...process.env,
  BENCH_URL: env.url,
  BENCH_TENANT: env.tenant,
  BENCH_INGEST: env.tokens.ingest,
  BENCH_KEYHOLDER: env.tokens.keyholder,
  BENCH_KEY_ID: env.keys.key_id,
  BENCH_PIN: env.keys.fingerprint,
  BENCH_KEYSTORE: env.keys.keystore,
  BENCH_PASSPHRASE: PASSPHRASE,
};
const rust = async (...argv) =>
  JSON.parse((await run(rustBin, argv, { env: rustEnv, maxBuffer: 1 << 20 })).stdout).ms;

try {
  const recorder = await sdk.Recorder.connect(
    env.url,
    env.tokens.ingest,
    env.tenant,
    env.keys.key_id,
    env.keys.fingerprint,
  );
  const perBlock = Math.ceil(RECORDS / (2 * ROUNDS));
  const record = { node: [], rust: [] };
  let n = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < perBlock; i++) {
      const s = session(`node-${round}-${i}`);
      const start = performance.now();
      await recorder.record(s);
      record.node.push(performance.now() - start);
      n++;
    }
    record.rust.push(...(await rust('record', `rust-${round}`, String(perBlock))));
    n += perBlock;
    process.stderr.write(`recorded ${n} of ${2 * ROUNDS * perBlock}\n`);
  }

  const job =
    JOB === 'risk'
      ? await env.keyholder.score({ select: { cohort: 'bench' } })
      : await env.keyholder.aggregate(
          {
            aggregates: [
              { op: 'count' },
              { op: 'mean', field: 'mood_change' },
              { op: 'mean', field: 'phq9_total' },
              { op: 'histogram', field: 'phq9_total', edges: [5, 10, 15, 20] },
            ],
          },
          { select: { cohort: 'bench' } },
        );
  process.stderr.write(`${JOB} job ${job.job_id} over ${job.records} records…\n`);
  const jobStart = performance.now();
  await env.keyholder.wait(job.job_id, { timeoutMs: 3_600_000, pollMs: 1000 });
  const jobSeconds = (performance.now() - jobStart) / 1000;

  const results = { node: [], rust: [] };
  let rows = 0;
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < REPS; i++) {
      const start = performance.now();
      rows = (await env.keyholder.results(job.job_id)).length;
      results.node.push(performance.now() - start);
    }
    results.rust.push(...(await rust('results', job.job_id, String(REPS))));
  }

  const report = {};
  for (const [what, t] of Object.entries({ record, results })) {
    const node = stats(t.node);
    const r = stats(t.rust);
    report[what] = {
      node,
      rust: r,
      overhead_mean_pct: (100 * (node.mean - r.mean)) / r.mean,
      overhead_median_pct: (100 * (node.median - r.median)) / r.median,
      overhead_min_pct: (100 * (node.min - r.min)) / r.min,
    };
  }
  const fmt = (x) => x.toFixed(1).padStart(9);
  console.log(`profile ${profile}; ${JOB} job over ${job.records} records (${rows} rows), ${jobSeconds.toFixed(0)} s on the server`);
  console.log('call        side   n      mean ms  median ms     min ms   overhead (mean, median, min)');
  for (const [what, r] of Object.entries(report)) {
    for (const side of ['node', 'rust']) {
      const s = r[side];
      const pct = (x) => `${x.toFixed(1)} %`;
      const over =
        side === 'node'
          ? `   ${pct(r.overhead_mean_pct)}, ${pct(r.overhead_median_pct)}, ${pct(r.overhead_min_pct)}`
          : '';
      console.log(
        `${what.padEnd(11)} ${side.padEnd(5)} ${String(s.n).padStart(3)} ${fmt(s.mean)} ${fmt(s.median)} ${fmt(s.min)}${over}`,
      );
    }
  }
  console.log(JSON.stringify({ profile, job: JOB, records: job.records, rows, ...report }));
} finally {
  await env.tearDown();
}
