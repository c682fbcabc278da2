#!/usr/bin/env node
// resend.js sends one HL7 v2 message several times over one connection with
// @medplum/hl7's MLLP client (Hl7Client), as an interface engine that
// re-serialises what it resends: the message is read into @medplum/core's
// Hl7Message and sent as that library writes it (segments joined with CR,
// no terminator after the last one). It prints one JSON line per send:
// `client`, `send` (1, 2, ...), `control_id`, `ack` (MSA-1), `msa2` and
// `final_terminator` (whether the bytes sent end with CR) — or `error`.
// resultgate's Go test app/portal_lifecycle_test.go
// (TestMedplumResendStoredOnce) runs it against `serve`'s wiring.
//
// Usage: node interop/resend.js [--times N] HOST PORT FILE
//
// Every wait is bounded (10 s per ACK, 30 s in all); the script exits
// non-zero only when it cannot run at all (bad arguments, unreadable file).
'use strict';

const fs = require('fs');
const { Hl7Message } = require('@medplum/core');
const { Hl7Client } = require('@medplum/hl7');

const ACK_TIMEOUT_MS = 10000;
const OVERALL_TIMEOUT_MS = 30000;

function usage(msg) {
  if (msg) process.stderr.write(`resend.js: ${msg}\n`);
  process.stderr.write('usage: node resend.js [--times N] HOST PORT FILE\n');
  process.exit(2);
}

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + '\n');
}

async function main() {
  const argv = process.argv.slice(2);
  let times = 2;
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--times') times = parseInt(argv[++i], 10);
    else if (argv[i].startsWith('--')) usage(`unknown flag ${argv[i]}`);
    else rest.push(argv[i]);
  }
  if (rest.length !== 3) usage('HOST, PORT and FILE are required');
  if (!(times >= 1)) usage('--times needs a number of at least 1');
  const [host, portText, file] = rest;
  const port = parseInt(portText, 10);
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    usage(`reading ${file}: ${err.message}`);
  }
  // An engine holds the message as segments; the library writes them back
  // joined with CR and nothing after the last one.
  const segments = text.split(/\r\n|\r|\n/).filter((s) => s !== '');
  const msg = Hl7Message.parse(segments.join('\r'));
  const wire = msg.toString();
  const controlID = msg.getSegment('MSH')?.getField(10)?.toString() ?? '';

  const client = new Hl7Client({ host, port, connectTimeout: ACK_TIMEOUT_MS });
  const watchdog = setTimeout(() => {
    emit({ client: '@medplum/hl7', error: `gave up after ${OVERALL_TIMEOUT_MS} ms` });
    process.exit(1);
  }, OVERALL_TIMEOUT_MS);
  try {
    for (let i = 1; i <= times; i++) {
      try {
        const ack = await client.sendAndWait(msg, { timeoutMs: ACK_TIMEOUT_MS });
        const msa = ack.getSegment('MSA');
        emit({
          client: '@medplum/hl7', send: i, control_id: controlID,
          ack: msa?.getField(1)?.toString() ?? '', msa2: msa?.getField(2)?.toString() ?? '',
          final_terminator: wire.endsWith('\r'),
        });
      } catch (err) {
        emit({ client: '@medplum/hl7', send: i, control_id: controlID, error: String(err && err.message ? err.message : err) });
      }
    }
  } finally {
    clearTimeout(watchdog);
    await client.close();
  }
}

// Exit once done: sendAndWait leaves each ACK's timeout timer armed after the
// ACK came, which would keep the process alive for ACK_TIMEOUT_MS more.
main().then(() => process.exit(0), (err) => {
  emit({ client: '@medplum/hl7', error: String(err && err.message ? err.message : err) });
  process.exit(1);
});
