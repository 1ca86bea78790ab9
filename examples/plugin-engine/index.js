// @ts-check
/**
 * croot-engine-pidfiles: a croot engine whose containers are the `NAME.pid`
 * files of one folder (`CROOT_PIDFILES_DIR` in croot's environment, default
 * /run/croot/pidfiles). Each file holds the init PID of a container called
 * NAME: a sandbox started by hand, a jail, a service's namespace.
 *
 * A plugin is an ES module (or CommonJS) whose default export is an
 * inversify ContainerModule binding an EngineContribution. It imports
 * inversify from croot (`croot/inversify`), so croot's container accepts its
 * module, and depends on croot as a peer only.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ContainerModule } from 'croot/inversify';
import { CrootConfig, DirectoryWatcher, EngineContribution, NodeDirectoryWatcher } from 'croot';

export const ENGINE_ID = 'pidfiles';
export const DEFAULT_DIR = '/run/croot/pidfiles';

/**
 * The engine: pushes the folder's pidfiles into croot's index when it
 * starts, and again for each pidfile written, moved in or removed (croot's
 * DirectoryWatcher: inotify with croot's native module, fs.watch without).
 * croot holds each PID itself and sees the process exit.
 *
 * @implements {EngineContribution}
 */
export class PidfilesEngine {
  /**
   * @param {string} dir
   * @param {import('croot').DirectoryWatcher} watcher
   */
  constructor(dir, watcher) {
    this.id = ENGINE_ID;
    this.dir = dir;
    this.watcher = watcher;
    /** @type {import('croot').ContainerSink | undefined} */
    this.sink = undefined;
    /** @type {(() => void) | undefined} */
    this.unwatch = undefined;
  }

  /** @param {import('croot').ContainerSink} sink */
  start(sink) {
    this.sink = sink;
    this.readAll();
  }

  /** croot's safety net: read everything again (and watch the folder if it appeared). */
  async recheck() {
    this.readAll();
  }

  async stop() {
    this.unwatch?.();
    this.unwatch = undefined;
    this.sink = undefined;
  }

  /** Watches the folder (once it exists) and pushes every pidfile in it. */
  readAll() {
    const sink = this.sink;
    if (sink === undefined) return;
    let files;
    try {
      files = readdirSync(this.dir).filter((f) => f.endsWith('.pid')).sort();
    } catch (err) {
      sink.replaceAll([]);
      sink.health(false, `${this.dir}: ${/** @type {NodeJS.ErrnoException} */ (err).code ?? String(err)}`);
      return;
    }
    if (this.unwatch === undefined) {
      this.unwatch = this.watcher.watch(this.dir, (event) => {
        if (event.kind === 'gone') {
          this.unwatch?.();
          this.unwatch = undefined;
          this.readAll();
        } else if (event.kind === 'overflow' || event.name === '') this.readAll();
        else if (event.name.endsWith('.pid')) this.readOne(event.name);
      });
    }
    sink.replaceAll(files.map((file) => this.recordOf(file)));
    sink.health(true, `${files.length} pidfiles in ${this.dir}`);
  }

  /** @param {string} file */
  readOne(file) {
    const record = this.recordOf(file);
    if (record.source === undefined) this.sink?.remove(record.id);
    else this.sink?.upsert(record);
  }

  /**
   * @param {string} file
   * @returns {import('croot').ContainerRecord}
   */
  recordOf(file) {
    const name = file.slice(0, -'.pid'.length);
    let pid = 0;
    try {
      pid = Number.parseInt(readFileSync(join(this.dir, file), 'utf8').trim(), 10);
    } catch {
      // removed: the container is gone
      return { engine: this.id, id: name, names: [name], running: false };
    }
    const running = Number.isSafeInteger(pid) && pid > 0;
    return { engine: this.id, id: name, names: [name], running, ...(running ? { pid } : {}), source: join(this.dir, file) };
  }
}

/** What croot loads: binds the engine, reading the folder from croot's environment. */
const engineModule = new ContainerModule(({ bind }) => {
  bind(EngineContribution)
    .toDynamicValue((context) => {
      /** @type {import('croot').CrootConfig} */
      const config = context.get(CrootConfig);
      const watcher = context.get(DirectoryWatcher, { optional: true }) ?? new NodeDirectoryWatcher();
      return new PidfilesEngine(config.env.CROOT_PIDFILES_DIR || DEFAULT_DIR, watcher);
    })
    .inSingletonScope();
});

export default engineModule;
