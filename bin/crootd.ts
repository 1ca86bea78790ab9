/**
 * crootd: croot's root server, a drop-in for PCP's pmdaroot.
 *   crootd [--socket PATH] [--config FILE] [--allow-uid N]... [--allow-user NAME]...
 *          [--log-level debug|info|warn|error] [--log-file FILE] [--pidfile FILE]
 *   crootd --pmda [options]          as pmcd's root agent (pmcd.conf's root line; bin/crootd-pmda.ts)
 *   crootd install-pmcd | uninstall-pmcd [options]   (bin/crootd-install-pmcd.ts)
 * Runs in the foreground, logs to stderr (or --log-file; repeated lines are
 * counted and summarised, so the log stays bounded), exits cleanly on
 * SIGTERM/SIGINT (with --pmda also when pmcd closes the pipe) and removes its
 * socket. SIGHUP reopens the log file (for
 * logrotate) and re-reads the config file: the declared containers and who
 * may connect take effect at once; a changed socket or set of engines is
 * reported as needing a restart.
 */
import './inversify-bundle.js';
import 'reflect-metadata';
import { closeSync, openSync, readFileSync, unlinkSync, writeFileSync, writeSync } from 'node:fs';
import { Command, Option } from 'commander';
import { defaultConfig, defaultSocketPath, type CrootConfig } from '../core/config/croot-config.js';
import { loadCrootConfigFile, resolveUserUid } from '../core/config/config-file.js';
import { createCrootContainer } from '../core/create-container.js';
import { EngineRegistry } from '../core/registry/engine-registry.js';
import { CrootError } from '../core/errors/croot-error.js';
import { NamespaceHostnameReader } from '../core/host/host-services.js';
import { Logger, StreamLogger, type LogLevel } from '../core/logging/logger.js';
import { ProcessManagerOptions } from '../core/process/process-manager.js';
import { ProcessService } from '../core/process/process-service.js';
import { RateLimitedLogger } from '../core/logging/rate-limited-logger.js';
import { RootServer, removeStaleSocket } from '../core/server/root-server.js';
import { serverModule } from '../core/server/server-module.js';
import { raiseFdLimit, reduceHeap, releaseFreeMemory } from '../native/index.js';
import type { UserDatabase } from '../core/host/user-database.js';
import { defaultModules, systemUsers } from './default-modules.js';
import type { startRootPmda as StartRootPmda } from './crootd-pmda.js';
import { crootVersion } from './version.js';

interface Options {
  socket?: string;
  config?: string;
  allowUid: number[];
  allowUser: string[];
  logLevel: LogLevel;
  socketMode?: number;
  logFile?: string;
  pidfile?: string;
  pcpUser: boolean;
  pmda?: boolean;
}

