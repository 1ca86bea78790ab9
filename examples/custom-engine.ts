/**
 * A third-party engine in a few lines: containers listed in a JSON file that
 * some other tool keeps up to date. Run:
 *   node dist/examples/custom-engine.js FILE NAME
 * where FILE holds [{"id": "...", "name": "...", "pid": 1234}, ...].
 */
import 'reflect-metadata';
import { readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { ContainerModule, injectable } from 'inversify';
import {
  ContainerProcessIdResolver,
  EngineContribution,
  EngineRegistry,
  NodeDirectoryWatcher,
  createCrootContainer,
  type ContainerRecord,
  type ContainerSink,
} from '../core/index.js';

/** Pushes the file's containers when it starts, and again each time the file is written. */
@injectable()
class JsonFileEngine implements EngineContribution {
  readonly id = 'jsonfile';
  private unwatch: (() => void) | undefined;

  constructor(private readonly file: string) {}

  start(sink: ContainerSink): void {
    this.unwatch = new NodeDirectoryWatcher().watch(dirname(this.file), (event) => {
      if (event.name === basename(this.file) || event.kind === 'overflow') this.read(sink);
    });
    this.read(sink);
  }

  async stop(): Promise<void> {
    this.unwatch?.();
  }

  private read(sink: ContainerSink): void {
    try {
      const raw = JSON.parse(readFileSync(this.file, 'utf8')) as Array<{ id: string; name: string; pid: number }>;
      const list: ContainerRecord[] = raw.map((c) => ({ engine: this.id, id: c.id, names: [c.name], running: c.pid > 0, pid: c.pid, source: this.file }));
      sink.replaceAll(list);
      sink.health(true, `${list.length} containers in ${this.file}`);
    } catch (err) {
      sink.replaceAll([]);
      sink.health(false, (err as Error).message);
    }
  }
}

/** What a plugin package exports (its package.json: "croot": { "module": "./dist/this-file.js" }). */
export function jsonFileEngineModule(file: string): ContainerModule {
  return new ContainerModule(({ bind }) => {
    bind(EngineContribution).toConstantValue(new JsonFileEngine(file));
  });
}

async function main(): Promise<void> {
  const [file, name] = process.argv.slice(2);
  if (file === undefined || name === undefined) throw new Error('usage: custom-engine FILE NAME');
  const container = createCrootContainer({ modules: [jsonFileEngineModule(file)] });
  const registry = container.get<EngineRegistry>(EngineRegistry);
  await registry.start();
  await registry.ready();
  const pid = await container.get<ContainerProcessIdResolver>(ContainerProcessIdResolver).resolveProcessId(name);
  process.stdout.write(`${name}: pid ${pid}\n`);
  await registry.stop();
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  });
}
