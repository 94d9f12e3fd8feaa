// The package itself: version numbers tied to the workspace's, the exports index.d.ts
// declares, and errors that are Error subclasses. No server needed.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

import { sdk, sourceDir, workspaceDir } from './support.mjs';

function workspaceVersion() {
  const cargo = fs.readFileSync(path.join(workspaceDir, 'Cargo.toml'), 'utf8');
  const section = cargo.split(/^\[workspace\.package\]$/m)[1];
  assert.ok(section, 'the workspace Cargo.toml has a [workspace.package] section');
  const match = section.match(/^version\s*=\s*"([^"]+)"/m);
  assert.ok(match, '[workspace.package] has a version');
  return match[1];
}

test('package.json, the addon and Cargo agree on the version', () => {
  const pkg = JSON.parse(fs.readFileSync(path.join(sourceDir, 'package.json'), 'utf8'));
  const cargoVersion = workspaceVersion();
  assert.equal(pkg.version, cargoVersion, 'package.json "version" must be the workspace version (Cargo.toml)');
  assert.equal(sdk.version, cargoVersion, 'the addon reports the workspace version');
  const crate = fs.readFileSync(path.join(sourceDir, 'Cargo.toml'), 'utf8');
  assert.match(crate, /^version\.workspace = true$/m, 'the crate takes its version from the workspace');
});

test('every export is declared in index.d.ts, and every declared export exists', () => {
  const dts = fs.readFileSync(path.join(sourceDir, 'index.d.ts'), 'utf8');
  const declared = new Set(
    [...dts.matchAll(/^export (?:declare )?(?:class|function|const) (\w+)/gm)].map((m) => m[1]),
  );
  const exported = new Set(Object.keys(sdk));
  assert.deepEqual([...exported].sort(), [...declared].sort());
});

test('errors are Error subclasses with problemType, status and fields', () => {
  const classes = [
    'BlindsightError',
    'ApiError',
    'UnreachableError',
    'InvalidInputError',
    'InvalidSessionError',
    'PinMismatchError',
    'KeystoreError',
    'JobError',
    'WaitTimeoutError',
    'CryptoError',
  ];
  for (const name of classes) {
    const e = new sdk[name]('x');
    assert.ok(e instanceof Error, name);
    assert.ok(e instanceof sdk.BlindsightError, name);
    assert.equal(e.name, name);
    assert.equal(e.problemType, null);
    assert.equal(e.status, null);
    assert.deepEqual(e.fields, []);
  }
  assert.ok(new sdk.InvalidSessionError('x') instanceof sdk.InvalidInputError);
  assert.ok(new sdk.UnreachableError('x') instanceof sdk.ApiError);
});

test('the roles cannot be made without their factories', () => {
  assert.throws(() => new sdk.Recorder({}, {}), TypeError);
  assert.throws(() => new sdk.KeyHolder({}), TypeError);
});

test('keygen refuses a short passphrase, naming the field, before generating anything', async () => {
  await assert.rejects(sdk.keygen(path.join(sourceDir, 'no-such-dir'), 'short'), (e) => {
    assert.ok(e instanceof sdk.InvalidInputError, e.stack);
    assert.deepEqual(e.fields.map((f) => f.field), ['passphrase']);
    return true;
  });
  assert.equal(fs.existsSync(path.join(sourceDir, 'no-such-dir')), false);
});
