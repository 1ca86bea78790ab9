/**
 * The servers a scenario measures, each on a private socket in the run's
 * temp folder: a crootd build (a black box: its executable, `--socket`,
 * `--config` and environment variables only), PCP's pmdaroot, and the Node
 * floor. Starting one times its first right answer: from just before the
 * spawn until it answers PROCESSID of a known container with that
 * container's PID.
 */
import { createInterface } from 'node:readline';
import { join } from 'node:path';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpuTimeNs, delay, endChild, rssMb, spawnCrootd, spawnPcpRoot, spawnTracked, type StartedChild } from './bench-processes.js';
import { ProbeClient, describeAnswer } from './probe-client.js';

export type ServerRole = 'croot' | 'pcp' | 'floor';

export interface RunningServer {
  readonly role: ServerRole;
  readonly socket: string;
  readonly pid: number;
  /** ms from spawn to the first right answer (floor: to "listening"). */
  readonly firstAnswerMs: number;
  readonly exited: boolean;
  output(): string;
  stop(): Promise<void>;
}

/** A container whose PID the first right answer must be. */
export interface KnownContainer {
  readonly name: string;
  readonly pid: number;
}

/**
 * Polls `socket` (every 10 ms, reconnecting until it accepts) until it
 * answers PROCESSID of `known` with its PID; returns the ms since `t0`.
 */
async function firstRightAnswer(server: StartedChild, socket: string, known: KnownContainer, t0: bigint, timeoutMs: number): Promise<number> {
  const probe = new ProbeClient(socket);
  let last = 'nothing yet';
  try {
    for (;;) {
      const answer = await probe.processId(known.name);
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if ('pid' in answer && answer.pid === known.pid) return ms;
      last = describeAnswer(answer);
      if (server.exited) throw new Error(`exited before its first right answer; last answer ${last}; ${server.output()}`);
      if (ms > timeoutMs) throw new Error(`no right answer for ${known.name} (pid ${known.pid}) within ${timeoutMs} ms; last answer ${last}; ${server.output()}`);
      await delay(10);
    }
  } finally {
    probe.close();
  }
}

async function startTimed(role: ServerRole, socket: string, launch: () => StartedChild, known: KnownContainer, timeoutMs: number): Promise<RunningServer> {
  const t0 = process.hrtime.bigint();
  const child = launch();
  let firstAnswerMs: number;
  try {
    firstAnswerMs = await firstRightAnswer(child, socket, known, t0, timeoutMs);
  } catch (err) {
    await child.stop();
    throw new Error(`${role}: ${(err as Error).message}`);
  }
  return {
    role,
    socket,
    pid: child.pid,
    firstAnswerMs,
    get exited() {
      return child.exited;
    },
    output: () => child.output(),
    stop: () => child.stop(),
  };
}

export interface CrootdLaunch {
  /** bin/crootd of some build, or a dist/bin/crootd.js. */
  readonly crootd: string;
  readonly dir: string;
  /** Written as its --config file. */
  readonly config: unknown;
  readonly env: Readonly<Record<string, string>>;
}

export function startCrootd(launch: CrootdLaunch, known: KnownContainer, timeoutMs: number): Promise<RunningServer> {
  const socket = join(launch.dir, 'crootd.socket');
  const configPath = join(launch.dir, 'crootd.json');
  mkdirSync(launch.dir, { recursive: true });
  writeFileSync(configPath, JSON.stringify(launch.config));
  return startTimed('croot', socket, () => spawnCrootd(launch.crootd, socket, configPath, launch.env, join(launch.dir, 'crootd.log')), known, timeoutMs);
}

/** PCP's pmdaroot with `env`; `emptyEngines`: the engines `env` does not name see empty folders (else the host's). */
export function startPmdaroot(dir: string, env: Readonly<Record<string, string>>, emptyEngines: boolean, known: KnownContainer, timeoutMs: number): Promise<RunningServer> {
  const socket = join(dir, 'pmdaroot.socket');
  return startTimed('pcp', socket, () => spawnPcpRoot(socket, dir, env, emptyEngines), known, timeoutMs);
}

/** The two floor servers: the same fixed replies from Node and from C. */
export type FloorServerKind = 'node' | 'c';

/**
 * Starts a floor server answering `pid`, `hostname` and `cgroup` to
 * everything: the Node floor (node and floor-server.js) or the C floor
 * (`cFloorServer`, built by buildCHelpers).
 */
export async function startFloor(
  kind: FloorServerKind,
  cFloorServer: string,
  dir: string,
  pid: number,
  hostname: string,
  cgroup: string,
): Promise<RunningServer> {
  const socket = join(dir, 'floor.socket');
  const t0 = process.hrtime.bigint();
  const [file, ...first] = kind === 'c' ? [cFloorServer] : [process.execPath, join(__dirname, 'floor-server.js')];
  const child = spawnTracked(file as string, [...first, socket, String(pid), hostname, cgroup], { stdio: ['pipe', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  await new Promise<void>((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (line) => (line === 'listening' ? resolve() : reject(new Error(`floor server: ${line}`))));
    child.once('exit', () => reject(new Error(`floor server exited: ${stderr}`)));
  });
  return {
    role: 'floor',
    socket,
    pid: child.pid ?? -1,
    firstAnswerMs: Number(process.hrtime.bigint() - t0) / 1e6,
    get exited() {
      return child.exitCode !== null || child.signalCode !== null;
    },
    output: () => stderr,
    stop: () => endChild(child, () => child.stdin?.end()),
  };
}

/** CPU each server used over `ms` with no requests, in % of one core. */
export async function idleCpu(servers: readonly RunningServer[], ms: number): Promise<Map<RunningServer, number>> {
  const before = servers.map((s) => cpuTimeNs(s.pid));
  const t0 = process.hrtime.bigint();
  await delay(ms);
  const wall = Number(process.hrtime.bigint() - t0);
  return new Map(servers.map((s, i) => [s, ((cpuTimeNs(s.pid) - (before[i] as number)) / wall) * 100]));
}

export { rssMb };
