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
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ContainerModule } from 'croot/inversify';
import { CrootConfig, EngineContribution } from 'croot';

export const ENGINE_ID = 'pidfiles';
export const DEFAULT_DIR = '/run/croot/pidfiles';

/**
 * The engine: an in-memory list of the folder's pidfiles, read again when
 * the folder changes (its mtime: write pidfiles by renaming a temporary file
 * into place, as pidfile writers do, so a changed PID changes the folder).
 *
 * @implements {EngineContribution}
 */
export class PidfilesEngine {
  /** @param {string} dir */
  constructor(dir) {
    this.id = ENGINE_ID;
    this.dir = dir;
    /** @type {readonly import('croot').ContainerRecord[]} */
    this.records = Object.freeze([]);
    this.seenMtime = -1;
    this.problem = 'not read yet';
    this.checkedAt = Date.now();
  }

  async start() {
    this.refresh();
  }

  async containers() {
    this.refresh();
    return this.records;
  }

  /** @returns {import('croot').EngineStatus} */
  status() {
    const available = this.problem === '';
    const reason = available ? `${this.records.length} pidfiles in ${this.dir}` : this.problem;
    return { engine: this.id, available, reason, checkedAt: this.checkedAt };
  }

  /** One stat of the folder; the files are read only when it changed. */
  refresh() {
    this.checkedAt = Date.now();
    let mtime;
    try {
      mtime = statSync(this.dir).mtimeMs;
    } catch (err) {
      this.records = Object.freeze([]);
      this.seenMtime = -1;
      this.problem = `${this.dir}: ${/** @type {NodeJS.ErrnoException} */ (err).code ?? String(err)}`;
      return;
    }
    if (mtime === this.seenMtime) return;
    /** @type {import('croot').ContainerRecord[]} */
    const records = [];
    for (const file of readdirSync(this.dir).sort()) {
      if (!file.endsWith('.pid')) continue;
      const name = file.slice(0, -'.pid'.length);
      let pid = 0;
      try {
        pid = Number.parseInt(readFileSync(join(this.dir, file), 'utf8').trim(), 10);
      } catch {
        // removed between the listing and the read: not running
      }
      const running = Number.isSafeInteger(pid) && pid > 0;
      records.push(Object.freeze({ engine: this.id, id: name, names: [name], running, ...(running ? { pid } : {}), source: join(this.dir, file) }));
    }
    this.records = Object.freeze(records);
    this.seenMtime = mtime;
    this.problem = '';
  }
}

/** What croot loads: binds the engine, reading the folder from croot's environment. */
const engineModule = new ContainerModule(({ bind }) => {
  bind(EngineContribution)
    .toDynamicValue((context) => {
      /** @type {import('croot').CrootConfig} */
      const config = context.get(CrootConfig);
      return new PidfilesEngine(config.env.CROOT_PIDFILES_DIR || DEFAULT_DIR);
    })
    .inSingletonScope();
});

export default engineModule;
