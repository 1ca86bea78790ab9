/**
 * `croot events` as a user runs it (`node dist/bin/croot.js events`),
 * in-process and through a running crootd: a declared sandbox and a real
 * Docker container created, started, stopped (their init exits) and
 * removed, each event checked against what the kernel and `docker inspect`
 * say; the filters, `--count`, `--until-exit`, SIGINT/SIGTERM; PCP's
 * pmdaroot saying plainly that it cannot stream events; a subscriber that
 * stops reading is dropped and crootd's memory stays bounded; and how init
 * processes are held (`pidfd`, or `/proc` checks when the fd limit leaves no
 * room for pidfds), in `croot engines` and `croot status`, against the
 * pidfds the kernel lists for crootd.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, readlinkSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createConnection } from 'node:net';
import { join } from 'node:path';
import { encodeExtensionRequest, type CrootDocument, type EventReport } from '../core/protocol/croot-extension.js';
import { subscribeCrootd, type CrootdEventStream } from '../core/client/extension-client.js';
import { describeWith, probes, run } from './support/components.js';
import { builtBinaries, CROOT, runCroot, sleep, startCrootd, type CrootdProcess } from './support/crootd-process.js';
import { eventually } from './support/outcomes.js';
import { makeTempDir, startPcpRoot, type PcpRootPeer } from './support/pcp-peer.js';
import { startTimeOf } from './support/processes.js';
import { startSandbox, type Sandbox } from './support/sandbox.js';
import { dockerInspect, dockerRun, removeDockerContainers } from './support/testbed.js';

function probe(): string | undefined {
  return probes.root() ?? builtBinaries() ?? probes.native();
}

/** How long a wait for something that must happen may last before the test fails (a bound, not a measurement). */
const PATIENCE_MS = 30000;