async function main(argv: readonly string[]): Promise<number> {
  // The PMDA and pmcd.conf code is required only in the modes that use it: every other start skips loading it.
  if (argv[0] === 'install-pmcd' || argv[0] === 'uninstall-pmcd') {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    return (require('./crootd-install-pmcd.js') as typeof import('./crootd-install-pmcd.js')).pmcdInstallCommand(argv);
  }
  const program = new Command('crootd')
    .description("croot's root server: answers PCP's root-socket protocol (pmdaroot's) on a unix socket")
    .version(crootVersion(), '-V, --version', "print crootd's version")
    .option('-s, --socket <path>', `socket to listen on (default ${defaultSocketPath()})`)
    .option('-c, --config <file>', 'config file (default $CROOT_CONFIG, else /etc/croot/croot.json if present)')
    .option('--allow-uid <uid>', 'also accept clients with this uid (repeatable)', (v: string, acc: number[]) => [...acc, parseUid(v)], [] as number[])
    .option('--allow-user <name>', 'also accept clients of this user (repeatable)', (v: string, acc: string[]) => [...acc, v], [] as string[])
    .option('--no-pcp-user', 'do not accept the pcp user by default')
    .option('--socket-mode <octal>', 'permission bits of the socket (default 0755, as pmdaroot; other allowed uids need e.g. 0777)', parseMode)
    .addOption(new Option('--log-level <level>', 'least severe level logged').choices(['debug', 'info', 'warn', 'error']).default('info'))
    .option('--log-file <file>', 'append the log to this file instead of stderr')
    .option('--pidfile <file>', 'write the process id here once listening (for kill -HUP); removed at exit')
    .option('--pmda', "also be pmcd's root PMDA (domain 1) on stdin/stdout, as pmcd.conf's root line starts it")
    .exitOverride();
  program.parse(argv, { from: 'user' });
  const opts = program.opts<Options>();

  // One fd for the log, shared by crootd's lines and its children's stderr.
  const log = new LogSink(opts.logFile);
  // Bounded whatever clients send: each kind of line at most 10 a minute, then counted and summarised.
  const logger = new RateLimitedLogger(new StreamLogger(opts.logLevel, (line) => log.write(line)), { level: opts.logLevel });

  const startedAt = Date.now();
  logger.info('crootd starting', { version: crootVersion(), pid: process.pid });

  // NSS through the native module (getent without it): allowUsers, --allow-user, the pcp user.
  const users = systemUsers();
  const fileConfig = await loadCrootConfigFile(opts.config, process.env, { users });
  const { modules, problems, nativeProblem } = await defaultModules({
    disabledEngines: fileConfig.disabledEngines ?? [],
    plugins: fileConfig.plugins ?? [],
    processServices: true,
  });
  if (nativeProblem !== undefined) {
    // Without it every client would be refused (no SO_PEERCRED): better not to start at all.
    throw new CrootError(
      'ERR_NATIVE_LOAD',
      `${nativeProblem}\ncrootd cannot serve without it (it checks each client's uid, enters namespaces, passes fds). ` +
        'Build it with "npm rebuild croot" where croot is installed ("npm rebuild -g croot" for a global install); ' +
        'it needs a C++ compiler, make and python3.',
    );
  }
  // One pidfd per running container: take every fd the hard limit allows.
  const fdLimit = raiseFdLimit();
  logger.debug('fd limit', { soft: fdLimit.soft, hard: fdLimit.hard });
  const allowUids = await allowedUids(fileConfig, opts, logger, users);
  const socketPath = opts.socket ?? fileConfig.socketPath ?? defaultSocketPath();
  // Before any engine starts: refuse a socket another server holds.
  await removeStaleSocket(socketPath);
  for (const problem of problems) logger.error(problem);

  const container = createCrootContainer({
    config: {
      ...fileConfig,
      socketPath,
      allowUids,
      ...(opts.socketMode !== undefined ? { socketMode: opts.socketMode } : {}),
    },
    // The server, with croot's protocol extension (croot list/show/engines/status/events --socket).
    modules: [...modules, serverModule({ version: crootVersion(), startedAt })],
  });
  container.bind<Logger>(Logger).toConstantValue(logger);
  container.bind<ProcessManagerOptions>(ProcessManagerOptions).toConstantValue({ childStderrFd: () => log.fd });

  const registry = container.get<EngineRegistry>(EngineRegistry);
  const server = container.get(RootServer);

  // Signals are handled from here on: a SIGHUP or SIGTERM that comes while crootd starts up must
  // not take the default action (death) once the socket is there for clients to see.
  let pmda: ReturnType<typeof StartRootPmda> | undefined;
  let resolveExit!: (code: number) => void;
  const exited = new Promise<number>((resolve) => (resolveExit = resolve));
  let stopping = false;
  const stop = (signal?: NodeJS.Signals): void => {
    if (stopping) return;
    stopping = true;
    logger.info('stopping', signal !== undefined ? { signal } : { reason: 'pmcd closed the PMDA pipe' });
    void (async () => {
      pmda?.stop();
      await server.close();
      if (container.isBound(ProcessService)) await container.get<ProcessService>(ProcessService).shutdown();
      await registry.stop();
      logger.flush();
      if (opts.pidfile !== undefined) removePidfile(opts.pidfile);
      resolveExit(0);
    })();
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
  let reloading = Promise.resolve();
  process.on('SIGHUP', () => {
    // One reload at a time, in the order the signals came.
    reloading = reloading
      .then(() => reload({ opts, log, logger, registry, server, users, started: { fileConfig, socketPath } }))
      .catch((err: unknown) => logger.error('SIGHUP: reload failed', { error: (err as Error).message }));
  });

  // Accept at once; a request that needs an engine still loading waits for that load only.
  // The namespace thread (and its fd on crootd's own UTS namespace) starts with crootd, not with the first HOSTNAME.
  await container.get<NamespaceHostnameReader>(NamespaceHostnameReader).readHostname(process.pid);
  await server.listen(socketPath);
  // --pmda: greet pmcd once the socket listens, before the engines load (pmcd waits only 3 s for its root agent's first PDU).
  if (opts.pmda === true) {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { startRootPmda } = require('./crootd-pmda.js') as typeof import('./crootd-pmda.js');
    pmda = startRootPmda({ registry, logger });
  }
  void pmda?.closed.then(() => stop());
  await registry.start();
  void registry.ready().then(() => {
    const anchor = registry.anchorMode();
    if (anchor.kind === 'proc') logger.warn('init processes checked through /proc, not held by pidfds', { reason: anchor.reason });
    for (const status of registry.statuses()) {
      logger[status.available ? 'info' : 'warn'](`engine ${status.engine}: ${status.available ? 'available' : 'unavailable'}`, {
        reason: status.reason,
      });
    }
  });
  // Start-up's garbage collected and its free memory given back at once, so crootd's memory once started is what it keeps.
  void registry.anchored().then(() => {
    if (stopping) return;
    const before = process.memoryUsage.rss();
    const compacted = reduceHeap();
    const trimmed = releaseFreeMemory();
    const mb = (bytes: number): number => Math.round(bytes / 2 ** 20);
    logger.info('start-up done', { containers: registry.containers().length, compacted, trimmed, rssMbBefore: mb(before), rssMb: mb(process.memoryUsage.rss()) });
  });
  if (opts.pidfile !== undefined) writeFileSync(opts.pidfile, `${process.pid}\n`, { mode: 0o644 });
  return exited;
}

/**
 * Where crootd's lines go: stderr, or the --log-file, which SIGHUP reopens
 * at its path so logrotate can move it away. Children started later get the
 * new file as their stderr; those started before keep their own copy of the
 * old one.
 */
class LogSink {
  fd: number;

  constructor(readonly path: string | undefined) {
    this.fd = path !== undefined ? openSync(path, 'a', 0o640) : 2;
  }

  write(line: string): void {
    try {
      writeSync(this.fd, line);
    } catch {
      // a log that cannot be written must not stop the server
    }
  }

  /** Opens the file at its path again and closes the old fd; throws (keeping the old fd) when it cannot. */
  reopen(): void {
    if (this.path === undefined) return;
    const fd = openSync(this.path, 'a', 0o640);
    const old = this.fd;
    this.fd = fd;
    closeSync(old);
  }
}

/** Who may connect: root, the config file's uids and users, --allow-uid/--allow-user, and the pcp user unless --no-pcp-user. */
async function allowedUids(fileConfig: Partial<CrootConfig>, opts: Options, logger: Logger, users: UserDatabase): Promise<number[]> {
  const uids = new Set<number>([0, ...(fileConfig.allowUids ?? [])]);
  for (const uid of opts.allowUid) uids.add(uid);
  for (const user of opts.allowUser) {
    const uid = await resolveUserUid(user, users);
    if (uid === undefined) throw new CrootError('ERR_CONFIG', `--allow-user ${user}: no such user`);
    uids.add(uid);
  }
  if (opts.pcpUser) {
    const uid = await resolveUserUid('pcp', users);
    if (uid === undefined) logger.debug('no pcp user on this host');
    else uids.add(uid);
  }
  return [...uids];
}

interface ReloadContext {
  readonly opts: Options;
  readonly log: LogSink;
  readonly logger: Logger;
  readonly registry: EngineRegistry;
  readonly server: RootServer;
  readonly users: UserDatabase;
  /** What crootd started with: settings that only a restart changes. */
  readonly started: { readonly fileConfig: Partial<CrootConfig>; readonly socketPath: string };
}

/**
 * SIGHUP: reopens the log file, then re-reads the config file. A file that
 * cannot be read or is invalid changes nothing. Declared containers and who
 * may connect take effect at once (connections of a uid no longer allowed
 * are closed); a changed socket or set of disabled engines is logged as
 * waiting for a restart.
 */
async function reload(ctx: ReloadContext): Promise<void> {
  const { opts, log, logger, registry, server, users, started } = ctx;
  try {
    log.reopen();
  } catch (err) {
    logger.error('SIGHUP: cannot reopen the log file; still writing to the old one', { file: log.path, error: (err as Error).message });
  }
  let fileConfig: Partial<CrootConfig>;
  let uids: number[];
  try {
    fileConfig = await loadCrootConfigFile(opts.config, process.env, { users });
    uids = await allowedUids(fileConfig, opts, logger, users);
  } catch (err) {
    logger.error('SIGHUP: config not reloaded; keeping the previous one', { error: (err as Error).message });
    return;
  }

  const containers = fileConfig.staticContainers ?? [];
  await registry.reconfigure(defaultConfig({ ...fileConfig, socketPath: started.socketPath, allowUids: uids }));
  logger.info('SIGHUP: config re-read', { containers: containers.map((c) => c.name).join(',') || '(none)' });

  const before = server.allowedUids;
  if (!sameMembers(before, uids)) {
    const closed = server.setAllowedUids(uids);
    logger.info('SIGHUP: allowed uids changed', { allowUids: uids.join(','), was: before.join(','), closed });
  }

  const socketNow = opts.socket ?? fileConfig.socketPath ?? defaultSocketPath();
  if (socketNow !== started.socketPath) {
    logger.warn('SIGHUP: the socket changed in the config; crootd keeps serving the old one until it restarts', {
      socket: started.socketPath,
      configured: socketNow,
    });
  }
  if (!sameMembers(started.fileConfig.disabledEngines ?? [], fileConfig.disabledEngines ?? [])) {
    logger.warn('SIGHUP: disabledEngines changed in the config; engines change only when crootd restarts', {
      disabledEngines: (fileConfig.disabledEngines ?? []).join(',') || '(none)',
    });
  }
}

/** Removes the pidfile if it still holds this process's id. */
function removePidfile(path: string): void {
  try {
    if (readFileSync(path, 'utf8').trim() === String(process.pid)) unlinkSync(path);
  } catch {
    // already gone
  }
}

function sameMembers<T>(a: readonly T[], b: readonly T[]): boolean {
  const set = new Set(a);
  return set.size === new Set(b).size && b.every((x) => set.has(x));
}

function parseMode(value: string): number {
  if (!/^0?[0-7]{3}$/.test(value)) throw new CrootError('ERR_CONFIG', `--socket-mode wants octal permission bits like 0755, got "${value}"`);
  return parseInt(value, 8);
}

function parseUid(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new CrootError('ERR_CONFIG', `--allow-uid wants a number, got "${value}"`);
  return n;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    const e = err as { code?: string; exitCode?: number; message?: string };
    if (typeof e.code === 'string' && e.code.startsWith('commander.')) process.exit(e.exitCode ?? 2);
    process.stderr.write(`crootd: ${e.message ?? String(err)}\n`);
    process.exit(1);
  },
);
