#!/usr/bin/env node
// parse.js reads one HL7 v2 message from a file with two third-party npm
// parsers (node-hl7-client and simple-hl7) and prints one JSON line per
// parser: the segment names in order, MSH-10, every NTE (set ID, source,
// comment, comment type) and the fields of every Z-segment named on the
// command line (1 … 8), as each library returns them. resultgate's Go test
// forwarder/interop_test.go runs it on the bytes the MLLP forwarder delivered,
// to prove that the release instructions it adds (NTE, ZRG) read as intended
// outside resultgate.
//
// Usage: node interop/parse.js [--segment ZRG] FILE
//
// The file is read as UTF-8. The script exits non-zero only when it cannot run
// (bad arguments, unreadable file); a parser that throws is reported as a line
// with an "error" field.
'use strict';

const fs = require('fs');

function usage(msg) {
  if (msg) process.stderr.write(`parse.js: ${msg}\n`);
  process.stderr.write('usage: node parse.js [--segment ZRG] FILE\n');
  process.exit(2);
}

const argv = process.argv.slice(2);
let zseg = 'ZRG';
const rest = [];
for (let i = 0; i < argv.length; i++) {
  if (argv[i] === '--segment') zseg = argv[++i] || usage('--segment needs a name');
  else if (argv[i].startsWith('--')) usage(`unknown flag ${argv[i]}`);
  else rest.push(argv[i]);
}
if (rest.length !== 1) usage('one FILE expected');
let text;
try {
  text = fs.readFileSync(rest[0], 'utf8');
} catch (e) {
  usage(`reading ${rest[0]}: ${e.message}`);
}
// Both parsers split segments at CR only, as the standard does.
const FIELDS = 8;

function withNodeHL7Client() {
  const { Message } = require('node-hl7-client');
  const msg = new Message({ text });
  const segments = [];
  const nte = [];
  const z = [];
  for (const s of text.split('\r')) if (s.trim() !== '') segments.push(s.slice(0, 3));
  // get(name) is the list of that name's segments; a field is read by path.
  const each = (name, fn) => {
    if (segments.includes(name)) msg.get(name).forEach((s) => fn(s));
  };
  each('NTE', (s) => nte.push(['1', '2', '3', '4.1'].map((f) => s.get(`NTE.${f}`).toString())));
  each(zseg, (s) => {
    const f = [];
    for (let i = 1; i <= FIELDS; i++) f.push(s.get(`${zseg}.${i}`).toString());
    z.push(f);
  });
  return { parser: 'node-hl7-client', segments, msh10: msg.get('MSH.10').toString(), nte, z };
}

function withSimpleHL7() {
  const hl7 = require('simple-hl7');
  const msg = new hl7.Parser().parse(text);
  const segments = ['MSH'].concat(msg.segments.map((s) => s.name));
  const nte = msg.getSegments('NTE').map((s) => [s.getField(1), s.getField(2), s.getField(3), s.getComponent(4, 1)]);
  const z = msg.getSegments(zseg).map((s) => {
    const f = [];
    for (let i = 1; i <= FIELDS; i++) f.push(s.getField(i));
    return f;
  });
  return { parser: 'simple-hl7', segments, msh10: msg.header.getField(8), nte, z };
}

for (const fn of [withNodeHL7Client, withSimpleHL7]) {
  let line;
  try {
    line = fn();
  } catch (e) {
    line = { parser: fn.name, error: String(e && e.stack || e) };
  }
  process.stdout.write(JSON.stringify(line) + '\n');
}
