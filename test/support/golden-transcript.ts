/**
 * Reads the PDU transcripts in pmda/__golden__ (written by
 * scripts/pmda-golden/tee-agent.js): one PDU per line, `> HEX` from pmcd to
 * the agent, `< HEX` from the agent to pmcd, `# TEXT` a marker the capture
 * wrote before each client call. For tests and tools, not for agents.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface TranscriptEntry {
  /** `toAgent`: pmcd -> agent; `toPmcd`: agent -> pmcd. */
  readonly direction: 'toAgent' | 'toPmcd';
  readonly bytes: Buffer;
  /** The last marker before this PDU (the client call that caused it). */
  readonly marker: string;
  /** 1-based line in the transcript file. */
  readonly line: number;
}

export const GOLDEN_DIR = join(__dirname, '..', '..', 'pmda', '__golden__');

export function readTranscript(file: string): TranscriptEntry[] {
  const out: TranscriptEntry[] = [];
  let marker = '(start)';
  readFileSync(join(GOLDEN_DIR, file), 'utf8')
    .split('\n')
    .forEach((text, i) => {
      if (text.startsWith('# ')) marker = text.slice(2);
      const m = /^([<>]) ([0-9a-f]+)$/.exec(text);
      if (m === null) return;
      out.push({ direction: m[1] === '>' ? 'toAgent' : 'toPmcd', bytes: Buffer.from(m[2] as string, 'hex'), marker, line: i + 1 });
    });
  return out;
}
