#!/usr/bin/env node
// send.js sends HL7 v2 messages to an MLLP receiver with third-party npm clients
// (simple-hl7's TCP client and node-hl7-client) and prints, for every message,
// one JSON line with the client, the file, the MSH-10 sent and the MSA-1/MSA-2 of
// the ACK received. resultgate's Go test cmd/resultgate/interop_test.go runs it
// against `resultgate serve`.
//
// Usage: node interop/send.js [--clients simple-hl7,node-hl7-client]
//                             [--generate N --prefix P] HOST PORT FILE...
//
// Each client sends every message with MSH-10 suffixed by "-S" (simple-hl7) or
// "-N" (node-hl7-client), so that both sends are distinct messages to the
// receiver. --generate builds N further ORU^R01 messages with simple-hl7's
// message builder (control IDs P-1 … P-N) and sends them with simple-hl7.
// Every wait is bounded (10 s per ACK); the script exits non-zero only when it
// cannot run at all (bad arguments, unreadable file). Delivery failures are
// reported as lines with an "error" field, for the caller to judge.
'use strict';

const fs = require('fs');
const path = require('path');

const ACK_TIMEOUT_MS = 10000;

function usage(msg) {
  if (msg) process.stderr.write(`send.js: ${msg}\n`);
  process.stderr.write('usage: node send.js [--clients a,b] [--generate N --prefix P] HOST PORT FILE...\n');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { clients: ['simple-hl7', 'node-hl7-client'], generate: 0, prefix: 'GEN', rest: [] };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--clients') opts.clients = (argv[++i] || '').split(',').filter(Boolean);
    else if (a === '--generate') opts.generate = parseInt(argv[++i], 10);
    else if (a === '--prefix') opts.prefix = argv[++i];
    else if (a.startsWith('--')) usage(`unknown flag ${a}`);
    else opts.rest.push(a);
  }
  if (opts.rest.length < 2) usage('HOST and PORT are required');
  if (!(opts.generate >= 0)) usage('--generate needs a number');
  return opts;
}

// splitMessages normalises segment terminators to CR and splits a file into
// messages at each MSH segment.
function splitMessages(text) {
  const segs = text.replace(/^\uFEFF/, '').split(/\r\n|\r|\n/).filter((s) => s.trim() !== '');
  const msgs = [];
  for (const s of segs) {
    if (s.startsWith('MSH')) msgs.push([s]);
    else if (msgs.length > 0) msgs[msgs.length - 1].push(s);
  }
  return msgs.map((m) => m.join('\r'));
}

// mshField returns MSH-n of msg (n ≥ 3), or ''.
function mshField(msg, n) {
  const sep = msg[3];
  const f = msg.split('\r')[0].split(sep);
  return f[n - 1] || '';
}

