#!/usr/bin/env node
// Run by test/e2e/tcp.test.ts inside a client namespace: fetches URL over
// TCP with rqcast's own client (from the transpiled tree ROOT, as the CLI
// runs) logging every symbol it receives, and prints one JSON line: the
// symbols received, how many of them repeated a (TSI, TOI, SBN, ESI) already
// received, and the objects with their verification.
//   node tcp-esi-probe.js ROOT URL OUTDIR
'use strict';
const path = require('path');

const [root, url, outputDir] = process.argv.slice(2);
const { RqcastClient } = require(path.join(root, 'dist', 'client', 'client.js'));

async function main() {
  const client = new RqcastClient(url, { outputDir, transport: 'tcp', recordEsis: true, timeoutMs: 120000 });
  client.on('error', () => {});
  const summary = await client.fetch();
  const seen = new Set();
  let duplicates = 0;
  for (const e of client.stats.esiLog) {
    const key = `${e.tsi}/${e.toi}/${e.sbn}/${e.esi}`;
    if (seen.has(key)) duplicates++;
    else seen.add(key);
  }
  process.stdout.write(
    JSON.stringify({ symbols: client.stats.esiLog.length, duplicates, objects: summary.objects.map((o) => ({ name: o.name, sha256: o.sha256 })) }) + '\n',
  );
}

main().catch((err) => {
  process.stderr.write(`tcp-esi-probe: ${err && err.stack ? err.stack : err}\n`);
  process.exitCode = 1;
});
