#!/usr/bin/env node
// The two ends of bench:tcp-read, each its own process (its own CPU count and heap).
//   node tcp-frame-read.js send PORT BYTES       a plain net server that writes BYTES of frames (docs/PROTOCOL.md §3:
//                                                length u16 | 1 400-byte packet) to every connection, then ends it
//   node tcp-frame-read.js plain PORT            a plain 'data' reader: counts the bytes
//   node tcp-frame-read.js rqcast PORT ROOT      rqcast's TCP client transport from ROOT/dist: counts the frames and checks each one's first byte
// A reader prints {"bytes":N,"frames":F,"cpu_ms":C,"user_ms":U,"sys_ms":S} at the end: its CPU from before the connect to the end of the stream.
'use strict';
const net = require('net');

const PACKET = 1400;
const FRAME = PACKET + 2;
const FIRST_BYTE = 0x10; // an LCT header's version 1 (an ALC packet)

const [mode, portArg, arg] = process.argv.slice(2);
const port = Number(portArg);
const c0 = process.cpuUsage();
const report = (bytes, frames) => {
  const c = process.cpuUsage(c0);
  process.stdout.write(`${JSON.stringify({ bytes, frames, cpu_ms: Math.round((c.user + c.system) / 1000), user_ms: Math.round(c.user / 1000), sys_ms: Math.round(c.system / 1000) })}\n`);
};

if (mode === 'send') {
  const total = Number(arg);
  const block = Buffer.alloc(Math.floor((1 << 20) / FRAME) * FRAME);
  for (let at = 0; at < block.length; at += FRAME) {
    block.writeUInt16BE(PACKET, at);
    block[at + 2] = FIRST_BYTE;
  }
  const server = net.createServer((socket) => {
    socket.on('error', () => socket.destroy());
    let sent = 0;
    const pump = () => {
      while (sent < total) {
        const n = Math.min(block.length, Math.ceil((total - sent) / FRAME) * FRAME);
        sent += n;
        if (!socket.write(block.subarray(0, n))) return void socket.once('drain', pump);
      }
      socket.end();
    };
    pump();
  });
  server.listen(port, '127.0.0.1', () => process.stdout.write('listening\n'));
  process.on('SIGTERM', () => server.close(() => process.exit(0)));
} else if (mode === 'plain') {
  let bytes = 0;
  const socket = net.connect(port, '127.0.0.1');
  socket.on('data', (chunk) => {
    bytes += chunk.length;
  });
  socket.on('end', () => report(bytes, Math.floor(bytes / FRAME)));
} else if (mode === 'rqcast') {
  const { openTcpClientTransport } = require(`${arg}/dist/transport/tcp/client-stream.js`);
  let bytes = 0;
  let frames = 0;
  openTcpClientTransport(
    { address: '127.0.0.1', port, family: 4 },
    {
      onDatagrams(d) {
        for (let i = 0; i < d.count; i++) {
          if (d.data[d.offset(i)] !== FIRST_BYTE) throw new Error(`frame ${frames + i}: not what was sent`);
          bytes += FRAME;
        }
        frames += d.count;
        // Nothing of the delivery is kept: the storage may be read into again.
        return true;
      },
      // The sender's FIN: the stream is over.
      onError() {
        report(bytes, frames);
        process.exit(0);
      },
    },
  );
} else {
  process.stderr.write('usage: tcp-frame-read.js send PORT BYTES | plain PORT | rqcast PORT ROOT\n');
  process.exit(2);
}
