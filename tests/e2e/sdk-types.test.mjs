// The SDK's JSDoc types hold: every file of it (web/sdk.js, web/sdk/*.js) opts in with `// @ts-check`,
// and TypeScript (this directory's dev dependency) finds no type error in them. No server, no browser.

import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { copyFileSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const E2E_DIR = path.dirname(fileURLToPath(import.meta.url));
const REPO_ROOT = path.resolve(E2E_DIR, '../..');
const TSC = path.join(E2E_DIR, 'node_modules/.bin/tsc');
const TSC_FLAGS = ['--noEmit', '--allowJs', '--checkJs', '--target', 'es2022', '--module', 'es2022', '--lib', 'es2022,dom'];

/** web/sdk.js and every web/sdk/*.js, relative to the repository root. */
function sdkFiles() {
  const modules = readdirSync(path.join(REPO_ROOT, 'web/sdk')).filter((f) => f.endsWith('.js')).sort();
  return ['web/sdk.js', ...modules.map((f) => `web/sdk/${f}`)];
}

/** Runs tsc on `files` from `cwd` (no node_modules above it, so no stray @types come in). */
function tsc(files, cwd) {
  const r = spawnSync(TSC, [...TSC_FLAGS, ...files], { cwd, encoding: 'utf8', timeout: 120_000 });
  if (r.error) throw r.error;
  return { status: r.status, output: `${r.stdout}${r.stderr}` };
}

test('every SDK file starts with // @ts-check', () => {
  const files = sdkFiles();
  assert.ok(files.length >= 5, `only ${files.length} SDK files found`);
  const unchecked = files.filter((f) => !readFileSync(path.join(REPO_ROOT, f), 'utf8').startsWith('// @ts-check'));
  assert.deepEqual(unchecked, [], 'SDK files without a leading // @ts-check');
});

test('tsc finds no type error in the SDK', () => {
  const { status, output } = tsc(sdkFiles(), REPO_ROOT);
  assert.equal(status, 0, `tsc ${TSC_FLAGS.join(' ')} web/sdk.js web/sdk/*.js:\n${output}`);
});

test('the check has teeth: tsc rejects a type error in an SDK module', () => {
  // A copy of one module with a wrong type appended must fail, or the flags check nothing.
  const dir = mkdtempSync(path.join(os.tmpdir(), 'sdk-types-'));
  try {
    copyFileSync(path.join(REPO_ROOT, 'web/sdk/util.js'), path.join(dir, 'util.js'));
    writeFileSync(path.join(dir, 'util.js'), "\n/** @type {number} */\nexport const notANumber = 'text';\n", { flag: 'a' });
    const { status, output } = tsc(['util.js'], dir);
    assert.notEqual(status, 0, 'tsc accepted a string where a number is declared');
    assert.match(output, /TS2322/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
