#!/usr/bin/env node
// Sits between pmcd and a real PMDA and records every PDU both ways:
//   node tee-agent.js TRANSCRIPT AGENT [ARGS...]
// pmcd starts this as the agent (a pmcd.conf line); it starts AGENT with
// pipes, relays bytes unchanged, and appends one line per PDU to TRANSCRIPT:
// "> HEX" for pmcd -> agent, "< HEX" for agent -> pmcd. A PDU is logged
// before it is relayed, so a marker line written by the capture script
// after a client command returned comes after that command's PDUs.
// Plain JavaScript on purpose: pmcd runs it before anything is built.
'use strict';
const { spawn } = require('node:child_process');
const { appendFileSync } = require('node:fs');

const [transcript, agent, ...args] = process.argv.slice(2);
if (!transcript || !agent) {
  process.stderr.write('usage: tee-agent.js TRANSCRIPT AGENT [ARGS...]\n');
  process.exit(2);
}

const child = spawn(agent, args, { stdio: ['pipe', 'pipe', 'inherit'] });

/** Cuts a byte stream into PDUs by the big-endian length in each header. */
function framer(direction, sink) {
  let pending = Buffer.alloc(0);
  return (chunk) => {
    pending = Buffer.concat([pending, chunk]);
    for (;;) {
      if (pending.length < 4) break;
      const len = pending.readInt32BE(0);
      if (len < 12) {
        // Not PDU framing any more: log the rest raw and stop framing.
        appendFileSync(transcript, `${direction}! ${pending.toString('hex')}\n`);
        sink(pending);
        pending = Buffer.alloc(0);
        break;
      }
      if (pending.length < len) break;
      const pdu = pending.subarray(0, len);
      appendFileSync(transcript, `${direction} ${pdu.toString('hex')}\n`);
      sink(pdu);
      pending = pending.subarray(len);
    }
  };
}

process.stdin.on('data', framer('>', (b) => child.stdin.write(b)));
process.stdin.on('end', () => child.stdin.end());
child.stdout.on('data', framer('<', (b) => process.stdout.write(b)));
child.stdout.on('end', () => process.stdout.end());
child.stdin.on('error', () => undefined);
process.stdout.on('error', () => undefined);
child.on('exit', (code, signal) => {
  appendFileSync(transcript, `# agent exited ${code ?? signal}\n`);
  process.exit(code ?? 1);
});
process.on('SIGTERM', () => child.kill('SIGTERM'));
