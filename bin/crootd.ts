/**
 * crootd: croot's root server, a drop-in for PCP's pmdaroot.
 *   crootd [--socket PATH] [--config FILE] [--allow-uid N]... [--allow-user NAME]...
 *          [--log-level debug|info|warn|error] [--log-file FILE]
 * Runs in the foreground, logs to stderr (or --log-file), exits cleanly on
 * SIGTERM/SIGINT and removes its socket; SIGHUP re-reads the containers
 * declared in the config file.
 */
import 'reflect-metadata';
import { openSync, writeSync } from 'node:fs';
import { Command, Option } from 'commander';
import { defaultSocketPath } from '../core/config.js';
import { loadCrootConfigFile, resolveUserUid } from '../core/config-file.js';
import { createCrootContainer } from '../core/create-container.js';
import { EngineRegistry } from '../core/engine-registry.js';
import { CrootError } from '../core/errors.js';
import { Logger, StreamLogger, type LogLevel } from '../core/logger.js';
import { ProcessManagerOptions } from '../core/process-manager.js';
import { ProcessService } from '../core/process-service.js';
import { RootServer, removeStaleSocket } from '../core/root-server.js';
import { watchEngineHealth } from '../core/engine-health.js';
import { StaticEngine } from '../engines/static/index.js';
import { defaultModules } from './default-modules.js';
import { crootVersion } from './version.js';

interface Options {
  socket?: string;
  config?: string;
  allowUid: number[];
  allowUser: string[];
  logLevel: LogLevel;
  socketMode?: number;
  logFile?: string;
  pcpUser: boolean;
}

async function main(argv: readonly string[]): Promise<number> {
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
    .exitOverride();
  program.parse(argv, { from: 'user' });
  const opts = program.opts<Options>();

  // One fd for the log, shared by crootd's lines and its children's stderr.
  const logFd = opts.logFile ? openSync(opts.logFile, 'a', 0o640) : 2;
  const logger = new StreamLogger(opts.logLevel, (line) => {
    try {
      writeSync(logFd, line);
    } catch {
      // a log that cannot be written must not stop the server
    }
  });

  logger.info('crootd starting', { version: crootVersion(), pid: process.pid });

  const fileConfig = await loadCrootConfigFile(opts.config);
  const allowUids = new Set<number>([0, ...(fileConfig.allowUids ?? [])]);
  for (const uid of opts.allowUid) allowUids.add(uid);
  for (const user of opts.allowUser) {
    const uid = await resolveUserUid(user);
    if (uid === undefined) throw new CrootError('ERR_CONFIG', `--allow-user ${user}: no such user`);
    allowUids.add(uid);
  }
  if (opts.pcpUser) {
    const uid = await resolveUserUid('pcp');
    if (uid === undefined) logger.debug('no pcp user on this host');
    else allowUids.add(uid);
  }
  const socketPath = opts.socket ?? fileConfig.socketPath ?? defaultSocketPath();
  // Before any engine starts: refuse a socket another server holds.
  await removeStaleSocket(socketPath);
  const { modules, problems } = defaultModules({ disabledEngines: fileConfig.disabledEngines ?? [] });
  for (const problem of problems) logger.error(problem);

  const container = createCrootContainer({
    config: {
      ...fileConfig,
      socketPath,
      allowUids: [...allowUids],
      ...(opts.socketMode !== undefined ? { socketMode: opts.socketMode } : {}),
    },
    modules,
  });
  container.bind<Logger>(Logger).toConstantValue(logger);
  container.bind<ProcessManagerOptions>(ProcessManagerOptions).toConstantValue({ childStderrFd: logFd });
  container.bind(RootServer).toSelf().inSingletonScope();

  const registry = container.get<EngineRegistry>(EngineRegistry);
  await registry.start();
  for (const status of registry.statuses()) {
    logger[status.available ? 'info' : 'warn'](`engine ${status.engine}: ${status.available ? 'available' : 'unavailable'}`, {
      reason: status.reason,
    });
  }
  const server = container.get(RootServer);
  await server.listen(socketPath);
  const health = watchEngineHealth(registry, logger);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals): void => {
      if (stopping) return;
      stopping = true;
      logger.info('stopping', { signal });
      void (async () => {
        health.stop();
        await server.close();
        if (container.isBound(ProcessService)) await container.get<ProcessService>(ProcessService).shutdown();
        await registry.stop();
        resolve(0);
      })();
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
    process.on('SIGHUP', () => {
      void reloadContainers(opts.config, registry, logger);
    });
  });
}

/** SIGHUP: re-read the config file's declared containers (other settings need a restart). */
async function reloadContainers(configPath: string | undefined, registry: EngineRegistry, logger: Logger): Promise<void> {
  const engine = registry.get('static');
  if (!(engine instanceof StaticEngine)) {
    logger.warn('SIGHUP: the static engine is not loaded; nothing to reload');
    return;
  }
  try {
    const fileConfig = await loadCrootConfigFile(configPath);
    const containers = fileConfig.staticContainers ?? [];
    await engine.declare(containers);
    logger.info('SIGHUP: config re-read', { containers: containers.map((c) => c.name).join(',') || '(none)' });
  } catch (err) {
    logger.error('SIGHUP: config not reloaded; keeping the previous one', { error: (err as Error).message });
  }
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
