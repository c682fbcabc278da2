#!/usr/bin/env node
// ack-server.js runs simple-hl7's MLLP server (the npm "simple-hl7" package) as a
// baseline receiver for load comparisons: it parses each message and answers
// with simple-hl7's own AA ACK, storing nothing. interop/measure.sh drives it
// with `resultgate bench` beside `resultgate serve`.
//
// Usage: node interop/ack-server.js [PORT] [HOST]
//
// PORT defaults to 0 (a free port) and HOST to 127.0.0.1 (loopback only). Once
// listening it prints one JSON line {"listening":"HOST:PORT","pid":N} on stdout.
// SIGTERM or SIGINT stops it.
'use strict';

const hl7 = require('simple-hl7');

const port = Number(process.argv[2] || 0);
const host = process.argv[3] || '127.0.0.1';

const app = hl7.tcp();
app.use((req, res, next) => {
  res.end(); // the ACK simple-hl7 built: MSA-1 AA, MSA-2 = MSH-10
});
app.use((err, req, res, next) => {
  if (res && res.ack) {
    res.ack.getSegment('MSA').setField(1, 'AR');
    res.end();
  }
});

// simple-hl7's start() calls net.Server.listen(port) without a host, so listen
// ourselves on the loopback address and hand the connections to its handler.
const srv = app.start(0);
srv.server.close();
srv.server.listen(port, host, () => {
  const a = srv.server.address();
  process.stdout.write(JSON.stringify({ listening: `${a.address}:${a.port}`, pid: process.pid }) + '\n');
});

for (const sig of ['SIGTERM', 'SIGINT']) {
  process.on(sig, () => {
    srv.server.close();
    process.exit(0);
  });
}
