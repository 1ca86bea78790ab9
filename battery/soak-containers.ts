/**
 * The containers of a soak, and the truth about them: declared sandboxes
 * added and dropped through the config file and SIGHUP, real Docker
 * containers run and removed, every name ever made remembered (names are
 * never reused), and each answer a client got checked against what the
 * container really is.
 */
import { execFile, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { startNamespacedSleeper, type StartedChild } from '../bench/bench-processes.js';
import { cgroupPaths, type CrootdUnderTest } from './crootd-under-test.js';

/** A container the soak made: what any answer about it must say. */
export interface SoakContainer {
  readonly name: string;
  readonly engine: 'static' | 'docker';
  readonly pid: number;
  readonly hostname: string;
  readonly cgroups: readonly string[];
  readonly stop: () => Promise<void>;
}

export function run(cmd: string, args: readonly string[], timeoutMs = 60000): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(cmd, [...args], { encoding: 'utf8', timeout: timeoutMs }, (err, stdout, stderr) => (err ? reject(new Error(`${cmd} ${args.join(' ')}: ${stderr || err.message}`)) : resolve(stdout.trim())));
  });
}

export function dockerWorks(): boolean {
  try {
    execFileSync('docker', ['image', 'inspect', 'croot-test:latest'], { stdio: 'ignore', timeout: 20000 });
    return true;
  } catch {
    return false;
  }
}

export class SoakContainers {
  /** Every container the soak made, alive or gone. */
  private readonly known = new Map<string, SoakContainer>();
  /** Containers clients pick from; the churn adds and drops them. */
  readonly live: SoakContainer[] = [];
  /** A declared container that stays for the whole run: the watch's probe asks for it. */
  pinned: SoakContainer | undefined;
  /** The crootd whose config is rewritten (set once it runs). */
  crootd: CrootdUnderTest | undefined;
  private staticStarted = 0;
  private dockerStarted = 0;
  private readonly tag = randomBytes(3).toString('hex');

  constructor(
    private readonly configPath: string,
    /** Docker containers come and go too. */
    readonly docker: boolean,
    private readonly violate: (invariant: string, detail: string) => void,
  ) {}

  /** How many containers of each engine were started. */
  get started(): { readonly static: number; readonly docker: number } {
    return { static: this.staticStarted, docker: this.dockerStarted };
  }

  /** The containers the config file declares now. */
  declared(): SoakContainer[] {
    return [...(this.pinned !== undefined ? [this.pinned] : []), ...this.live.filter((c) => c.engine === 'static')];
  }

  writeConfig(): void {
    writeFileSync(
      this.configPath,
      JSON.stringify({
        disabledEngines: ['podman', 'containerd', 'lxc', ...(this.docker ? [] : ['docker'])],
        containers: this.declared().map((c) => ({ name: c.name, pid: c.pid })),
      }),
    );
  }

  /** SIGHUP and wait until crootd says it has re-read the config. */
  async reload(): Promise<void> {
    const crootd = this.crootd;
    if (crootd === undefined) return;
    const before = (crootd.log().match(/SIGHUP: config re-read/g) ?? []).length;
    crootd.child.kill('SIGHUP');
    const deadline = Date.now() + 10000;
    while ((crootd.log().match(/SIGHUP: config re-read/g) ?? []).length <= before && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  }

  /** A sandbox under a fresh name, known from now on (not yet declared). */
  async makeStatic(): Promise<SoakContainer> {
    const name = `soak${this.staticStarted++}-${this.tag}`;
    const sandbox: StartedChild = await startNamespacedSleeper(name, 7200);
    const c: SoakContainer = { name, engine: 'static', pid: sandbox.pid, hostname: name, cgroups: cgroupPaths(sandbox.pid), stop: () => sandbox.stop() };
    this.known.set(name, c);
    return c;
  }

  async addStatic(): Promise<void> {
    this.live.push(await this.makeStatic());
    this.writeConfig();
    await this.reload();
  }

  async addDocker(): Promise<void> {
    const name = `croot-t-soak${this.dockerStarted++}-${this.tag}`;
    await run('docker', ['run', '-d', '--name', name, '--hostname', `h-${name}`.slice(0, 63), 'croot-test:latest', 'sleep', '7200']);
    const [pid, host] = (await run('docker', ['inspect', '-f', '{{.State.Pid}} {{.Config.Hostname}}', name])).split(' ');
    const c: SoakContainer = {
      name,
      engine: 'docker',
      pid: Number(pid),
      hostname: host ?? '',
      cgroups: cgroupPaths(Number(pid)),
      stop: async () => {
        await run('docker', ['rm', '-f', name]).catch(() => undefined);
      },
    };
    this.known.set(name, c);
    this.live.push(c);
  }

  /** Drops the oldest container of `engine`: undeclared first (static) or removed (docker). */
  async dropOldest(engine: 'static' | 'docker'): Promise<void> {
    const i = this.live.findIndex((c) => c.engine === engine);
    if (i < 0) return;
    const [c] = this.live.splice(i, 1);
    if (c === undefined) return;
    if (engine === 'static') {
      this.writeConfig();
      await this.reload();
    }
    await c.stop();
  }

  /** Checks one answer; `answer` undefined means an error answer (never wrong). */
  check(client: string, what: 'hostname' | 'pid' | 'cgroup', name: string, answer: string | number | undefined): void {
    if (answer === undefined) return;
    const c = this.known.get(name);
    if (c === undefined) {
      this.violate('wrong-container', `${client}: ${what} of "${name}", which never existed, answered ${JSON.stringify(answer)}`);
      return;
    }
    const right = what === 'hostname' ? answer === c.hostname : what === 'pid' ? answer === c.pid : c.cgroups.includes(String(answer).replace(/^\/+/, ''));
    if (!right) this.violate('wrong-container', `${client}: ${what} of ${c.engine} "${name}" answered ${JSON.stringify(answer)}; it is pid ${c.pid}, hostname ${c.hostname}`);
  }

  /** A name to ask for: mostly live containers, some gone ones, some that never were. */
  pickName(): string {
    const r = Math.random();
    if (r < 0.75 && this.live.length > 0) return (this.live[Math.floor(Math.random() * this.live.length)] as SoakContainer).name;
    if (r < 0.9 && this.known.size > 0) {
      const all = [...this.known.keys()];
      return all[Math.floor(Math.random() * all.length)] as string;
    }
    return `never-${randomBytes(4).toString('hex')}`;
  }
}
