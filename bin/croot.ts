/**
 * croot: ask a root server (croot's or PCP's) or resolve in-process.
 *   croot hostname|pid|cgroup NAME [--socket PATH]
 *   croot show NAME [--socket PATH]   all of the above, with engine, id and names
 *   croot list            containers of every engine, with engine health
 *   croot engines         engine health only
 * On failure: the error text on stderr, exit status 1.
 */
import 'reflect-metadata';
import { Command } from 'commander';
import { loadCrootConfigFile } from '../core/config-file.js';
import { createCrootContainer } from '../core/create-container.js';
import { EngineRegistry } from '../core/engine-registry.js';
import { CrootError, ErrorCodes, statusOf } from '../core/errors.js';
import {
  ContainerCGroupResolver,
  ContainerHostnameResolver,
  ContainerProcessIdResolver,
} from '../core/resolvers.js';
import { RootClient } from '../core/root-client.js';
import { errorText } from '../core/status-text.js';
import { defaultModules } from './default-modules.js';
import { crootVersion } from './version.js';

type Question = 'hostname' | 'pid' | 'cgroup';

interface GlobalOptions {
  socket?: string;
  config?: string;
  json?: boolean;
}

async function withLocal<T>(config: string | undefined, body: (c: ReturnType<typeof createCrootContainer>) => Promise<T>): Promise<T> {
  const fileConfig = await loadCrootConfigFile(config);
  const { modules, problems } = defaultModules({ disabledEngines: fileConfig.disabledEngines ?? [] });
  for (const p of problems) process.stderr.write(`croot: warning: ${p}\n`);
  const container = createCrootContainer({ config: fileConfig, modules });
  const registry = container.get<EngineRegistry>(EngineRegistry);
  await registry.start();
  await registry.ready();
  try {
    return await body(container);
  } finally {
    await registry.stop();
  }
}

async function ask(question: Question, name: string, opts: GlobalOptions): Promise<string> {
  if (opts.socket !== undefined) {
    const client = await RootClient.connect(opts.socket);
    try {
      if (question === 'hostname') return await client.hostname(name);
      if (question === 'pid') return String(await client.processId(name));
      return await client.cgroupName(name);
    } finally {
      client.close();
    }
  }
  return withLocal(opts.config, async (container) => {
    if (question === 'hostname') {
      return (await container.get<ContainerHostnameResolver>(ContainerHostnameResolver).resolveHostname(name)).value;
    }
    if (question === 'pid') {
      return String(await container.get<ContainerProcessIdResolver>(ContainerProcessIdResolver).resolveProcessId(name));
    }
    return (await container.get<ContainerCGroupResolver>(ContainerCGroupResolver).resolveCGroupName(name)).value;
  });
}

/** One answer of `croot show`: the value, or why there is none. */
type Answer<T> = { readonly value: T } | { readonly error: string; readonly status: number };

async function answer<T>(get: () => T | Promise<T>): Promise<Answer<T>> {
  try {
    return { value: await get() };
  } catch (err) {
    const status = statusOf(err);
    return { error: err instanceof Error ? err.message : String(err), status };
  }
}

interface Shown {
  readonly name: string;
  readonly engine?: string;
  readonly id?: string;
  readonly names?: readonly string[];
  readonly state?: string;
  readonly pid: Answer<number>;
  readonly hostname: Answer<string>;
  readonly cgroup: Answer<string>;
}

/**
 * Everything croot knows of one container. In-process: the engine's record
 * (engine, id, names, state) and the three answers; through a server, only
 * what the protocol carries: the three answers. Fails as the other commands
 * do when NAME designates no container (or several).
 */
