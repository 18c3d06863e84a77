// Smoke check of the TcpServer binding from Node (not a jest test: it needs
// root, a private network namespace and the nftables drop rule). Run:
//
//   unshare -n sh -c "ip link set lo up && nft add table inet t && \
//     nft add chain inet t in '{ type filter hook input priority 0; }' && \
//     nft add rule inet t in ip daddr 127.0.0.1 tcp dport 9500 drop && \
//     node test/native/tcp_server_smoke.js $PWD"
//
// It constructs a TcpServer over a Replicator, checks argument errors and
// EADDRINUSE, connects a net.Socket, sends a control packet and a channel's
// packets through it, gets the client's bytes back as a 'data' event, ends
// with a 'close' (normal), prints the stats and stops. Exit 0 on success.
const net = require('net');
const root = process.argv[2] || require('path').resolve(__dirname, '../..');
const b = require(root + '/node_modules/node-gyp-build')(root);
const rep = new b.Replicator({}, () => {});
rep.createChannel(7, 1500, 1024, 0, 0, 0);
const log = [];
let srv;
try { new b.TcpServer({}, { address: '127.0.0.1', port: 9500 }, () => {}); } catch (e) { log.push('bad replicator: ' + e.code); }
try { new b.TcpServer(rep, { address: 'x', port: 9500 }, () => {}); } catch (e) { log.push('bad address: ' + e.code); }
try { new b.TcpServer(rep, { address: '127.0.0.1' }, () => {}); } catch (e) { log.push('no port: ' + e.code); }
const pkt = Buffer.alloc(100, 0); pkt[0] = 0x10; pkt[1] = 0xa0; pkt[2] = 4; pkt[3] = 6; pkt[15] = 1;
let sock;
const done = (msg) => {
  console.log(log.join('\n'));
  console.log(msg);
  console.log('stats', JSON.stringify(srv.stats()));
  srv.stop(); srv.stop();
  rep.close();
  if (msg !== 'closed: normal') process.exitCode = 1;
};
srv = new b.TcpServer(rep, { address: '127.0.0.1', port: 9500, poolPackets: 64 }, (events) => {
  for (const e of events) {
    log.push('event ' + JSON.stringify(e.type === 'data' ? { ...e, bytes: e.bytes.toString() } : e));
    if (e.type === 'open') {
      log.push('send ' + srv.send(e.id, Buffer.from([0x52, 0x51, 1, 2, 0, 8, 0, 0])));
      try { srv.addMember(99, e.id); } catch (err) { log.push('addMember 99: ' + err.code); }
      srv.addMember(7, e.id);
      rep.barrier();
      for (let i = 0; i < 20; i++) { pkt[19] = i; rep.push(7, pkt, 100, 1); }
      log.push('connectionStats ' + JSON.stringify(srv.connectionStats(e.id)));
    }
    if (e.type === 'data') sock.end();
    if (e.type === 'close') done('closed: ' + e.reason);
  }
});
srv.start();
try { srv.start(); log.push('second start: no-op'); } catch (e) { log.push('second start: ' + e.code); }
const other = new b.TcpServer(rep, { address: '127.0.0.1', port: 9500 }, () => {});
try { other.start(); } catch (e) { log.push('same port: ' + e.code + ' ' + e.message); }
other.stop();
sock = net.connect(9500, '127.0.0.1');
let buf = Buffer.alloc(0);
let frames = 0;
sock.on('data', (d) => {
  buf = Buffer.concat([buf, d]);
  while (buf.length >= 2 && buf.length >= 2 + buf.readUInt16BE(0)) {
    const len = buf.readUInt16BE(0);
    frames++;
    buf = buf.subarray(2 + len);
  }
  // control + 20 - reserve(16) = 5 frames
  if (frames === 5) { log.push('client got 5 frames'); sock.write('bye'); }
});
sock.on('error', (e) => log.push('client error ' + e.code));
setTimeout(() => { done('timeout'); process.exit(1); }, 5000).unref();
