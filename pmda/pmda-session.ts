/**
 * A PMDA's conversation with pmcd over a pair of streams (a pipe agent's
 * stdin and stdout): the credentials first, then each PDU pmcd sends
 * answered in order, until pmcd closes the pipe.
 */
import type { Readable, Writable } from 'node:stream';
import type { Logger } from '../core/logging/logger.js';
import { PduFramer } from './pdu-framer.js';

export interface PmdaStreams {
  /** pmcd -> agent (stdin for a pipe agent). */
  readonly input: Readable;
  /** agent -> pmcd (stdout for a pipe agent). */
  readonly output: Writable;
  readonly logger?: Logger;
  /** The pid to put in the credentials PDU; default process.pid. */
  readonly pid?: number;
}

export interface PmdaSession {
  /** Settles when the input ends or breaks (pmcd closed the pipe), with why. */
  readonly closed: Promise<string>;
  /** Stops reading; the streams are left to their owner. */
  close(): void;
}

/** What a session needs of its agent. */
export interface SessionAgent {
  /** The PDUs that answer one PDU from pmcd (none for some). */
  handle(pdu: Buffer): Promise<Buffer[]>;
  readonly logger: Logger;
  /** The credentials PDU, sent first. */
  readonly credentials: Buffer;
}

/** Speaks the protocol on `input`/`output`: credentials first, then one answer per request, in order. */
export function startSession(streams: PmdaStreams, agent: SessionAgent): PmdaSession {
  const { input, output } = streams;
  const framer = new PduFramer();
  let queue = Promise.resolve();
  let done = false;
  let settle: (why: string) => void = () => undefined;
  const closed = new Promise<string>((resolve) => {
    settle = (why) => {
      if (done) return;
      done = true;
      input.off('data', onData);
      input.off('end', onEnd);
      input.off('close', onEnd);
      input.off('error', onError);
      output.off('error', onError);
      resolve(why);
    };
  });
  const send = (pdus: readonly Buffer[]): void => {
    for (const pdu of pdus) if (!done) output.write(pdu);
  };
  const onData = (chunk: Buffer): void => {
    let pdus: Buffer[];
    try {
      pdus = framer.push(chunk);
    } catch (err) {
      agent.logger.error('the stream from pmcd is not PDUs any more', { error: (err as Error).message });
      settle(`protocol error: ${(err as Error).message}`);
      return;
    }
    for (const pdu of pdus) {
      queue = queue.then(async () => {
        if (!done) send(await agent.handle(pdu));
      });
    }
  };
  const onEnd = (): void => {
    void queue.then(() => settle('pmcd closed the pipe'));
  };
  const onError = (err: Error): void => settle(`stream error: ${err.message}`);
  input.on('data', onData);
  input.on('end', onEnd);
  input.on('close', onEnd);
  input.on('error', onError);
  output.on('error', onError);
  send([agent.credentials]);
  return { closed, close: () => settle('closed by the agent') };
}