async function show(name: string, opts: GlobalOptions): Promise<string> {
  let shown: Shown;
  if (opts.socket !== undefined) {
    const client = await RootClient.connect(opts.socket);
    try {
      const pid = await answer(() => client.processId(name));
      if ('status' in pid && (pid.status === ErrorCodes.ERR_NO_CONTAINER || pid.status === ErrorCodes.ERR_AMBIGUOUS_NAME)) {
        throw new CrootError(pid.status === ErrorCodes.ERR_NO_CONTAINER ? 'ERR_NO_CONTAINER' : 'ERR_AMBIGUOUS_NAME', `${name}: ${errorText(pid.status)}`);
      }
      shown = { name, pid, hostname: await answer(() => client.hostname(name)), cgroup: await answer(() => client.cgroupName(name)) };
    } finally {
      client.close();
    }
  } else {
    shown = await withLocal(opts.config, async (container) => {
      const record = await container.get<EngineRegistry>(EngineRegistry).lookup(name);
      // Ask by engine and id, so each answer is about this very container.
      const ref = `${record.engine}:${record.id}`;
      return {
        name,
        engine: record.engine,
        id: record.id,
        names: record.names,
        state: record.paused ? 'paused' : record.running ? 'running' : 'stopped',
        pid: await answer(() => container.get<ContainerProcessIdResolver>(ContainerProcessIdResolver).resolveProcessId(ref)),
        hostname: await answer(async () => (await container.get<ContainerHostnameResolver>(ContainerHostnameResolver).resolveHostname(ref)).value),
        cgroup: await answer(async () => (await container.get<ContainerCGroupResolver>(ContainerCGroupResolver).resolveCGroupName(ref)).value),
      };
    });
  }
  if (opts.json) return JSON.stringify(shown, null, 2);
  const text = (a: Answer<string | number>): string => ('value' in a ? String(a.value) : `(${errorText(a.status)}: ${a.error})`);
  const rows: Array<[string, string | undefined]> = [
    ['engine', shown.engine],
    ['id', shown.id],
    ['names', shown.names?.join(', ')],
    ['state', shown.state],
    ['pid', text(shown.pid)],
    ['hostname', text(shown.hostname)],
    ['cgroup', text(shown.cgroup)],
  ];
  return rows
    .filter((row): row is [string, string] => row[1] !== undefined)
    .map(([k, v]) => `${k.padEnd(9)} ${v}`)
    .join('\n');
}

async function list(opts: GlobalOptions, containersToo: boolean): Promise<string> {
  return withLocal(opts.config, async (container) => {
    const registry = container.get<EngineRegistry>(EngineRegistry);
    const records = containersToo ? await registry.containers() : [];
    const statuses = registry.statuses();
    if (opts.json) return JSON.stringify({ engines: statuses, containers: records }, null, 2);
    const lines: string[] = [];
    for (const s of statuses) lines.push(`engine ${s.engine.padEnd(10)} ${s.available ? 'up  ' : 'down'}  ${s.reason}`);
    if (containersToo) {
      lines.push('');
      lines.push(`${'ENGINE'.padEnd(10)} ${'ID'.padEnd(14)} ${'STATE'.padEnd(8)} ${'PID'.padStart(8)}  NAMES`);
      for (const r of records) {
        const state = r.paused ? 'paused' : r.running ? 'running' : 'stopped';
        lines.push(`${r.engine.padEnd(10)} ${r.id.slice(0, 12).padEnd(14)} ${state.padEnd(8)} ${String(r.running ? r.pid ?? '' : '').padStart(8)}  ${r.names.join(',')}`);
      }
    }
    return lines.join('\n');
  });
}

async function main(argv: readonly string[]): Promise<void> {
  const program = new Command('croot')
    .description('Resolve a container to its hostname, init PID or cgroup, in-process or through a root server')
    .version(crootVersion(), '-V, --version', "print croot's version")
    .option('-s, --socket <path>', "ask this root server (croot's crootd or PCP's pmdaroot) instead of resolving in-process")
    .option('-c, --config <file>', 'config file for in-process resolution (default $CROOT_CONFIG or /etc/croot/croot.json)')
    .option('--json', 'machine-readable output (show, list, engines)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) });
  for (const [cmd, q, what] of [
    ['hostname', 'hostname', "the container's hostname (from its UTS namespace)"],
    ['pid', 'pid', "the container's init PID, as the host sees it"],
    ['cgroup', 'cgroup', "the container's cgroup, without the leading /"],
  ] as const) {
    program
      .command(`${cmd} <name>`)
      .description(`${what}; NAME is an id, a name, a unique prefix of a hex id, or ENGINE:NAME`)
      .action(async (name: string) => {
        process.stdout.write(`${await ask(q, name, program.opts<GlobalOptions>())}\n`);
      });
  }
  program
    .command('show <name>')
    .description('engine, id, names, state, PID, hostname and cgroup of one container (through --socket: the last three)')
    .action(async (name: string) => {
      process.stdout.write(`${await show(name, program.opts<GlobalOptions>())}\n`);
    });
  program.command('list').description('every container of every engine, and engine health').action(async () => {
    process.stdout.write(`${await list(program.opts<GlobalOptions>(), true)}\n`);
  });
  program.command('engines').description('engine health: which engines are up and why the others are not').action(async () => {
    process.stdout.write(`${await list(program.opts<GlobalOptions>(), false)}\n`);
  });
  await program.parseAsync(argv, { from: 'user' });
}

main(process.argv.slice(2)).then(
  () => process.exit(0),
  (err: unknown) => {
    const e = err as { code?: string; exitCode?: number };
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) process.exit(e.exitCode ?? 1);
    const status = statusOf(err);
    const detail = err instanceof CrootError ? err.message : (err as Error).message ?? String(err);
    const text = errorText(status);
    process.stderr.write(`croot: ${detail.includes(text) ? detail : `${detail} (${status}: ${text})`}\n`);
    process.exit(1);
  },
);
