/**
 * croot's RootServer in the test process, for core's unit tests: the core
 * container with the native module (SO_PEERCRED, SCM_RIGHTS, the namespace
 * thread), the server module, optionally the process services, and a
 * fixture engine whose containers the test declares and changes. Each
 * server listens on a socket of its own in a fresh directory.
 */
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerModule, type Container } from 'inversify';
import type { CrootConfig } from '../../core/config/croot-config.js';
import { createCrootContainer } from '../../core/create-container.js';
import { Logger } from '../../core/logging/logger.js';
import { ConnectionSocketFactory } from '../../core/host/host-services.js';
import { processServiceModule } from '../../core/process/process-service-module.js';
import { ProcessService } from '../../core/process/process-service.js';
import { EngineContribution, type ContainerRecord, type ContainerSink } from '../../core/registry/engine-contribution.js';
import { EngineRegistry } from '../../core/registry/engine-registry.js';
import { ExtensionHandlerOptions } from '../../core/server/extension-handler.js';
import { RootServer, RootServerOptions } from '../../core/server/root-server.js';
import { serverModule } from '../../core/server/server-module.js';
import { nativeModule } from './native-host.js';

/** An engine driven by the test: its first list, then whatever the test pushes through `sink`. */
export class FixtureEngine implements EngineContribution {
  sink: ContainerSink | undefined;
  constructor(
    readonly id: string,
    private readonly initial: readonly ContainerRecord[],
  ) {}
  start(sink: ContainerSink): void {
    this.sink = sink;
    sink.replaceAll(this.initial);
    sink.health(true, `${this.initial.length} containers`);
  }
  async stop(): Promise<void> {}
}

/** Every line logged, as `LEVEL message`, with its fields. */
export class LinesLogger implements Logger {
  readonly lines: { line: string; fields: Record<string, unknown> | undefined }[] = [];
  debug(m: string, f?: Record<string, unknown>): void {
    this.lines.push({ line: `debug ${m}`, fields: f });
  }
  info(m: string, f?: Record<string, unknown>): void {
    this.lines.push({ line: `info ${m}`, fields: f });
  }
  warn(m: string, f?: Record<string, unknown>): void {
    this.lines.push({ line: `warn ${m}`, fields: f });
  }
  error(m: string, f?: Record<string, unknown>): void {
    this.lines.push({ line: `error ${m}`, fields: f });
  }
  has(line: string): boolean {
    return this.lines.some((l) => l.line === line);
  }
}

export interface TestServerOptions {
  readonly config?: Partial<CrootConfig>;
  readonly server?: RootServerOptions;
  readonly extension?: Omit<ExtensionHandlerOptions, 'version'>;
  readonly engines?: readonly FixtureEngine[];
  /** Bind the process services (STARTPMDA/STOPPMDA). */
  readonly processes?: boolean;
  /** Leave the native module out (no SO_PEERCRED: every connection refused). */
  readonly withoutNative?: boolean;
  /** The native module without its ConnectionSocketFactory: the server reads Node's own sockets. */
  readonly nodeSockets?: boolean;
  /** A directory made beforehand, this mode (e.g. 0o755 for other uids); else the server creates it. */
  readonly dirMode?: number;
}

export interface TestServer {
  readonly server: RootServer;
  readonly container: Container;
  readonly logger: LinesLogger;
  readonly dir: string;
  readonly socket: string;
  /** Closes the server, kills its children, removes the directory. */
  stop(): Promise<void>;
}

export async function startTestServer(options: TestServerOptions = {}): Promise<TestServer> {
  const dir = mkdtempSync(join(tmpdir(), 'croot-srv-'));
  if (options.dirMode !== undefined) chmodSync(dir, options.dirMode);
  const socketDir = options.dirMode !== undefined ? dir : join(dir, 'pmcd');
  const logger = new LinesLogger();
  const modules = [
    ...(options.withoutNative === true ? [] : [nativeModule]),
    serverModule({ version: '0.0.0-test', ...options.extension }),
    new ContainerModule(({ bind }) => {
      bind<Logger>(Logger).toConstantValue(logger);
      for (const engine of options.engines ?? []) bind(EngineContribution).toConstantValue(engine);
      if (options.server !== undefined) bind<RootServerOptions>(RootServerOptions).toConstantValue(options.server);
    }),
    ...(options.processes === true ? [processServiceModule] : []),
  ];
  const container = createCrootContainer({ config: { allowUids: [0], ...options.config }, modules });
  if (options.nodeSockets === true) await container.unbind(ConnectionSocketFactory);
  await container.get<EngineRegistry>(EngineRegistry).start();
  const server = container.get(RootServer);
  const socket = await server.listen(join(socketDir, 'root.socket'));
  return {
    server,
    container,
    logger,
    dir,
    socket,
    async stop(): Promise<void> {
      await server.close();
      if (options.processes === true) await container.get<ProcessService>(ProcessService).shutdown();
      await container.get<EngineRegistry>(EngineRegistry).stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
