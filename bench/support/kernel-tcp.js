#!/usr/bin/env node
// The baseline of bench:tcp: the kernel's TCP carrying the same bytes.
//   node kernel-tcp.js serve FILE ADDRESS PORT   a plain net server that writes FILE to every connection, then ends it
//   node kernel-tcp.js fetch ADDRESS PORT OUT    connects, writes what arrives to OUT, prints {"bytes":N,"seconds":S} at the end
// Plain JavaScript on purpose: nothing of rqcast runs in the baseline.
'use strict';
const fs = require('fs');
const net = require('net');

const [mode, ...args] = process.argv.slice(2);
if (mode === 'serve') {
  const [file, address, port] = args;
  const server = net.createServer((socket) => {
    socket.on('error', () => socket.destroy());
    fs.createReadStream(file, { highWaterMark: 1 << 20 }).pipe(socket);
  });
  server.listen(Number(port), address, () => process.stdout.write('listening\n'));
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
} else if (mode === 'fetch') {
  const [address, port, out] = args;
  const t0 = process.hrtime.bigint();
  const sink = fs.createWriteStream(out);
  let bytes = 0;
  const socket = net.connect(Number(port), address);
  socket.on('data', (chunk) => {
    bytes += chunk.length;
  });
  socket.pipe(sink);
  sink.on('finish', () => {
    const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
    process.stdout.write(JSON.stringify({ bytes, seconds }) + '\n');
  });
  socket.on('error', (err) => {
    process.stderr.write(`kernel-tcp fetch: ${err.message}\n`);
    process.exitCode = 1;
  });
} else {
  process.stderr.write('usage: kernel-tcp.js serve FILE ADDRESS PORT | fetch ADDRESS PORT OUT\n');
  process.exitCode = 2;
}
