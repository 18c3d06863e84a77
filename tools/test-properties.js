#!/usr/bin/env node
/*
 * `npm run test:properties`: every property test (a test file that imports
 * fast-check) with new random seeds and more runs, to look for the cases
 * `npm test`'s fixed seed does not draw (test/support/fast-check.ts).
 *
 *   node tools/test-properties.js [--runs X] [--rounds N] [--seed S] [jest args...]
 *
 * --runs X: every property's runs times X (20). --rounds N: the whole set N
 * times, each with new seeds (1). --seed S: replay one seed instead of
 * drawing (a failure prints its seed; add its file to replay only that).
 * Other arguments go to jest (e.g. a path to run one file). Exits non-zero
 * if any round failed.
 */
'use strict';
const { spawnSync } = require('child_process');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const args = process.argv.slice(2);
const opts = { runs: '20', rounds: 1, seed: 'random' };
const jestArgs = [];
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--runs' || a === '--rounds' || a === '--seed') {
    const v = args[++i];
    if (v === undefined) {
      console.error(`test-properties: ${a} needs a value`);
      process.exit(2);
    }
    opts[a.slice(2)] = a === '--rounds' ? Number(v) : v;
  } else if (a === '--help' || a === '-h') {
    console.log(fs.readFileSync(__filename, 'utf8').split('*/')[0].replace(/^#!.*\n\/\*\n?/, '').replace(/^ \* ?/gm, ''));
    process.exit(0);
  } else jestArgs.push(a);
}
if (!(Number.isInteger(opts.rounds) && opts.rounds >= 1)) {
  console.error('test-properties: --rounds must be a positive integer');
  process.exit(2);
}

/** Test files that import fast-check, relative to the root. */
function propertyFiles(dir) {
  const out = [];
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) out.push(...propertyFiles(p));
    else if (e.name.endsWith('.test.ts') && /from 'fast-check'/.test(fs.readFileSync(p, 'utf8'))) out.push(path.relative(root, p));
  }
  return out;
}

const files = jestArgs.some((a) => !a.startsWith('-')) ? [] : propertyFiles(path.join(root, 'test'));
const env = { ...process.env, RQCAST_FC_SEED: opts.seed, RQCAST_FC_RUNS: opts.runs };
let failed = 0;
for (let r = 1; r <= opts.rounds; r++) {
  console.log(`test-properties: round ${r} of ${opts.rounds}, ${files.length || 'the given'} files, seed ${opts.seed}, runs x${opts.runs}`);
  const res = spawnSync(process.execPath, [require.resolve('jest/bin/jest', { paths: [root] }), ...jestArgs, ...files], { cwd: root, env, stdio: 'inherit' });
  if (res.status !== 0) failed++;
}
console.log(`test-properties: ${opts.rounds - failed} of ${opts.rounds} rounds passed`);
process.exit(failed === 0 ? 0 : 1);
