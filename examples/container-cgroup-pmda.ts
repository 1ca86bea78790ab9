/**
 * A PMDA in TypeScript with croot/pmda and croot's RootClient: for the
 * container a client names (`pminfo --container=NAME`), it asks the root
 * socket (crootd, or PCP's pmdaroot) for the container's init PID and cgroup
 * and reports how many processes the kernel lists in that cgroup, the
 * figure pmdaproc's proc.nprocs means to give (docs/pmcd-dropin.md).
 *
 * As root, from the checkout (npm run build first):
 *   node dist/examples/container-cgroup-pmda.js install   # pmcd.conf line (domain 510), PMNS, restarts pmcd
 *   pminfo --container=web1 -f crootexample
 *   node dist/examples/container-cgroup-pmda.js remove    # puts pmcd.conf and the PMNS back
 * pmcd runs it with no arguments: the agent, on its stdin/stdout.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
// Straight from the modules (not croot's index, which loads inversify and
// more): pmcd gives a new agent 3 s to send its first PDU.
import { CrootError, statusOf } from '../core/errors/croot-error.js';
import { StreamLogger } from '../core/logging/logger.js';
import { RootClient } from '../core/client/root-client.js';
import { Attribute, MetricType, Semantics, definePmda, installPmda, removePmda, type PmdaDefinition, type RequestContext } from '../pmda/index.js';

/** End-user PMDAs take domains 385..510, from the top (PCP's stdpmid). */
const DOMAIN = Number(process.env.CROOT_EXAMPLE_DOMAIN ?? 510);

interface Answer {
  readonly pid?: number;
  readonly cgroup?: string;
  readonly procs?: number;
  /** Why there is no answer (a PCP status: -12399 "Container not found", ...). */
  readonly error?: CrootError;
}

/** The cgroup's `cgroup.procs`, under whichever mount holds it (cgroup v2, or v1's memory controller). */
function cgroupProcs(cgroup: string): number | undefined {
  for (const mount of ['/sys/fs/cgroup/unified', '/sys/fs/cgroup', '/sys/fs/cgroup/memory', '/sys/fs/cgroup/pids']) {
    const file = join(mount, cgroup, 'cgroup.procs');
    if (existsSync(file)) return readFileSync(file, 'utf8').split('\n').filter((l) => l.trim() !== '').length;
  }
  return undefined;
}

type Fetcher = (inst: unknown, request: RequestContext) => number | string | undefined;

/** The PMDA: three metrics, read for the container each client names. */
function definition(fetcher: (key: 'pid' | 'cgroup' | 'procs') => Fetcher, refresh?: PmdaDefinition['refresh'], endContext?: PmdaDefinition['endContext']): PmdaDefinition {
  return {
    name: 'crootexample',
    domain: DOMAIN,
    attributes: true,
    metrics: [
      {
        name: 'crootexample.container.pid',
        cluster: 0,
        item: 0,
        type: MetricType.U32,
        semantics: Semantics.DISCRETE,
        help: { oneline: 'init PID of the container the client names', text: 'From the root socket (PROCESSID). No value without --container.' },
        fetch: fetcher('pid'),
      },
      {
        name: 'crootexample.container.cgroup',
        cluster: 0,
        item: 1,
        type: MetricType.STRING,
        semantics: Semantics.DISCRETE,
        help: { oneline: 'cgroup of the container the client names', text: 'From the root socket (CGROUPNAME), without its leading /.' },
        fetch: fetcher('cgroup'),
      },
      {
        name: 'crootexample.container.cgroup_procs',
        cluster: 0,
        item: 2,
        type: MetricType.U32,
        semantics: Semantics.INSTANT,
        help: {
          oneline: 'processes in the cgroup of the container the client names',
          text: "Lines of the container cgroup's cgroup.procs (cgroup v2, else v1's memory\ncontroller): the processes the kernel puts in that cgroup.",
        },
        fetch: fetcher('procs'),
      },
    ],
    ...(refresh !== undefined ? { refresh } : {}),
    ...(endContext !== undefined ? { endContext } : {}),
  };
}

function agent(): void {
  const logger = new StreamLogger('info', (line) => void process.stderr.write(line));
  let client: RootClient | undefined;
  /** The answer for each client context, made in `refresh` (fetch callbacks cannot wait). */
  const answers = new Map<number, Answer>();

  const ask = async (request: RequestContext): Promise<Answer> => {
    const name = request.attributes.get(Attribute.CONTAINER);
    if (name === undefined) return {};
    try {
      client ??= await RootClient.connect();
      const pid = await client.processId(name);
      // PCP's pmdaroot answers a stopped container with pid -1 (or 0) and no error.
      if (pid <= 0) return {};
      const cgroup = await client.cgroupName(name);
      const procs = cgroupProcs(cgroup);
      return { pid, cgroup, ...(procs !== undefined ? { procs } : {}) };
    } catch (err) {
      if (!CrootError.is(err)) {
        client?.close();
        client = undefined;
      }
      return { error: CrootError.is(err) ? err : new CrootError('ERR_SYSTEM', (err as Error).message, { cause: err }) };
    }
  };

  const value =
    (key: 'pid' | 'cgroup' | 'procs'): Fetcher =>
    (_inst, request) => {
      const a = answers.get(request.context);
      if (a?.error !== undefined) throw a.error;
      return a?.[key];
    };

  const pmda = definePmda(
    definition(
      value,
      async (request) => {
        answers.set(request.context, await ask(request));
      },
      (context) => answers.delete(context),
    ),
  );
  const session = pmda.run({ input: process.stdin, output: process.stdout, logger });
  void session.closed.then((why) => {
    logger.info('stopping', { why });
    client?.close();
    process.exit(0);
  });
}

function main(argv: readonly string[]): void {
  const label = 'crootexample';
  if (argv[0] === 'install') {
    // The same definition, without an agent behind it: its names, help and domain go into PCP's files.
    installPmda({
      pmda: definePmda(definition(() => () => undefined)),
      command: `${process.execPath} ${resolve(__filename)}`,
      label,
    });
  } else if (argv[0] === 'remove') removePmda({ label });
  else agent();
}

try {
  main(process.argv.slice(2));
} catch (err) {
  process.stderr.write(`container-cgroup-pmda: ${(err as Error).message} (status ${statusOf(err)})\n`);
  process.exit(1);
}