/** Writes `text` to `path` atomically (a rename into the folder, as pidfile writers do). */
function writeAtomically(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

/** Whether `pid` is no longer the process that started at `startTime` (the kernel's word). */
function goneFromKernel(pid: number, startTime: number | undefined): boolean {
  return !existsSync(`/proc/${pid}`) || startTimeOf(pid) !== startTime;
}

/** A running `croot events`, its output read as it comes. */
class EventsCommand {
  readonly child: ChildProcess;
  /** Every line printed, in order. */
  readonly lines: string[] = [];
  /** With --json: every event printed, in order. */
  readonly events: EventReport[] = [];
  stderr = '';
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private partial = '';

  constructor(
    args: readonly string[],
    private readonly json = true,
  ) {
    this.child = spawn(process.execPath, [CROOT, 'events', ...(json ? ['--json'] : []), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child.stdout?.on('data', (d: Buffer) => {
      const text = this.partial + d.toString();
      const lines = text.split('\n');
      this.partial = lines.pop() ?? '';
      for (const line of lines) {
        this.lines.push(line);
        if (this.json) this.events.push((JSON.parse(line) as CrootDocument).event as EventReport);
      }
    });
    this.child.stderr?.on('data', (d: Buffer) => (this.stderr += d.toString()));
    this.exited = new Promise((resolve) => this.child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** The first event from index `from` on that `match` accepts; fails the test after PATIENCE_MS. */
  async waitFor(what: string, match: (e: EventReport) => boolean, from = 0): Promise<{ event: EventReport; index: number }> {
    const deadline = Date.now() + PATIENCE_MS;
    for (;;) {
      const index = this.events.findIndex((e, i) => i >= from && match(e));
      if (index >= 0) return { event: this.events[index] as EventReport, index };
      if (Date.now() > deadline || this.child.exitCode !== null) {
        throw new Error(`croot events never printed ${what}; it printed:\n${this.lines.join('\n')}\nstderr: ${this.stderr}`);
      }
      await sleep(50);
    }
  }

  async stop(signal: NodeJS.Signals): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.child.exitCode === null) this.child.kill(signal);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 20000);
    const exit = await this.exited;
    clearTimeout(timer);
    return exit;
  }
}

const aboutContainer =
  (engine: string, id: string) =>
  (e: EventReport): boolean =>
    e.type === 'container' && e.container?.engine === engine && e.container.id === id;

describeWith('root, the native module and the built bin/croot, bin/crootd', probe, 'croot events, and how init processes are held', () => {
  const tag = randomBytes(4).toString('hex');
  /** A declared container that follows a pidfile the test writes and removes: toggling it makes an event whenever one is needed. */
  const probeName = `croot-t-${tag}-probe`;
  const sandboxName = `croot-t-${tag}-sbx`;
  let work: string;
  let probePidfile: string;
  let sandboxPidfile: string;
  /** crootd's config: rewritten and re-read with SIGHUP. */
  let crootdConfig: string;
  /** The in-process commands' config: the probe and the sandbox, from the start. */
  let localConfig: string;
  let crootd: CrootdProcess;
  let socketPath: string;
  const crootds: CrootdProcess[] = [];

  const declared = (withSandbox: boolean): object => ({
    containers: [{ name: probeName, pidfile: probePidfile }, ...(withSandbox ? [{ name: sandboxName, pidfile: sandboxPidfile }] : [])],
  });

  beforeAll(async () => {
    work = makeTempDir('croot-events-');
    probePidfile = join(work, 'probe.pid');
    sandboxPidfile = join(work, 'sbx.pid');
    crootdConfig = join(work, 'crootd.json');
    localConfig = join(work, 'local.json');
    writeFileSync(crootdConfig, JSON.stringify(declared(false)));
    writeFileSync(localConfig, JSON.stringify(declared(true)));
    socketPath = join(work, 'run', 'root.socket');
    crootd = await startCrootd({ socketPath, logPath: join(work, 'crootd.log'), args: ['--config', crootdConfig, '--pidfile', join(work, 'crootd.pid')] });
    crootds.push(crootd);
  }, 60000);

  afterAll(async () => {
    for (const p of crootds) await p.stop('SIGKILL', 5000);
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  }, 60000);

  /** crootd re-reads its config (SIGHUP) as `config`. */
  function reconfigure(config: object): void {
    writeFileSync(crootdConfig, JSON.stringify(config));
    process.kill(crootd.pid, 'SIGHUP');
  }

  /**
   * Makes probe events (the probe's pidfile naming this test's process, then
   * gone) until every command has printed one: from then on each is
   * subscribed, so no later change can be missed.
   */
  async function subscribed(...commands: EventsCommand[]): Promise<void> {
    const deadline = Date.now() + PATIENCE_MS;
    let running = false;
    while (!commands.every((c) => c.events.some((e) => e.container?.names.includes(probeName)))) {
      if (Date.now() > deadline) throw new Error(`no probe event from ${commands.filter((c) => !c.events.some((e) => e.container?.names.includes(probeName))).map((c) => c.stderr).join('; ')}`);
      running = !running;
      if (running) writeAtomically(probePidfile, `${process.pid}\n`);
      else rmSync(probePidfile, { force: true });
      await sleep(300);
    }
  }

  describe('croot events, in-process and through crootd', () => {
    let local: EventsCommand;
    let remote: EventsCommand;
    let table: EventsCommand;
    const created: string[] = [];
    let sandbox: Sandbox | undefined;

    beforeAll(async () => {
      local = new EventsCommand(['--config', localConfig]);
      remote = new EventsCommand(['--socket', socketPath]);
      table = new EventsCommand(['--socket', socketPath, '--engine', 'static'], false);
      // A table line is about the probe: wait for it the same way.
      const tableSeesProbe = async (): Promise<void> => {
        const deadline = Date.now() + PATIENCE_MS;
        while (!table.lines.some((l) => l.includes(probeName)) && Date.now() < deadline) await sleep(100);
      };
      await Promise.all([subscribed(local, remote), tableSeesProbe()]);
    }, 90000);

    afterAll(async () => {
      for (const c of [local, remote, table]) await c?.stop('SIGKILL');
      await sandbox?.stop();
      removeDockerContainers(created);
    }, 60000);

    it('sees a declared sandbox added (crootd re-reads its config), started, its init exit, and removed, as the kernel says', async () => {
      const mark = { local: local.events.length, remote: remote.events.length };
      reconfigure(declared(true));
      const added = await remote.waitFor('the sandbox added', (e) => aboutContainer('static', sandboxName)(e) && e.action === 'added', mark.remote);
      expect(added.event.container).toEqual({ engine: 'static', id: sandboxName, names: [sandboxName], state: 'stopped', pid: null });

      sandbox = await startSandbox(`${sandboxName}-h`);
      const pid = sandbox.pid;
      const started = startTimeOf(pid);
      writeAtomically(sandboxPidfile, `${pid}\n`);
      for (const [command, from] of [
        [local, mark.local],
        [remote, added.index],
      ] as const) {
        const up = await command.waitFor('the sandbox running', (e) => aboutContainer('static', sandboxName)(e) && e.container?.state === 'running', from);
        expect(up.event).toMatchObject({ type: 'container', action: 'updated', container: { state: 'running', pid }, was: { state: 'stopped', pid: null } });
      }

      await sandbox.stop();
      // The kernel's word: that process is gone.
      expect(goneFromKernel(pid, started)).toBe(true);
      for (const command of [local, remote]) {
        const down = await command.waitFor('the sandbox’s init exiting', (e) => aboutContainer('static', sandboxName)(e) && e.container?.state === 'stopped' && e.was?.pid === pid);
        // Seen through the pidfd, before the pidfile said anything.
        expect(down.event).toMatchObject({ action: 'exited', container: { state: 'stopped', pid: null }, was: { state: 'running', pid } });
      }
      // The table is one line per event, with what it was (its own process: it prints the exit when it gets it).
      const line = await eventually(async () => table.lines.find((l) => l.includes(` exited `) && l.includes(sandboxName))).catch(() => undefined);
      expect(line).toMatch(new RegExp(`^\\d{4}-\\d\\d-\\d\\dT\\S+Z  container  exited   static  ${sandboxName}  stopped  -  ${sandboxName}  \\(was running ${pid}\\)$`));

      reconfigure(declared(false));
      const removed = await remote.waitFor('the sandbox removed', (e) => aboutContainer('static', sandboxName)(e) && e.action === 'removed');
      expect(removed.event.container).toMatchObject({ id: sandboxName, state: 'stopped' });
      expect((await runCroot(['pid', sandboxName, '--socket', socketPath])).code).toBe(3);
    }, 120000);

    describeWith('docker', probes.docker, 'a docker container', () => {
      it('sees it created, started with the PID docker reports, stopped (its init exits) and removed, in-process and through crootd', async () => {
        const name = `croot-t-${tag}-dk`;
        const marks = [local.events.length, remote.events.length];
        const { id } = dockerRun(name, { createOnly: true }, created);
        expect(dockerInspect(id, '{{.State.Status}}')).toBe('created');
        const commands = [local, remote];
        const seen = await Promise.all(commands.map((c, i) => c.waitFor('the container added', (e) => aboutContainer('docker', id)(e) && e.action === 'added', marks[i])));
        for (const s of seen) expect(s.event.container).toEqual({ engine: 'docker', id, names: [name], state: 'stopped', pid: null });

        run('docker', ['start', name]);
        const pid = Number(dockerInspect(id, '{{.State.Pid}}'));
        expect(pid).toBeGreaterThan(0);
        const started = startTimeOf(pid);
        const up = await Promise.all(
          commands.map((c, i) => c.waitFor('the container running', (e) => aboutContainer('docker', id)(e) && e.container?.state === 'running', seen[i]?.index)),
        );
        for (const u of up) expect(u.event).toMatchObject({ action: 'updated', container: { state: 'running', pid }, was: { state: 'stopped' } });

        run('docker', ['stop', '-t', '1', name]);
        expect(dockerInspect(id, '{{.State.Running}}')).toBe('false');
        expect(goneFromKernel(pid, started)).toBe(true);
        const down = await Promise.all(
          commands.map((c, i) => c.waitFor('the container stopped', (e) => aboutContainer('docker', id)(e) && e.container?.state === 'stopped', up[i]?.index)),
        );
        for (const d of down) {
          // Whoever saw it first (the pidfd, or Docker's event): the init that ran is the one that ended.
          expect(['exited', 'updated']).toContain(d.event.action);
          expect(d.event).toMatchObject({ container: { pid: null }, was: { state: 'running', pid } });
        }

        run('docker', ['rm', name]);
        expect(() => dockerInspect(id, '{{.Id}}')).toThrow();
        const gone = await Promise.all(
          commands.map((c, i) => c.waitFor('the container removed', (e) => aboutContainer('docker', id)(e) && e.action === 'removed', down[i]?.index)),
        );
        for (const g of gone) expect(g.event.container).toMatchObject({ engine: 'docker', id, names: [name], state: 'stopped' });
        // Between start and stop nothing said another PID.
        for (const [i, c] of commands.entries()) {
          const between = c.events.slice(up[i]?.index, down[i]?.index).filter(aboutContainer('docker', id));
          expect(between.map((e) => e.container?.pid)).toEqual(between.map(() => pid));
        }
      }, 120000);
    });

    it('shows only what --engine and --state let through', async () => {
      const filtered = new EventsCommand(['--socket', socketPath, '--engine', 'static', '--state', 'running']);
      try {
        await subscribed(filtered);
        const before = filtered.events.length;
        // Four more changes of the probe: running, stopped, running, stopped (in some order), each seen by the unfiltered command.
        for (let i = 0; i < 4; i++) {
          const running = !existsSync(probePidfile);
          const mark = remote.events.length;
          if (running) writeAtomically(probePidfile, `${process.pid}\n`);
          else rmSync(probePidfile, { force: true });
          await remote.waitFor(`the probe ${running ? 'running' : 'stopped'}`, (e) => aboutContainer('static', probeName)(e) && e.container?.state === (running ? 'running' : 'stopped'), mark);
        }
        await filtered.waitFor('the probe running again', (e) => aboutContainer('static', probeName)(e), before);
        expect(filtered.events.length).toBeGreaterThan(before);
        expect(filtered.events.every((e) => e.type === 'container' && e.container?.engine === 'static' && e.container.state === 'running')).toBe(true);
      } finally {
        expect(await filtered.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      }
    }, 90000);

    it('exits 0 on SIGINT (in-process) and SIGTERM (through crootd)', async () => {
      expect(await local.stop('SIGINT')).toEqual({ code: 0, signal: null });
      expect(await remote.stop('SIGTERM')).toEqual({ code: 0, signal: null });
      expect(local.stderr + remote.stderr).toBe('');
    }, 60000);
  });

  describe('croot events --count and --until-exit', () => {
    it('exits 0 after --count N events, having printed N', async () => {
      const counted = new EventsCommand(['--socket', socketPath, '--count', '2', '--engine', 'static']);
      await subscribed(counted);
      for (let i = 0; i < 6 && counted.child.exitCode === null; i++) {
        writeAtomically(probePidfile, `${process.pid}\n`);
        await sleep(200);
        rmSync(probePidfile, { force: true });
        await sleep(200);
      }
      expect(await counted.exited).toEqual({ code: 0, signal: null });
      expect(counted.lines).toHaveLength(2);
    }, 60000);

    it('exits 0 once the container’s init has ended, printing that event last', async () => {
      const sandbox = await startSandbox();
      let waiter: EventsCommand | undefined;
      try {
        reconfigure(declared(true));
        writeAtomically(sandboxPidfile, `${sandbox.pid}\n`);
        const pid = sandbox.pid;
        // crootd has read the pidfile once it answers with that PID.
        for (let i = 0; i < 100 && (await runCroot(['pid', sandboxName, '--socket', socketPath])).stdout !== `${pid}\n`; i++) await sleep(100);
        expect((await runCroot(['pid', sandboxName, '--socket', socketPath])).stdout).toBe(`${pid}\n`);
        waiter = new EventsCommand(['--socket', socketPath, '--until-exit', sandboxName]);
        await subscribed(waiter);
        expect(waiter.child.exitCode).toBeNull();
        const started = startTimeOf(pid);
        await sandbox.stop();
        expect(goneFromKernel(pid, started)).toBe(true);
        expect(await waiter.exited).toEqual({ code: 0, signal: null });
        expect(waiter.events.at(-1)).toMatchObject({ action: 'exited', container: { id: sandboxName, state: 'stopped', pid: null }, was: { pid } });
      } finally {
        await waiter?.stop('SIGKILL');
        await sandbox.stop();
        rmSync(sandboxPidfile, { force: true });
        reconfigure(declared(false));
      }
    }, 60000);

    it('exits 0 at once for a container that is not running, and 3 for a name that matches nothing', async () => {
      rmSync(probePidfile, { force: true });
      for (let i = 0; i < 100 && (await runCroot(['pid', probeName, '--socket', socketPath])).code !== 5; i++) await sleep(100);
      expect(await runCroot(['events', '--socket', socketPath, '--until-exit', probeName])).toEqual({ code: 0, stdout: '', stderr: '' });
      const none = await runCroot(['events', '--config', localConfig, '--until-exit', `croot-t-${tag}-nosuch`]);
      expect({ code: none.code, stdout: none.stdout }).toEqual({ code: 3, stdout: '' });
      expect(none.stderr).toContain('(-12399: Container not found)');
    }, 60000);
  });

  describeWith('PCP', probes.pcp, 'against PCP’s own pmdaroot', () => {
    let peer: PcpRootPeer | undefined;
    beforeAll(async () => {
      peer = await startPcpRoot();
    }, 60000);
    afterAll(async () => {
      await peer?.stop();
    });

    it('says plainly that PCP’s pmdaroot cannot stream events, and exits 8', async () => {
      const r = await runCroot(['events', '--socket', peer?.socketPath ?? '']);
      expect({ code: r.code, stdout: r.stdout }).toEqual({ code: 8, stdout: '' });
      expect(r.stderr).toContain("does not speak croot's extension, so it cannot list, show, stream events");
    });
  });

  describe('a subscriber that stops reading', () => {
    /** A thousand declared containers with long names: each event is about 2 KB. */
    const many = (round: number): object => ({
      containers: Array.from({ length: 1000 }, (_, i) => ({
        name: `croot-t-${tag}-m${i}`,
        aliases: Array.from({ length: 4 }, (_unused, k) => `croot-t-${tag}-m${i}-alias${k}-${'x'.repeat(450)}`),
        id: `croot-t-${tag}-m${i}-r${round % 2}`,
        pidfile: 'no-such.pid',
      })),
    });

    function rssKb(pid: number): number {
      const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find((l) => l.startsWith('VmRSS:')) ?? '';
      return Number(line.replace(/\D+/g, ''));
    }

    it('is dropped once its unread events pass the bound, while crootd’s memory stays flat and a reader gets every event', async () => {
      const config = join(work, 'many.json');
      writeFileSync(config, JSON.stringify({}));
      const server = await startCrootd({ socketPath: join(work, 'many', 'root.socket'), logPath: join(work, 'many.log'), args: ['--config', config] });
      crootds.push(server);
      // crootd takes SIGHUP once its engines have loaded (it says so).
      while (!/ INFO engine static: available/.test(server.log())) await sleep(50);
      let reader: CrootdEventStream | undefined;
      try {
        // The one that stops reading: INFO read, `events` asked, then never read again.
        const slow = createConnection(server.socketPath);
        await new Promise((resolve, reject) => slow.once('connect', resolve).once('error', reject));
        let slowBytes = 0;
        let slowClosed = false;
        const slowEnded = new Promise<void>((resolve) => slow.once('close', () => resolve()));
        slow.on('close', () => (slowClosed = true));
        slow.on('error', () => undefined);
        await new Promise<void>((resolve) => slow.once('data', (d: Buffer) => ((slowBytes += d.length), resolve())));
        slow.pause();
        slow.on('data', (d: Buffer) => (slowBytes += d.length));
        slow.write(encodeExtensionRequest({ op: 'events' }));

        reader = await subscribeCrootd(server.socketPath);
        let readerBytes = 0;
        let ours = 0;
        const pump = (async (): Promise<void> => {
          for (;;) {
            const doc = await reader?.next();
            if (doc === undefined) return;
            readerBytes += Buffer.byteLength(JSON.stringify(doc));
            if (doc.event?.container?.names[0]?.startsWith(`croot-t-${tag}-m`)) ours += 1;
          }
        })();
        const waitForOurs = async (n: number): Promise<void> => {
          const deadline = Date.now() + PATIENCE_MS;
          while (ours < n && Date.now() < deadline) await sleep(20);
          expect(ours).toBe(n);
        };

        const serverPid = server.serverPid();
        const rounds = 40;
        let rssBefore = 0;
        let bytesBefore = 0;
        for (let round = 0; round < rounds; round++) {
          // Every round: 1000 containers added, 1000 removed (their ids change), about 4 MB of events.
          writeFileSync(config, JSON.stringify(many(round)));
          process.kill(server.pid, 'SIGHUP');
          await waitForOurs(1000 + round * 2000);
          // Once crootd's heap has grown to its working size.
          if (round === 5) [rssBefore, bytesBefore] = [rssKb(serverPid), readerBytes];
        }
        const rssAfter = rssKb(serverPid);

        // The reader got every event of every round, and is still subscribed.
        expect(ours).toBe(1000 + (rounds - 1) * 2000);
        expect(server.log()).toMatch(/ WARN events subscriber dropped: it does not read what it is sent pid=\d+ uid=0 unread=\d+ limit=8388608/);
        // What the slow one can still read is bounded: what the kernel held, and crootd's bound.
        slow.resume();
        await Promise.race([slowEnded, sleep(PATIENCE_MS)]);
        expect(slowClosed).toBe(true);
        const kernel = Number(readFileSync('/proc/sys/net/core/wmem_max', 'utf8')) + Number(readFileSync('/proc/sys/net/core/rmem_max', 'utf8'));
        const bound = 8 * 1024 * 1024 + 2 * kernel + 64 * 1024;
        expect(slowBytes).toBeLessThan(bound);
        // Without the bound crootd would have buffered all of it for the slow subscriber.
        expect(readerBytes).toBeGreaterThan(4 * bound);
        // And crootd's memory did not follow what it sent after the drop: a third of it at most (heap growth included).
        expect((rssAfter - rssBefore) * 1024).toBeLessThan((readerBytes - bytesBefore) / 3);
        reader.close();
        await pump;
      } finally {
        reader?.close();
        await server.stop('SIGTERM');
      }
    }, 240000);
  });

  describe('how init processes are held, in croot engines and croot status', () => {
    let sandbox: Sandbox;
    let config: string;

    /** The pids crootd holds pidfds on, from /proc/PID/fd and fdinfo: the kernel's word. */
    function pidfdTargets(pid: number): number[] {
      const out: number[] = [];
      for (const fd of readdirSync(`/proc/${pid}/fd`)) {
        let target = '';
        try {
          target = readlinkSync(`/proc/${pid}/fd/${fd}`);
        } catch {
          continue;
        }
        if (target !== 'anon_inode:[pidfd]') continue;
        const line = readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8').split('\n').find((l) => l.startsWith('Pid:'));
        if (line !== undefined) out.push(Number(line.split(/\s+/)[1]));
      }
      return out;
    }

    beforeAll(async () => {
      sandbox = await startSandbox();
      config = join(work, 'held.json');
      writeFileSync(
        config,
        JSON.stringify({ disabledEngines: ['docker', 'podman', 'containerd', 'lxc'], containers: [{ name: `croot-t-${tag}-held`, pid: sandbox.pid }] }),
      );
    }, 30000);

    afterAll(async () => {
      await sandbox?.stop();
    });

    it('says pidfd when crootd holds the init by a pidfd, as the kernel lists', async () => {
      const server = await startCrootd({ socketPath: join(work, 'held', 'root.socket'), logPath: join(work, 'held.log'), args: ['--config', config] });
      crootds.push(server);
      try {
        // Held once the static engine has loaded: crootd answers for it.
        for (let i = 0; i < 100 && (await runCroot(['pid', `croot-t-${tag}-held`, '--socket', server.socketPath])).code !== 0; i++) await sleep(100);
        expect(pidfdTargets(server.serverPid())).toContain(sandbox.pid);
        const engines = await runCroot(['engines', '--socket', server.socketPath]);
        expect(engines.stdout).toMatch(/^init processes held by: pidfd$/m);
        const json = JSON.parse((await runCroot(['engines', '--socket', server.socketPath, '--json'])).stdout) as CrootDocument;
        expect(json.anchor).toEqual({ mode: 'pidfd' });
        const status = await runCroot(['status', '--socket', server.socketPath]);
        expect(status.stdout).toMatch(/^anchor +pidfd$/m);
        expect((JSON.parse((await runCroot(['status', '--socket', server.socketPath, '--json'])).stdout) as CrootDocument).anchor).toEqual({ mode: 'pidfd' });
        // In-process, croot holds it the same way.
        const local = JSON.parse((await runCroot(['engines', '--config', config, '--json'])).stdout) as CrootDocument;
        expect(local.anchor).toEqual({ mode: 'pidfd' });
      } finally {
        await server.stop('SIGTERM');
      }
    }, 60000);

    it('says /proc start-time checks and why when the fd limit leaves no room for pidfds, and holds no pidfd', async () => {
      // A hard limit crootd cannot raise, below the fds it keeps for sockets and files.
      const server = await startCrootd({
        socketPath: join(work, 'tight', 'root.socket'),
        logPath: join(work, 'tight.log'),
        args: ['--config', config],
        wrapper: ['prlimit', '--nofile=64:64'],
      });
      crootds.push(server);
      try {
        for (let i = 0; i < 100 && (await runCroot(['pid', `croot-t-${tag}-held`, '--socket', server.socketPath])).code !== 0; i++) await sleep(100);
        const pid = server.serverPid();
        expect(readFileSync(`/proc/${pid}/limits`, 'utf8')).toMatch(/^Max open files +64 +64 +files/m);
        expect(pidfdTargets(pid)).toEqual([]);
        const json = JSON.parse((await runCroot(['engines', '--socket', server.socketPath, '--json'])).stdout) as CrootDocument;
        expect(json.anchor).toEqual({ mode: 'proc', reason: expect.stringContaining('fd limit (64)') });
        const engines = await runCroot(['engines', '--socket', server.socketPath]);
        expect(engines.stdout).toMatch(/^init processes held by: \/proc start-time checks \(.*fd limit \(64\).*\)$/m);
        const status = await runCroot(['status', '--socket', server.socketPath]);
        expect(status.stdout).toMatch(/^anchor +\/proc start-time checks \(.*fd limit \(64\).*\)$/m);
        expect(server.log()).toMatch(/ WARN init processes checked through \/proc, not held by pidfds reason=".*fd limit \(64\)/);
        // It still answers right: the start-time check holds the same process.
        expect((await runCroot(['pid', `croot-t-${tag}-held`, '--socket', server.socketPath])).stdout).toBe(`${sandbox.pid}\n`);
      } finally {
        await server.stop('SIGTERM');
      }
    }, 60000);

    it('says the same in-process when croot runs under that limit', async () => {
      const r = run('prlimit', ['--nofile=64:64', process.execPath, CROOT, 'engines', '--config', config, '--json']);
      expect((JSON.parse(r) as CrootDocument).anchor).toEqual({ mode: 'proc', reason: expect.stringContaining('fd limit (64)') });
    }, 60000);
  });
});
