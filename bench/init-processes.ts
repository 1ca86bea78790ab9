/**
 * Drives bench/init-processes.c: real processes standing in for containers'
 * init processes, each in a UTS namespace of its own with its own hostname.
 */
import type { ChildProcess } from 'node:child_process';
import { createInterface, type Interface } from 'node:readline';
import { endChild, spawnTracked } from './bench-processes.js';

/** One stand-in init process. */
export interface InitProcess {
  readonly pid: number;
  /** Field 22 of /proc/PID/stat: clock ticks since boot. */
  readonly startTicks: number;
  /** The hostname of its UTS namespace. */
  readonly hostname: string;
}

export class InitProcesses {
  private readonly child: ChildProcess;
  private readonly lines: Interface;
  private readonly waiting: ((line: string) => void)[] = [];
  private readonly buffered: string[] = [];
  private stderr = '';
  private counter = 0;

  constructor(binary: string) {
    this.child = spawnTracked(binary, [], { stdio: ['pipe', 'pipe', 'pipe'] });
    this.child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.lines = createInterface({ input: this.child.stdout! });
    this.lines.on('line', (line) => {
      const next = this.waiting.shift();
      if (next) next(line);
      else this.buffered.push(line);
    });
  }

  private nextLine(timeoutMs: number): Promise<string> {
    const ready = this.buffered.shift();
    if (ready !== undefined) return Promise.resolve(ready);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`init-processes did not answer within ${timeoutMs} ms: ${this.stderr.trim()}`)), timeoutMs);
      const onExit = (): void => reject(new Error(`init-processes exited: ${this.stderr.trim()}`));
      this.child.once('exit', onExit);
      this.waiting.push((line) => {
        clearTimeout(timer);
        this.child.off('exit', onExit);
        resolve(line);
      });
    });
  }

  /** Starts `count` processes; hostnames are `<prefix>-<n>-<i>` (a fresh n per call). */
  async spawn(count: number, prefix: string): Promise<InitProcess[]> {
    const tag = `${prefix}-${this.counter++}`;
    this.child.stdin!.write(`spawn ${count} ${tag}\n`);
    const out: InitProcess[] = [];
    for (;;) {
      const line = await this.nextLine(120000);
      if (line === 'done') break;
      const [pid, ticks, hostname] = line.split(' ');
      if (pid === undefined || ticks === undefined || hostname === undefined || !(Number(ticks) > 0)) throw new Error(`init-processes: bad line ${line}`);
      out.push({ pid: Number(pid), startTicks: Number(ticks), hostname });
    }
    if (out.length !== count) throw new Error(`init-processes started ${out.length} of ${count}`);
    return out;
  }

  /** SIGKILLs one of them and reaps it. */
  async kill(pid: number): Promise<void> {
    this.child.stdin!.write(`kill ${pid}\n`);
    const line = await this.nextLine(10000);
    if (line !== `killed ${pid}`) throw new Error(`init-processes: expected "killed ${pid}", got ${line}`);
  }

  /** Kills and reaps them all, then ends. */
  async stop(): Promise<void> {
    this.lines.close();
    await endChild(this.child, () => this.child.stdin?.end(), 20000);
  }
}
