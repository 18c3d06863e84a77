#!/usr/bin/env node
// Run by test/e2e/tcp-scale.test.ts inside one client namespace: N fetches
// over TCP at once from one process (N connections from one host, as N
// kernel TCP clients), each into its own directory. Prints one JSON line:
// for every fetch its verified digest and its seconds from the fetch's
// start to its end, and how many failed (with the first errors).
//   node tcp-many-probe.js ROOT URL OUTDIR N
'use strict';
const fs = require('fs');
const path = require('path');

const [root, url, outputDir, count] = process.argv.slice(2);
const { RqcastClient } = require(path.join(root, 'dist', 'client', 'client.js'));

async function one(i) {
  const dir = path.join(outputDir, String(i));
  fs.mkdirSync(dir, { recursive: true });
  const client = new RqcastClient(url, { outputDir: dir, transport: 'tcp', timeoutMs: 120000 });
  client.on('error', () => {});
  const t0 = process.hrtime.bigint();
  const summary = await client.fetch();
  return { seconds: Number(process.hrtime.bigint() - t0) / 1e9, sha256: summary.objects.map((o) => o.sha256), bytes: summary.bytesReceived };
}

async function main() {
  const n = Number(count);
  const results = await Promise.allSettled(Array.from({ length: n }, (_, i) => one(i)));
  const ok = results.filter((r) => r.status === 'fulfilled').map((r) => r.value);
  const errors = results.filter((r) => r.status === 'rejected').map((r) => String(r.reason && r.reason.message ? r.reason.message : r.reason));
  process.stdout.write(JSON.stringify({ fetches: ok, failed: errors.length, errors: errors.slice(0, 5) }) + '\n');
}

main().catch((err) => {
  process.stderr.write(`tcp-many-probe: ${err && err.stack ? err.stack : err}\n`);
  process.exitCode = 1;
});
