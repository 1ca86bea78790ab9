/**
 * A third-party engine in a few lines: containers listed in a JSON file that
 * some other tool keeps up to date. Run:
 *   node dist/examples/custom-engine.js FILE NAME
 * where FILE holds [{"id": "...", "name": "...", "pid": 1234}, ...].
 */
import 'reflect-metadata';
import { readFileSync, statSync } from 'node:fs';
import { ContainerModule, injectable } from 'inversify';
import {
  ContainerProcessIdResolver,
  EngineContribution,
  EngineRegistry,
  createCrootContainer,
  type ContainerRecord,
  type EngineStatus,
} from '../core/index.js';

@injectable()
class JsonFileEngine implements EngineContribution {
  readonly id = 'jsonfile';
  private mtime = -1;
  private list: readonly ContainerRecord[] = [];
  private problem = '';

  constructor(private readonly file: string) {}

  async containers(): Promise<readonly ContainerRecord[]> {
    try {
      const m = statSync(this.file).mtimeMs;
      if (m !== this.mtime) {
        const raw = JSON.parse(readFileSync(this.file, 'utf8')) as Array<{ id: string; name: string; pid: number }>;
        this.list = Object.freeze(
          raw.map((c) => ({ engine: this.id, id: c.id, names: [c.name], running: c.pid > 0, pid: c.pid, source: this.file })),
        );
        this.mtime = m;
        this.problem = '';
      }
    } catch (err) {
      this.list = [];
      this.problem = (err as Error).message;
    }
    return this.list;
  }

  status(): EngineStatus {
    const reason = this.problem || `${this.list.length} containers in ${this.file}`;
    return { engine: this.id, available: this.problem === '', reason, checkedAt: Date.now() };
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
  await container.get<EngineRegistry>(EngineRegistry).start();
  const pid = await container.get<ContainerProcessIdResolver>(ContainerProcessIdResolver).resolveProcessId(name);
  process.stdout.write(`${name}: pid ${pid}\n`);
}

if (require.main === module) {
  main().catch((err: unknown) => {
    process.stderr.write(`${(err as Error).message}\n`);
    process.exit(1);
  });
}
