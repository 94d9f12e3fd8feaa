// Shared by the test files: the SDK under test, a real blindsight-server (SQLite in a temporary
// directory) with a tenant and a registered key set, and sessions.
//
// BLINDSIGHT_NODE_PACKAGE names the staged package (index.js beside blindsight.node;
// tests/node.rs stages it); without it, this folder. BLINDSIGHT_SERVER_BIN names the server
// binary; without it, target/debug/blindsight-server of the workspace.

import { spawn } from 'node:child_process';
import { once } from 'node:events';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const sourceDir = path.join(here, '..');
export const workspaceDir = path.join(sourceDir, '..', '..');
export const packageDir = process.env.BLINDSIGHT_NODE_PACKAGE ?? sourceDir;

const require = createRequire(import.meta.url);
export const sdk = require(path.join(packageDir, 'index.js'));

export const PASSPHRASE = 'node test passphrase, not a secret';
export const ADMIN_TOKEN = 'node-test-admin-token-0123456789abcdef';

export function serverBinary() {
  const bin =
    process.env.BLINDSIGHT_SERVER_BIN ??
    path.join(workspaceDir, 'target', 'debug', `blindsight-server${process.platform === 'win32' ? '.exe' : ''}`);
  if (!fs.existsSync(bin)) {
    throw new Error(
      `${bin} is missing: run \`cargo test --workspace\` (or \`cargo build --workspace --bins\`) ` +
        'so the server binary is built, or set BLINDSIGHT_SERVER_BIN',
    );
  }
  return bin;
}

async function freePort() {
  const server = net.createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address();
  server.close();
  await once(server, 'close');
  return port;
}

export function tempDir(prefix = 'blindsight-node-') {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * Starts `blindsight-server serve` on a free loopback port with SQLite in `dataDir` and waits
 * for /readyz. Returns `{url, stop()}`.
 */
export async function startServer(dataDir) {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const env = { ...process.env, BLINDSIGHT_ADMIN_TOKEN: ADMIN_TOKEN };
  for (const k of Object.keys(env)) {
    if (k.startsWith('BLINDSIGHT_') && k !== 'BLINDSIGHT_ADMIN_TOKEN') delete env[k];
  }
  const child = spawn(
    serverBinary(),
    ['serve', '--listen', `127.0.0.1:${port}`, '--data-dir', dataDir, '--min-cohort', '2'],
    { env, stdio: ['ignore', 'ignore', 'pipe'] },
  );
  let log = '';
  child.stderr.on('data', (chunk) => {
    log = (log + chunk).slice(-20_000);
  });
  const exited = once(child, 'exit');
  const deadline = Date.now() + 120_000;
  for (;;) {
    if (child.exitCode !== null) {
      throw new Error(`blindsight-server exited with ${child.exitCode} before it was ready:\n${log}`);
    }
    try {
      const res = await fetch(`${url}/readyz`);
      if (res.ok) break;
    } catch {
      // Not listening yet.
    }
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`blindsight-server was not ready within 120 s:\n${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    log: () => log,
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), 15_000);
        await exited;
        clearTimeout(timer);
      }
    },
  };
}

/**
 * A server with a tenant (min cohort 2) and a key set: generated with `sdk.keygen` into a
 * temporary directory and registered. Returns the server, tokens, paths and the pin.
 */
export async function setUp(tenantId) {
  const dir = tempDir();
  const server = await startServer(path.join(dir, 'data'));
  const tenant = await sdk.createTenant(server.url, ADMIN_TOKEN, {
    name: `Node test ${tenantId}`,
    tenant_id: tenantId,
    min_cohort_size: 2,
  });
  const keys = await sdk.keygen(path.join(dir, 'keys'), PASSPHRASE, { keyId: `${tenantId}-k1` });
  const keyholder = await sdk.KeyHolder.open(
    server.url,
    tenant.tokens.keyholder,
    tenantId,
    keys.keystore,
    PASSPHRASE,
  );
  await keyholder.register(keys.public);
  return {
    dir,
    server,
    url: server.url,
    tenant: tenantId,
    tokens: tenant.tokens,
    keys,
    keyholder,
    async tearDown() {
      await server.stop();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** C-SSRS screener answers: all "no" but those in `overrides`. */
export const cssrs = (overrides = {}) => ({
  wish_dead: false,
  thoughts: false,
  method: false,
  intent: false,
  plan: false,
  behavior: false,
  ...overrides,
});

/** A session without a transcript (so its crisis v1 score follows from its answers alone). */
export function session(recordId, overrides = {}) {
  return {
    record_id: recordId,
    cohort: 'node-pilot',
    recorded_at: 1795300000,
    mood_before: 4,
    mood_after: 6,
    duration_min: 50,
    phq9: [1, 1, 0, 0, 0, 0, 0, 0, 0],
    gad7: [1, 0, 0, 0, 0, 0, 0],
    cssrs: cssrs(),
    ...overrides,
  };
}

/** docs/session-example.json, the documented format. */
export function exampleSession() {
  return JSON.parse(fs.readFileSync(path.join(workspaceDir, 'docs', 'session-example.json'), 'utf8'));
}
