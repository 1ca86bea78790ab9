/**
 * croot: ask a root server (croot's crootd or PCP's pmdaroot) or resolve in-process.
 *   croot hostname|pid|cgroup NAME       one answer
 *   croot show NAME                      everything croot knows of one container
 *   croot list [-q] [--no-trunc] [--engine ID] [--state STATE]
 *   croot engines [--engine ID]          engine health
 *   croot status                         a running crootd (uptime, engines, connections, requests)
 *   croot events [--engine ID] [--state STATE] [--count N] [--until-exit NAME]
 *   croot completion bash|zsh
 * Global: --socket PATH (ask that server), --config FILE, --format json|table (--json).
 * Exit statuses: bin/exit-codes.ts (listed in --help and croot(1)).
 *
 * Only commander is loaded up front: each command requires what it needs
 * when it runs (no engine for --version, --help or --socket; in-process,
 * only the engines this host has sources for).
 */
import { Command, InvalidArgumentError, Option } from 'commander';
import { CrootError } from '../core/errors/croot-error.js';
import { ExitCode, exitCodeHelp, exitCodeOf, hintFor } from './exit-codes.js';
import { crootVersion } from './version.js';

export interface GlobalOptions {
  socket?: string;
  config?: string;
  format?: 'json' | 'table';
  json?: boolean;
}

export interface ListOptions {
  quiet?: boolean;
  trunc: boolean;
  engine: string[];
  state: string[];
}

export interface EventOptions {
  trunc: boolean;
  engine: string[];
  state: string[];
  count?: number;
  untilExit?: string;
}

type Commands = typeof import('./croot-commands.js');

function commands(): Commands {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return require('./croot-commands.js') as Commands;
}

const collect = (value: string, previous: string[]): string[] => [...previous, ...value.split(',').map((v) => v.trim()).filter(Boolean)];

const STATES = ['running', 'paused', 'restarting', 'stopped'];

function collectStates(value: string, previous: string[]): string[] {
  const states = collect(value, []);
  const wrong = states.find((s) => !STATES.includes(s));
  if (wrong !== undefined) throw new InvalidArgumentError(`Allowed choices are ${STATES.join(', ')}.`);
  return [...previous, ...states];
}

function parseCount(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('A count of events (0 or more).');
  return Number(value);
}

function program(): Command {
  const croot = new Command('croot')
    .description('Resolve a container to its hostname, init PID or cgroup, in-process or through a root server')
    .version(crootVersion(), '-V, --version', "print croot's version")
    .option('-s, --socket <path>', "ask this root server (croot's crootd or PCP's pmdaroot) instead of resolving in-process")
    .option('-c, --config <file>', 'config file for in-process resolution (default $CROOT_CONFIG, else /etc/croot/croot.json)')
    .addOption(new Option('--format <format>', 'output format').choices(['table', 'json']))
    .option('--json', 'the same as --format json')
    .addHelpText('after', `\nNAME is an id, a name, a unique prefix of a digest id, or ENGINE:NAME (docker:web).${exitCodeHelp()}`)
    .showHelpAfterError('(croot --help lists the commands and options)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  const global = (): GlobalOptions => croot.opts<GlobalOptions>();

  for (const [cmd, what] of [
    ['hostname', "the container's hostname (from its UTS namespace)"],
    ['pid', "the container's init PID, as the host sees it"],
    ['cgroup', "the container's cgroup, without the leading /"],
  ] as const) {
    croot
      .command(`${cmd} <name>`)
      .description(`${what}`)
      .action((name: string) => commands().question(cmd, name, global()));
  }
  croot
    .command('show <name>')
    .description('engine, id, names, state, PID, hostname and cgroup of one container')
    .action((name: string) => commands().show(name, global()));
  croot
    .command('list')
    .alias('ps')
    .description('every container of every engine, sorted by engine and name')
    .option('-q, --quiet', 'print only the ids')
    .option('--no-trunc', 'print whole ids (tables cut digest ids to 12 characters)')
    .option('--engine <id>', 'only this engine (repeatable, or comma-separated)', collect, [] as string[])
    .option('--state <state>', `only containers in this state: ${STATES.join(', ')} (repeatable, or comma-separated)`, collectStates, [] as string[])
    .action((opts: ListOptions) => commands().list(global(), opts));
  croot
    .command('engines')
    .description('engine health: which engines are up, and why the others are not')
    .option('--engine <id>', 'only this engine (repeatable, or comma-separated)', collect, [] as string[])
    .action((opts: { engine: string[] }) => commands().engines(global(), opts.engine));
  croot
    .command('status')
    .description('a running crootd: version, uptime, engines, connections, requests (--socket, default the PCP root socket)')
    .action(() => commands().status(global()));
  croot
    .command('events')
    .description('stream changes as they happen, one line each: containers added, updated, exited, removed; engine health')
    .option('--no-trunc', 'print whole ids (lines cut digest ids to 12 characters)')
    .option('--engine <id>', 'only this engine (repeatable, or comma-separated)', collect, [] as string[])
    .option('--state <state>', `only containers in this state now: ${STATES.join(', ')} (repeatable, or comma-separated)`, collectStates, [] as string[])
    .option('--count <n>', 'exit after N events', parseCount)
    .option('--until-exit <name>', "exit once NAME's init process has ended, or it is removed (at once when it is not running)")
    .action((opts: EventOptions) => commands().events(global(), opts));
  croot
    .command('completion <shell>')
    .description('print a completion script for bash or zsh: eval "$(croot completion bash)"')
    .action((shell: string) => commands().completion(shell));
  return croot;
}

async function main(argv: readonly string[]): Promise<number> {
  const croot = program();
  try {
    await croot.parseAsync(argv, { from: 'user' });
    return process.exitCode === undefined ? ExitCode.OK : Number(process.exitCode);
  } catch (err) {
    const code = exitCodeOf(err);
    const e = err as { code?: unknown };
    // commander has printed its own message (and the help, for --help/--version).
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) return code;
    const socket = croot.opts<GlobalOptions>().socket;
    process.stderr.write(`croot: ${describe(err)}\n`);
    const hint = hintFor(err, { socket, uid: process.getuid?.() ?? -1 });
    if (hint !== undefined) process.stderr.write(`croot: hint: ${hint}\n`);
    return code;
  }
}

/** `MESSAGE (STATUS: TEXT)`, PCP's text for the status, once. */
function describe(err: unknown): string {
  if (!CrootError.is(err)) return err instanceof Error ? err.message : String(err);
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const { errorText } = require('../core/protocol/error-text.js') as typeof import('../core/protocol/error-text.js');
  const text = errorText(err.status);
  // A server's status arrives as `WHAT: TEXT (STATUS)[ more]` (core/client/root-channel.ts): said the same way as the rest.
  const remote = err.message.split(`: ${text} (${err.status})`);
  if (remote.length === 2) return `${remote[0]}${remote[1]} (${err.status}: ${text})`;
  return err.message.includes(text) ? err.message : `${err.message} (${err.status}: ${text})`;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`croot: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(ExitCode.FAILURE);
  },
);