// withControlID returns msg with MSH-10 replaced.
function withControlID(msg, id) {
  const sep = msg[3];
  const lines = msg.split('\r');
  const f = lines[0].split(sep);
  while (f.length < 10) f.push('');
  f[9] = id;
  lines[0] = f.join(sep);
  return lines.join('\r');
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

function withTimeout(promise, what) {
  let timer;
  const t = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: no ACK within ${ACK_TIMEOUT_MS} ms`)), ACK_TIMEOUT_MS);
  });
  return Promise.race([promise, t]).finally(() => clearTimeout(timer));
}

// sendSimpleHL7 sends items ({file, msg}) one by one over one simple-hl7
// TcpClient connection (keepalive), waiting for each ACK. With suffix, MSH-10
// gets it appended first.
async function sendSimpleHL7(host, port, items, suffix) {
  const hl7 = require('simple-hl7');
  const client = hl7.Server.createTcpClient({ host, port: Number(port), keepalive: true });
  try {
    for (const it of items) {
      const id = mshField(it.msg, 10) + suffix;
      const msg = suffix ? withControlID(it.msg, id) : it.msg;
      try {
        const ack = await withTimeout(new Promise((resolve, reject) => {
          client.send(msg, (err, a) => (err ? reject(err) : resolve(a)));
        }), 'simple-hl7');
        const msa = ack.getSegment('MSA');
        emit({ client: 'simple-hl7', file: it.file, control_id: id,
          ack: msa ? msa.getField(1).toString() : '', msa2: msa ? msa.getField(2).toString() : '' });
      } catch (err) {
        emit({ client: 'simple-hl7', file: it.file, control_id: id, error: String(err && err.message || err) });
        client.close(); // the next send reconnects
      }
    }
  } finally {
    client.close();
  }
}

// sendNodeHL7Client sends items with node-hl7-client. A node-hl7-client Client
// pins one HL7 version (every MSH-12 sent through it must match), so there is
// one Client and connection per version. ACKs are matched by MSA-2.
async function sendNodeHL7Client(host, port, items) {
  const { Client, Message } = require('node-hl7-client');
  const byVersion = new Map();
  for (const it of items) {
    const v = mshField(it.msg, 12).split(it.msg[4] || '^')[0];
    if (!byVersion.has(v)) byVersion.set(v, []);
    byVersion.get(v).push(it);
  }
  for (const [version, group] of byVersion) {
    const waiting = new Map(); // control ID → resolve
    let client;
    let conn;
    try {
      client = new Client({ host, version, maxConnectionAttempts: 3 });
      conn = client.createConnection({ port: Number(port), waitAck: true }, async (res) => {
        const m = res.getMessage();
        const msa2 = m.get('MSA.2').toString();
        const done = waiting.get(msa2);
        if (done) {
          waiting.delete(msa2);
          done(m.get('MSA.1').toString());
        }
      });
    } catch (err) {
      for (const it of group) {
        emit({ client: 'node-hl7-client', file: it.file, control_id: `${mshField(it.msg, 10)}-N`, error: String(err && err.message || err) });
      }
      continue;
    }
    for (const it of group) {
      const id = `${mshField(it.msg, 10)}-N`;
      try {
        const acked = new Promise((resolve) => waiting.set(id, resolve));
        await conn.sendMessage(new Message({ text: withControlID(it.msg, id) }));
        const code = await withTimeout(acked, 'node-hl7-client');
        emit({ client: 'node-hl7-client', file: it.file, control_id: id, ack: code, msa2: id });
      } catch (err) {
        waiting.delete(id);
        emit({ client: 'node-hl7-client', file: it.file, control_id: id, error: String(err && err.message || err) });
      }
    }
    await conn.close();
    await client.closeAll?.();
  }
}

// generated builds n ORU^R01 v2.5.1 messages with simple-hl7's builder.
function generated(n, prefix) {
  const hl7 = require('simple-hl7');
  const out = [];
  for (let i = 1; i <= n; i++) {
    const m = new hl7.Message('NODEGEN', 'INTEROP LAB', 'RESULTGATE', 'GENHOSP', '20260101120000', '',
      ['ORU', 'R01', 'ORU_R01'], `${prefix}-${i}`, 'P', '2.5.1', '', '', 'AL', 'NE');
    m.addSegment('PID', '1', '', `MRN-GEN-${i}^^^GENHOSP^MR`, '', 'GENERATED^PATIENT', '', '19800101', 'F');
    m.addSegment('OBR', '1', `ORD-${i}`, `FIL-${i}`, '2345-7^Glucose^LN', '', '', '20260101110000');
    m.addSegment('OBX', '1', 'NM', '2345-7^Glucose^LN', '', String(80 + i), 'mg/dL', '70-99', 'N', '', '', 'F');
    out.push({ file: `generated:${prefix}-${i}`, msg: m.toString() });
  }
  return out;
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const [host, port, ...files] = opts.rest;
  const items = [];
  for (const f of files) {
    for (const msg of splitMessages(fs.readFileSync(f, 'utf8'))) items.push({ file: path.basename(f), msg });
  }
  if (opts.clients.includes('simple-hl7')) {
    await sendSimpleHL7(host, port, items, '-S');
    // The generated messages carry their own unique control IDs; send them as built.
    await sendSimpleHL7(host, port, generated(opts.generate, opts.prefix), '');
  }
  if (opts.clients.includes('node-hl7-client')) {
    await sendNodeHL7Client(host, port, items);
  }
}

main().then(() => process.exit(0), (err) => {
  process.stderr.write(`send.js: ${err && err.stack || err}\n`);
  process.exit(1);
});
