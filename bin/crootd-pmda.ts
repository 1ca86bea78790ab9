/**
 * `crootd --pmda`: crootd as pmcd's root agent (pmcd.conf's `root` line,
 * `root 1 pipe binary /PATH/bin/crootd --pmda`). pmcd starts crootd itself
 * with a pipe on its stdin/stdout and waits 3 s (pmcd -q) for the agent's
 * credentials; right after them it starts its next agent through the root
 * socket. So crootd.ts calls this once the socket listens and before the
 * engines start. When pmcd closes the pipe, `closed` settles and crootd
 * stops as on SIGTERM.
 *
 * stdout carries PDUs only: anything else that would write there (console
 * output, a library's print) goes to stderr, crootd's log.
 */
import { Console } from 'node:console';
import { Writable, type Readable } from 'node:stream';
import type { EngineRegistry } from '../core/registry/engine-registry.js';
import type { Logger } from '../core/logging/logger.js';
import type { ContainerSnapshotSource } from '../pmda/container-source.js';
import { RegistrySnapshotSource } from '../pmda/registry-snapshot-source.js';
import { rootPmda } from '../pmda/root-pmda.js';

export interface RootPmdaOptions {
  readonly registry: EngineRegistry;
  readonly logger: Logger;
  /** The containers the metrics show; default: an adapter over `registry`. */
  readonly source?: ContainerSnapshotSource;
  /** Default: process.stdin / process.stdout. */
  readonly input?: Readable;
  readonly output?: Writable;
}

export interface RootPmdaHandle {
  /** Settles (with why) when pmcd closes the pipe or the stream breaks. */
  readonly closed: Promise<string>;
  /** Stops answering pmcd. */
  stop(): void;
}

/** Keeps fd 1 for PDUs: returns a stream writing to the real stdout, and sends every other stdout write to stderr. */
function takeStdout(): Writable {
  const stdout = process.stdout;
  const write = stdout.write.bind(stdout) as (chunk: Buffer, cb: (err?: Error | null) => void) => boolean;
  const stderrWrite = process.stderr.write.bind(process.stderr);
  stdout.write = ((chunk: unknown, ...rest: unknown[]) => (stderrWrite as (...a: unknown[]) => boolean)(chunk, ...rest)) as typeof stdout.write;
  globalThis.console = new Console({ stdout: process.stderr, stderr: process.stderr });
  const pdus = new Writable({
    write(chunk: Buffer, _encoding, callback) {
      write(chunk, (err) => callback(err ?? null));
    },
  });
  stdout.on('error', (err) => pdus.destroy(err));
  return pdus;
}

export function startRootPmda(options: RootPmdaOptions): RootPmdaHandle {
  const { logger } = options;
  const pmda = rootPmda({ source: options.source ?? new RegistrySnapshotSource(options.registry) });
  const session = pmda.run({ input: options.input ?? process.stdin, output: options.output ?? takeStdout(), logger });
  logger.info('serving pmcd as its root PMDA', { domain: pmda.domain, metrics: pmda.metricList.length });
  return { closed: session.closed, stop: () => session.close() };
}
