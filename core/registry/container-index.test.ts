import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerIndex } from './container-index.js';
import type { IndexChange } from './indexed-container.js';
import type { ContainerRecord } from './engine-contribution.js';
import { NameMatcher } from './name-matcher.js';
import { ProcProcessAnchor } from '../host/proc-process-anchor.js';
import type { ProcessAnchor, ProcessAnchorMode, ProcessHandle } from '../host/host-services.js';
import { CountingAnchor } from '../../test/support/counting-anchor.js';

const stopped = (engine: string, id: string, ...names: string[]): ContainerRecord => ({ engine, id, names, running: false });

/** The kernel's own view of a process, read without croot's code: state and start time from /proc/PID/stat. */
function kernelStat(pid: number): { state: string; start: number } {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] as string, start: Number(fields[19]) };
}

function kernelCgroup(pid: number): string {
  // The memory hierarchy's line, as the host sees it (this machine is cgroup v1 hybrid).
  const line = readFileSync(`/proc/${pid}/cgroup`, 'utf8')
    .split('\n')
    .find((l) => l.split(':')[1]?.split(',').includes('memory'));
  return (line as string).split(':').slice(2).join(':').replace(/^\//, '');
}

const children: ChildProcess[] = [];
function sleeper(): ChildProcess {
  const child = spawn('sleep', ['1000'], { stdio: 'ignore' });
  children.push(child);
  return child;
}
afterAll(() => {
  for (const c of children) c.kill('SIGKILL');
});

/** Lets `n` turns of the event loop pass (the background anchoring pass runs one slice per turn). */
/**
 * A `sleep` whose parent never reaps it: a shell starts it in the background
 * and execs `sleep` itself. Resolves once the exec is done (until then the
 * shell may reap the child: dash reaps finished jobs before a command).
 */
async function unreapedChild(): Promise<{ parent: ChildProcess; pid: number }> {
  const parent = spawn('sh', ['-c', 'sleep 1000 & echo $!; exec sleep 1000'], { stdio: ['ignore', 'pipe', 'ignore'] });
  children.push(parent);
  const pid = Number(await new Promise<string>((resolve) => parent.stdout?.once('data', (d: Buffer) => resolve(d.toString().trim()))));
  const execd = (): boolean => readFileSync(`/proc/${parent.pid}/cmdline`, 'utf8') === 'sleep\x001000\x00';
  for (let i = 0; i < 500 && !execd(); i++) await new Promise((r) => setTimeout(r, 10));
  if (!execd()) throw new Error(`sh ${parent.pid} never exec'd sleep`);
  return { parent, pid };
}

async function turns(n: number): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((r) => setImmediate(r));
}

async function exitOf(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  await new Promise((resolve) => child.once('exit', resolve));
}

describe('ContainerIndex', () => {
  const anchor = new ProcProcessAnchor('/proc');
  /** A live process and its start time as the kernel gives it, and an index over the real /proc anchor, counting what it holds. */
  function countedIndex(): { pid: number; start: number; counting: CountingAnchor; index: ContainerIndex } {
    const pid = sleeper().pid as number;
    const counting = new CountingAnchor(anchor);
    return { pid, start: kernelStat(pid).start, counting, index: new ContainerIndex(counting, '/proc') };
  }

  describe('searches', () => {
    const index = new ContainerIndex(anchor, '/proc');
    index.replaceAll('docker', [stopped('docker', 'abc123000000', 'x'), stopped('docker', 'abd999000000', 'y')]);
    index.replaceAll('podman', [stopped('podman', 'abc777000000', 'x', 'x')]);
    index.replaceAll('lxc', [stopped('lxc', 'zzz', 'z')]);

    it('finds every digest id with a prefix, and only those', () => {
      expect(index.withIdPrefix('abc').map((c) => c.id).sort()).toEqual(['abc123000000', 'abc777000000']);
      expect(index.withIdPrefix('ab').length).toBe(3);
      expect(index.withIdPrefix('abe')).toEqual([]);
      // zzz is a chosen name, not a digest: no prefix finds it, not even itself.
      expect(index.withIdPrefix('zzz')).toEqual([]);
    });

    it('finds a digest id by its whole self and by prefixes at either end of the sorted ids', () => {
      expect(index.withIdPrefix('abc123000000').map((c) => c.id)).toEqual(['abc123000000']);
      expect(index.withIdPrefix('abd999000000').map((c) => c.id)).toEqual(['abd999000000']);
      expect(index.withIdPrefix('abd').map((c) => c.id)).toEqual(['abd999000000']);
      expect(index.withIdPrefix('abc1230000001')).toEqual([]);
      expect(index.withIdPrefix('a0')).toEqual([]);
      expect(index.withIdPrefix('f')).toEqual([]);
    });

    it('lists and counts the containers of one engine, or of all', () => {
      expect([...index.containers('podman')].map((c) => c.id)).toEqual(['abc777000000']);
      expect([...index.containers('nope')]).toEqual([]);
      expect([...index.containers()].map((c) => c.id).sort()).toEqual(['abc123000000', 'abc777000000', 'abd999000000', 'zzz']);
      expect([index.sizeOf('docker'), index.sizeOf('lxc'), index.sizeOf('nope'), index.size]).toEqual([2, 1, 0, 4]);
    });

    it("gives the record's facts through the container it holds", () => {
      const facts = { paused: true, restarting: false, pidStartTime: 42, pidStartTolerance: 7, hostname: 'h', cgroupHint: 'cg', state: 'paused', source: 'api', kubernetes: { namespace: 'ns', pod: 'p', container: 'c' } };
      const one = new ContainerIndex(anchor, '/proc');
      one.upsert('docker', { ...stopped('docker', 'aaaa00000000', 'n'), ...facts });
      const [c] = one.withId('aaaa00000000');
      expect(c && { paused: c.paused, restarting: c.restarting, pidStartTime: c.pidStartTime, pidStartTolerance: c.pidStartTolerance, hostname: c.hostname, cgroupHint: c.cgroupHint, state: c.state, source: c.source, kubernetes: c.kubernetes }).toEqual(facts);
      expect(c && [c.engine, c.id, c.names, c.running]).toEqual(['docker', 'aaaa00000000', ['n'], false]);
      // As plain data (croot show --json, logs): the record's facts and the index's.
      expect(JSON.parse(JSON.stringify(c))).toEqual({ engine: 'docker', id: 'aaaa00000000', names: ['n'], running: false, ...facts, liveness: 'stopped' });
    });

    it('lists a container once per name even when the engine repeats it', () => {
      expect(index.withName('x').map((c) => c.id).sort()).toEqual(['abc123000000', 'abc777000000']);
    });

    it('gives the matcher the same answers as a plain list of the same records', () => {
      const matcher = new NameMatcher();
      const ids = ['docker', 'podman', 'lxc'];
      const records = [...index.containers()].map((c) => c.record);
      for (const ref of ['abc1', 'abd', 'docker:x', 'podman:x', 'z', 'lxc:zzz', 'y', 'docker.x', 'lxc.zzz']) {
        expect([ref, matcher.find(ref, index, ids).record]).toEqual([ref, matcher.match(ref, records, ids)]);
      }
      for (const ref of ['ab', 'x', 'abc', 'nope', 'docker:abc7', 'zz', 'lxc:zz']) {
        const codeOf = (fn: () => unknown): unknown => {
          try {
            fn();
            return 'found';
          } catch (err) {
            return (err as { code: string }).code;
          }
        };
        expect([ref, codeOf(() => matcher.find(ref, index, ids))]).toEqual([ref, codeOf(() => matcher.match(ref, records, ids))]);
      }
    });

    it('keeps prefix search right when thousands of ids arrive and leave at once', () => {
      const big = new ContainerIndex(anchor, '/proc');
      const ids = Array.from({ length: 3000 }, (_, i) => (i * 2654435761 % 2 ** 32).toString(16).padStart(8, '0') + 'deadbeef');
      big.replaceAll('docker', ids.map((id) => stopped('docker', id, `n${id}`)));
      const sample = ids[1234] as string;
      expect(big.withIdPrefix(sample.slice(0, 8)).map((c) => c.id)).toEqual(ids.filter((id) => id.startsWith(sample.slice(0, 8))));
      big.replaceAll('docker', ids.slice(0, 10).map((id) => stopped('docker', id, `n${id}`)));
      expect(big.size).toBe(10);
      expect(big.withIdPrefix(sample.slice(0, 8))).toEqual([]);
      expect(big.withName(`n${sample}`)).toEqual([]);
    });

    it('keeps prefix search right over a long list applied in many batches, with removals and prefix searches in between', () => {
      const sliced = new ContainerIndex(anchor, '/proc');
      const ids = Array.from({ length: 2000 }, (_, i) => ((i * 2246822519) % 2 ** 32).toString(16).padStart(8, '0') + 'cafef00d');
      const live = new Set<string>();
      for (let at = 0; at < ids.length; at += 100) {
        const slice = ids.slice(at, at + 100);
        sliced.upsertMany('docker', slice.map((id) => stopped('docker', id, `n${id}`)));
        for (const id of slice) live.add(id);
        // Every fifth batch a few leave, and a prefix search comes.
        if ((at / 100) % 5 === 0) {
          for (const id of slice.slice(0, 3)) {
            sliced.remove('docker', id);
            live.delete(id);
          }
          const probe = (slice[50] as string).slice(0, 3);
          expect(sliced.withIdPrefix(probe).map((c) => c.id).sort()).toEqual([...live].filter((id) => id.startsWith(probe)).sort());
        }
      }
      for (const prefix of ['0', '7f', 'a', ids[1999]?.slice(0, 6) as string]) {
        expect([prefix, sliced.withIdPrefix(prefix).map((c) => c.id).sort()]).toEqual([prefix, [...live].filter((id) => id.startsWith(prefix)).sort()]);
      }
    });

    it('finds a container by a name the engine added to its names, and no longer by one it dropped', () => {
      const small = new ContainerIndex(anchor, '/proc');
      small.upsert('docker', stopped('docker', 'aaaa00000000', 'a'));
      small.upsert('docker', stopped('docker', 'aaaa00000000', 'a', 'b'));
      expect([small.withName('a').length, small.withName('b').map((c) => c.id)]).toEqual([1, ['aaaa00000000']]);
      small.upsert('docker', stopped('docker', 'aaaa00000000', 'b'));
      expect([small.withName('a'), small.withName('b').map((c) => c.id)]).toEqual([[], ['aaaa00000000']]);
    });

    it('keeps the other containers of a name when one that listed the name twice leaves or is renamed', () => {
      const small = new ContainerIndex(anchor, '/proc');
      small.upsert('docker', stopped('docker', 'aaaa00000000', 'x'));
      small.upsert('podman', stopped('podman', 'bbbb00000000', 'x', 'x'));
      small.remove('podman', 'bbbb00000000');
      expect(small.withName('x').map((c) => c.engine)).toEqual(['docker']);
      small.upsert('podman', stopped('podman', 'bbbb00000000', 'x', 'x'));
      small.upsert('podman', stopped('podman', 'bbbb00000000', 'y'));
      expect([small.withName('x').map((c) => c.engine), small.withName('y').map((c) => c.engine)]).toEqual([['docker'], ['podman']]);
      // Alone under its name, listed twice, and gone.
      small.upsert('lxc', stopped('lxc', 'solo', 'solo', 'solo'));
      small.remove('lxc', 'solo');
      expect(small.withName('solo')).toEqual([]);
    });

    it('follows renames and removals', () => {
      const small = new ContainerIndex(anchor, '/proc');
      small.upsert('docker', stopped('docker', 'aaaa00000000', 'old'));
      small.upsert('docker', stopped('docker', 'aaaa00000000', 'new'));
      expect(small.withName('old')).toEqual([]);
      expect(small.withName('new').map((c) => c.id)).toEqual(['aaaa00000000']);
      small.remove('docker', 'aaaa00000000');
      expect(small.withName('new')).toEqual([]);
      expect(small.withIdPrefix('aaaa')).toEqual([]);
      expect(small.size).toBe(0);
    });
  });

  describe('anchoring running containers', () => {
    it('holds a running init process with the start time and cgroup the kernel gives it', () => {
      const child = sleeper();
      const pid = child.pid as number;
      const index = new ContainerIndex(anchor, '/proc');
      index.upsert('static', { engine: 'static', id: 'a', names: ['a'], running: true, pid });
      const [c] = index.withId('a');
      expect(c?.liveness).toBe('running');
      expect(c?.pid).toBe(pid);
      expect(c?.startTime).toBe(kernelStat(pid).start);
      expect(c?.cgroup).toBe(kernelCgroup(pid));
      expect(c?.handle?.isAlive()).toBe(true);
    });

    it('marks a record whose PID started at another time than the engine says as reused', () => {
      const child = sleeper();
      const pid = child.pid as number;
      const index = new ContainerIndex(anchor, '/proc');
      index.upsert('docker', { engine: 'docker', id: 'b', names: ['b'], running: true, pid, pidStartTime: kernelStat(pid).start - 500 });
      expect(index.withId('b')[0]?.liveness).toBe('reused');
      expect(index.withId('b')[0]?.handle).toBeUndefined();
    });

    it('takes a process whose start lies within the record\'s tolerance as the container\'s, and one outside it as a reuse', () => {
      const child = sleeper();
      const pid = child.pid as number;
      const start = kernelStat(pid).start;
      const index = new ContainerIndex(anchor, '/proc');
      // As Docker records it: its own clock's time of the start, off by a few ticks, with a tolerance.
      index.upsert('docker', { engine: 'docker', id: 't1', names: ['t1'], running: true, pid, pidStartTime: start - 40, pidStartTolerance: 50 });
      const near = index.withId('t1')[0];
      expect([near?.liveness, near?.startTime, near?.handle?.isAlive()]).toEqual(['running', start, true]);
      index.upsert('docker', { engine: 'docker', id: 't2', names: ['t2'], running: true, pid, pidStartTime: start + 51, pidStartTolerance: 50 });
      expect(index.withId('t2')[0]?.liveness).toBe('reused');
      expect(index.withId('t2')[0]?.handle).toBeUndefined();
      // The same record again (a rename) keeps the process held; a new start time outside the tolerance is a reuse.
      const handle = near?.handle;
      index.upsert('docker', { engine: 'docker', id: 't1', names: ['t1b'], running: true, pid, pidStartTime: start - 40, pidStartTolerance: 50 });
      expect(index.withName('t1b')[0]?.handle).toBe(handle);
      index.upsert('docker', { engine: 'docker', id: 't1', names: ['t1b'], running: true, pid, pidStartTime: start - 400, pidStartTolerance: 50 });
      expect(index.withId('t1')[0]?.liveness).toBe('reused');
      expect(handle?.isAlive()).toBe(false);
    });

    it('keeps holding the process when the engine reports another start time that still fits the one the kernel gave', () => {
      const child = sleeper();
      const pid = child.pid as number;
      const start = kernelStat(pid).start;
      const index = new ContainerIndex(anchor, '/proc');
      // Docker's StartedAt read again, a few ticks off the first reading: still the kernel's process.
      index.upsert('docker', { engine: 'docker', id: 'd1', names: ['d1'], running: true, pid, pidStartTime: start - 40, pidStartTolerance: 50 });
      const handle = index.withId('d1')[0]?.handle;
      index.upsert('docker', { engine: 'docker', id: 'd1', names: ['d1'], running: true, pid, pidStartTime: start - 30, pidStartTolerance: 50 });
      const c = index.withId('d1')[0];
      expect([c?.liveness, c?.handle === handle, handle?.isAlive()]).toEqual(['running', true, true]);
    });

    it('takes a start exactly the tolerance away as the container\'s, and checks the process again when the tolerance changes', () => {
      const child = sleeper();
      const pid = child.pid as number;
      const start = kernelStat(pid).start;
      const index = new ContainerIndex(anchor, '/proc');
      index.upsert('docker', { engine: 'docker', id: 'e1', names: ['e1'], running: true, pid, pidStartTime: start + 50, pidStartTolerance: 50 });
      const edge = index.withId('e1')[0];
      const handle = edge?.handle;
      expect([edge?.liveness, handle?.isAlive()]).toEqual(['running', true]);
      // The same recorded start with a narrower tolerance no longer fits the process the kernel shows.
      index.upsert('docker', { engine: 'docker', id: 'e1', names: ['e1'], running: true, pid, pidStartTime: start + 50, pidStartTolerance: 10 });
      expect([edge?.liveness, edge?.handle, handle?.isAlive()]).toEqual(['reused', undefined, false]);
    });

    it('anchors without the cgroup file, reads the cgroup when first asked for, and keeps it', () => {
      const child = sleeper();
      const pid = child.pid as number;
      // A proc root holding the process's stat only: anchoring must not need its cgroup.
      const procRoot = mkdtempSync(join(tmpdir(), 'croot-index-proc-'));
      try {
        mkdirSync(join(procRoot, String(pid)));
        writeFileSync(join(procRoot, String(pid), 'stat'), readFileSync(`/proc/${pid}/stat`));
        const index = new ContainerIndex(anchor, procRoot);
        index.upsert('static', { engine: 'static', id: 'cg', names: ['cg'], running: true, pid });
        const c = index.withId('cg')[0];
        expect(c?.liveness).toBe('running');
        writeFileSync(join(procRoot, String(pid), 'cgroup'), readFileSync(`/proc/${pid}/cgroup`));
        expect(c?.cgroup).toBe(kernelCgroup(pid));
        writeFileSync(join(procRoot, String(pid), 'cgroup'), '0::/elsewhere\n');
        expect(c?.cgroup).toBe(kernelCgroup(pid));
      } finally {
        rmSync(procRoot, { recursive: true, force: true });
      }
    });

    it('gives no cgroup for a process that exited before it was asked for', async () => {
      const child = sleeper();
      const pid = child.pid as number;
      const index = new ContainerIndex(anchor, '/proc');
      index.upsert('static', { engine: 'static', id: 'cx', names: ['cx'], running: true, pid });
      const c = index.withId('cx')[0];
      child.kill('SIGKILL');
      await exitOf(child);
      // The /proc anchor announces no exit: the index still says running, but the process is not there to read.
      expect(c?.liveness).toBe('running');
      expect(c?.cgroup).toBeUndefined();
    });

    it('gives no cgroup for an init process that became a zombie before it was asked for (the kernel shows a zombie in the root cgroup)', async () => {
      const { parent, pid } = await unreapedChild();
      const index = new ContainerIndex(anchor, '/proc');
      index.upsert('static', { engine: 'static', id: 'zc', names: ['zc'], running: true, pid });
      const c = index.withId('zc')[0];
      expect(c?.liveness).toBe('running');
      process.kill(pid, 'SIGKILL');
      for (let i = 0; i < 200 && kernelStat(pid).state !== 'Z'; i++) await new Promise((r) => setTimeout(r, 10));
      expect(kernelStat(pid).state).toBe('Z');
      expect(readFileSync(`/proc/${pid}/cgroup`, 'utf8').length).toBeGreaterThan(0);
      expect(c?.cgroup).toBeUndefined();
      parent.kill('SIGKILL');
      await exitOf(parent);
    });

    it('anchors a record that names its start time when it is first read: a process gone by then is exited, never running', async () => {
      const child = sleeper();
      const pid = child.pid as number;
      const start = kernelStat(pid).start;
      // Gone (and reaped) before the engine's record of it arrives and before anything reads the entry; with
      // the record already in, the background pass could anchor the killed but not yet reaped process.
      child.kill('SIGKILL');
      await exitOf(child);
      const index = new ContainerIndex(anchor, '/proc');
      index.upsert('docker', { engine: 'docker', id: 'w1', names: ['w1'], running: true, pid, pidStartTime: start });
      const c = index.withId('w1')[0];
      expect([c?.liveness, c?.handle]).toEqual(['exited', undefined]);
    });

    it('anchors owed entries in a background pass, a slice per turn of the event loop, with no read', async () => {
      const live = sleeper();
      const pid = live.pid as number;
      const start = kernelStat(pid).start;
      // The real /proc anchor, counting the processes it is asked to hold.
      const counting = new CountingAnchor(anchor);
      const changes: string[] = [];
      const index = new ContainerIndex(counting, '/proc', (ch) => changes.push(`${ch.kind} ${ch.container.id}`));
      const ids = Array.from({ length: 600 }, (_, i) => `bg${i}`);
      index.upsertMany('docker', ids.map((id) => ({ engine: 'docker', id, names: [id], running: true, pid, pidStartTime: start })));
      // In the index and findable at once; none of them held yet.
      expect(index.withName('bg599').map((c) => c.id)).toEqual(['bg599']);
      expect(counting.opened).toBe(0);
      await new Promise((r) => setImmediate(r));
      expect(counting.opened).toBeGreaterThan(0);
      expect(counting.opened).toBeLessThan(ids.length);
      for (let i = 0; i < 20 && counting.opened < ids.length; i++) await new Promise((r) => setImmediate(r));
      expect(counting.opened).toBe(ids.length);
      // Reading them now opens nothing more: they were held already, each by the process the kernel shows.
      for (const id of ids) expect([id, index.withId(id)[0]?.liveness, index.withId(id)[0]?.startTime]).toEqual([id, 'running', start]);
      expect(counting.opened).toBe(ids.length);
      expect(changes.filter((c) => !c.startsWith('added'))).toEqual([]);
    });

    it('holds the background pass while asked to: a read still anchors its own entry, the release anchors the rest', async () => {
      const { pid, start, counting, index } = countedIndex();
      const release = index.holdBackgroundAnchoring();
      const second = index.holdBackgroundAnchoring();
      const ids = Array.from({ length: 300 }, (_, i) => `h${i}`);
      index.upsertMany('docker', ids.map((id) => ({ engine: 'docker', id, names: [id], running: true, pid, pidStartTime: start })));
      await turns(5);
      expect(counting.opened).toBe(0);
      expect([index.withName('h7')[0]?.liveness, index.withName('h7')[0]?.startTime]).toEqual(['running', start]);
      expect(counting.opened).toBe(1);
      // Holds nest: the pass waits for the last release; a release given twice counts once.
      second();
      second();
      await turns(5);
      expect(counting.opened).toBe(1);
      release();
      await turns(5);
      expect(counting.opened).toBe(ids.length);
    });

    it('tells when nothing is owed: at once when nothing is, else once the pass has held every owed process', async () => {
      const { pid, start, counting, index } = countedIndex();
      let anchoredAt: number | undefined;
      await index.whenAnchored();
      expect(counting.opened).toBe(0);
      const release = index.holdBackgroundAnchoring();
      const ids = Array.from({ length: 700 }, (_, i) => `w${i}`);
      index.upsertMany('docker', ids.map((id) => ({ engine: 'docker', id, names: [id], running: true, pid, pidStartTime: start })));
      const done = index.whenAnchored().then(() => (anchoredAt = counting.opened));
      for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
      // Held: still owed, so not yet.
      expect(anchoredAt).toBeUndefined();
      release();
      await done;
      // Every one held by then, by the process the kernel shows.
      expect(anchoredAt).toBe(ids.length);
      expect(index.withId('w699')[0]?.startTime).toBe(start);
      expect(counting.opened).toBe(ids.length);
    });

    it('anchors a waiting container when its PID, start time or handle is the first thing read', () => {
      const { pid, start, counting, index } = countedIndex();
      const release = index.holdBackgroundAnchoring();
      index.upsertMany('docker', ['r0', 'r1', 'r2'].map((id) => ({ engine: 'docker', id, names: [id], running: true, pid, pidStartTime: start })));
      expect(counting.opened).toBe(0);
      expect(index.withId('r0')[0]?.pid).toBe(pid);
      expect(index.withId('r1')[0]?.startTime).toBe(start);
      expect(index.withId('r2')[0]?.handle?.isAlive()).toBe(true);
      expect(counting.opened).toBe(3);
      release();
    });

    it('holds the background pass when asked after owed entries arrived: nothing is anchored until the release', async () => {
      const { pid, start, counting, index } = countedIndex();
      const ids = Array.from({ length: 10 }, (_, i) => `l${i}`);
      index.upsertMany('docker', ids.map((id) => ({ engine: 'docker', id, names: [id], running: true, pid, pidStartTime: start })));
      const release = index.holdBackgroundAnchoring();
      await turns(5);
      expect(counting.opened).toBe(0);
      release();
      await turns(5);
      expect(counting.opened).toBe(ids.length);
    });

    it('anchors in the background what arrives after an earlier pass has finished', async () => {
      const { pid, start, counting, index } = countedIndex();
      const load = (prefix: string): void =>
        index.upsertMany('docker', Array.from({ length: 10 }, (_, i) => ({ engine: 'docker', id: `${prefix}${i}`, names: [`${prefix}${i}`], running: true, pid, pidStartTime: start })));
      load('p');
      await turns(5);
      expect(counting.opened).toBe(10);
      load('q');
      await turns(5);
      expect(counting.opened).toBe(20);
      expect(index.withId('q9')[0]?.liveness).toBe('running');
      expect(counting.opened).toBe(20);
    });

    it('never holds the process of a container removed, or of an index cleared, before its anchoring was due', async () => {
      const live = sleeper();
      const pid = live.pid as number;
      const start = kernelStat(pid).start;
      const record = (id: string): ContainerRecord => ({ engine: 'docker', id, names: [id], running: true, pid, pidStartTime: start });
      const counting = new CountingAnchor(anchor);
      const index = new ContainerIndex(counting, '/proc');
      index.upsertMany('docker', [record('o0'), record('o1'), record('o2')]);
      const removed = index.withId('o0')[0];
      index.remove('docker', 'o0');
      const clearedCounting = new CountingAnchor(anchor);
      const cleared = new ContainerIndex(clearedCounting, '/proc');
      cleared.upsertMany('docker', [record('c0')]);
      const kept = cleared.withId('c0')[0];
      cleared.clear();
      await turns(5);
      // Whoever still holds a let-go container reads it without the index opening anything for it.
      expect([removed?.handle, kept?.handle]).toEqual([undefined, undefined]);
      expect([counting.opened, clearedCounting.opened]).toEqual([2, 0]);
    });

    it('sees an exit through the handle, also while the process is a zombie, and never brings the PID back', async () => {
      // A child that is not reaped stays a zombie: spawn through a shell that keeps it so.
      const { parent, pid } = await unreapedChild();
      const index = new ContainerIndex(anchor, '/proc');
      const changes: IndexChange[] = [];
      const watched = new ContainerIndex(anchor, '/proc', (c) => changes.push(c));
      const record: ContainerRecord = { engine: 'static', id: 'z', names: ['z'], running: true, pid };
      index.upsert('static', record);
      watched.upsert('static', record);
      const c = index.withId('z')[0];
      expect(c?.handle?.isAlive()).toBe(true);
      process.kill(pid, 'SIGKILL');
      for (let i = 0; i < 200 && kernelStat(pid).state !== 'Z'; i++) await new Promise((r) => setTimeout(r, 10));
      expect(kernelStat(pid).state).toBe('Z');
      expect(c?.handle?.isAlive()).toBe(false);
      index.markExited(c as NonNullable<typeof c>);
      expect(c?.liveness).toBe('exited');
      // The engine reports the same PID again (a stale pidfile): it stays dead.
      index.upsert('static', { ...record, names: ['z', 'zz'] });
      expect(index.withName('zz')[0]?.liveness).toBe('exited');
      parent.kill('SIGKILL');
      await exitOf(parent);
      expect(changes.map((ch) => ch.kind)).toEqual(['added']);
    });

    it('anchors again when the engine reports a new PID', () => {
      const first = sleeper();
      const second = sleeper();
      const index = new ContainerIndex(anchor, '/proc');
      index.upsert('static', { engine: 'static', id: 'r', names: ['r'], running: true, pid: first.pid as number });
      index.upsert('static', { engine: 'static', id: 'r', names: ['r'], running: true, pid: second.pid as number });
      const c = index.withId('r')[0];
      expect(c?.pid).toBe(second.pid);
      expect(c?.startTime).toBe(kernelStat(second.pid as number).start);
      expect(c?.liveness).toBe('running');
    });

    it('releases the handle of a container the engine removes', () => {
      const child = sleeper();
      const index = new ContainerIndex(anchor, '/proc');
      index.upsert('static', { engine: 'static', id: 'q', names: ['q'], running: true, pid: child.pid as number });
      const handle = index.withId('q')[0]?.handle;
      index.remove('static', 'q');
      expect(handle?.isAlive()).toBe(false);
      expect(index.withId('q')).toEqual([]);
    });

    it('keeps the same handle while the engine reports the same PID and start time again, with new names', () => {
      const child = sleeper();
      const pid = child.pid as number;
      const start = kernelStat(pid).start;
      const index = new ContainerIndex(anchor, '/proc');
      index.upsert('docker', { engine: 'docker', id: 'k', names: ['k'], running: true, pid, pidStartTime: start });
      const handle = index.withId('k')[0]?.handle;
      expect(handle?.isAlive()).toBe(true);
      index.upsert('docker', { engine: 'docker', id: 'k', names: ['k', 'k2'], running: true, pid, pidStartTime: start });
      // An engine that does not report start times: the kernel's is the one the index holds.
      index.upsert('docker', { engine: 'docker', id: 'k', names: ['k3'], running: true, pid });
      const c = index.withName('k3')[0];
      expect(c?.handle).toBe(handle);
      expect(handle?.isAlive()).toBe(true);
      expect(c?.liveness).toBe('running');
      expect(c?.startTime).toBe(start);
    });

    it('marks a running container reused when the engine reports its PID with another start time', () => {
      const child = sleeper();
      const pid = child.pid as number;
      const start = kernelStat(pid).start;
      const index = new ContainerIndex(anchor, '/proc');
      index.upsert('docker', { engine: 'docker', id: 'u', names: ['u'], running: true, pid, pidStartTime: start });
      const handle = index.withId('u')[0]?.handle;
      index.upsert('docker', { engine: 'docker', id: 'u', names: ['u'], running: true, pid, pidStartTime: start + 500 });
      const c = index.withId('u')[0];
      expect(c?.liveness).toBe('reused');
      expect(c?.handle).toBeUndefined();
      expect(handle?.isAlive()).toBe(false);
    });

    it('holds no process for a record that is not running, or whose PID is 0 or missing', () => {
      const child = sleeper();
      const pid = child.pid as number;
      const index = new ContainerIndex(anchor, '/proc');
      index.upsert('static', { engine: 'static', id: 's1', names: [], running: false, pid });
      index.upsert('static', { engine: 'static', id: 's2', names: [], running: true, pid: 0 });
      index.upsert('static', { engine: 'static', id: 's3', names: [], running: true });
      for (const id of ['s1', 's2', 's3']) {
        const c = index.withId(id)[0];
        expect([id, c?.liveness, c?.pid, c?.handle, c?.startTime]).toEqual([id, 'stopped', undefined, undefined, undefined]);
      }
      // A running container that stops: its handle is released and its PID forgotten.
      index.upsert('static', { engine: 'static', id: 's4', names: [], running: true, pid });
      const handle = index.withId('s4')[0]?.handle;
      expect(handle?.isAlive()).toBe(true);
      index.upsert('static', { engine: 'static', id: 's4', names: [], running: false });
      expect(index.withId('s4')[0]?.liveness).toBe('stopped');
      expect(index.withId('s4')[0]?.pid).toBeUndefined();
      expect(handle?.isAlive()).toBe(false);
    });

    it('tells its listener what changed: added, updated only when a fact changed, removed, and an exit seen by a request', () => {
      const child = sleeper();
      const pid = child.pid as number;
      const changes: string[] = [];
      const index = new ContainerIndex(anchor, '/proc', (c) => changes.push(`${c.kind} ${c.container.id}`));
      const record: ContainerRecord = { engine: 'static', id: 'e', names: ['e', 'f'], running: true, pid, hostname: 'h' };
      index.upsert('static', record);
      index.upsert('static', { ...record, names: [...record.names] });
      index.upsert('static', { ...record, hostname: 'h2' });
      index.upsert('static', { ...record, hostname: 'h2', names: ['f', 'e'] });
      const pod = { namespace: 'ns', pod: 'p', container: 'c' };
      index.upsert('static', { ...record, hostname: 'h2', names: ['f', 'e'], kubernetes: pod });
      index.upsert('static', { ...record, hostname: 'h2', names: ['f', 'e'], kubernetes: { ...pod } });
      index.upsert('static', { ...record, hostname: 'h2', names: ['f', 'e'], kubernetes: { ...pod, pod: 'q' } });
      index.remove('static', 'nope');
      index.remove('nope', 'e');
      const c = index.withId('e')[0] as NonNullable<ReturnType<typeof index.withId>[0]>;
      const handle = c.handle;
      index.markExited(c);
      index.markExited(c);
      expect(c.liveness).toBe('exited');
      expect(handle?.isAlive()).toBe(false);
      index.remove('static', 'e');
      expect(changes).toEqual(['added e', 'updated e', 'updated e', 'updated e', 'updated e', 'updated e', 'removed e']);
      // An exit seen after the engine dropped the container tells nobody.
      const gone = new ContainerIndex(anchor, '/proc', (ch) => changes.push(`${ch.kind} ${ch.container.id}`));
      gone.upsert('static', { ...record, id: 'g' });
      const g = gone.withId('g')[0] as NonNullable<ReturnType<typeof gone.withId>[0]>;
      gone.clear();
      gone.markExited(g);
      expect(changes.slice(7)).toEqual(['added g']);
    });

    it('tells its listener when the pod names appear, change in any part, or go', () => {
      const changes: string[] = [];
      const index = new ContainerIndex(anchor, '/proc', (c) => changes.push(c.kind));
      const base = stopped('containerd', 'aaaa00000000', 'k');
      const pod = { namespace: 'ns', pod: 'p', container: 'c' };
      index.upsert('containerd', base);
      index.upsert('containerd', { ...base, kubernetes: pod });
      index.upsert('containerd', { ...base, kubernetes: { ...pod } });
      index.upsert('containerd', { ...base, kubernetes: { ...pod, namespace: 'ns2' } });
      index.upsert('containerd', { ...base, kubernetes: { ...pod, namespace: 'ns2', container: 'c2' } });
      expect(index.withId('aaaa00000000')[0]?.kubernetes).toEqual({ namespace: 'ns2', pod: 'p', container: 'c2' });
      index.upsert('containerd', base);
      expect(changes).toEqual(['added', 'updated', 'updated', 'updated', 'updated']);
      expect(index.withId('aaaa00000000')[0]?.kubernetes).toBeUndefined();
    });

    it('forgets everything and releases every handle on clear', () => {
      const child = sleeper();
      const index = new ContainerIndex(anchor, '/proc');
      index.upsert('docker', { engine: 'docker', id: 'abcdef0123456789', names: ['c'], running: true, pid: child.pid as number });
      index.upsert('podman', stopped('podman', 'abcdef9999999999', 'd'));
      const handle = index.withId('abcdef0123456789')[0]?.handle;
      index.clear();
      expect(index.size).toBe(0);
      expect(handle?.isAlive()).toBe(false);
      expect([index.withId('abcdef0123456789'), index.withName('c'), index.withName('d'), index.withIdPrefix('abcdef')]).toEqual([[], [], [], []]);
      expect([...index.containers()]).toEqual([]);
    });

    it('files a record under the engine it is given, whatever the record says', () => {
      const index = new ContainerIndex(anchor, '/proc');
      index.upsert('podman', stopped('docker', 'abcdef0123456789', 'w'));
      expect(index.withId('abcdef0123456789')[0]?.engine).toBe('podman');
    });

    it('records a PID that does not exist as exited', () => {
      const index = new ContainerIndex(anchor, '/proc');
      index.upsert('static', { engine: 'static', id: 'n', names: ['n'], running: true, pid: 4194304 + 1 });
      expect(index.withId('n')[0]?.liveness).toBe('exited');
    });
  });
  describe('exits announced by the anchor', () => {
    /**
     * Holds this test's children as the /proc anchor does, and announces an
     * exit when Node has reaped the child: what the pidfd anchor does when the
     * kernel makes the pidfd readable.
     */
    class ReapAnnouncingAnchor implements ProcessAnchor {
      constructor(private readonly known: Map<number, ChildProcess>) {}
      mode(): ProcessAnchorMode {
        return { kind: 'pidfd' };
      }
      open(pid: number, onExit: () => void): ProcessHandle | undefined {
        const handle = anchor.open(pid);
        this.known.get(pid)?.once('exit', () => setImmediate(onExit));
        return handle;
      }
    }

    it('marks a running container exited when its init process ends, with no request', async () => {
      const child = sleeper();
      const pid = child.pid as number;
      const changes: string[] = [];
      const index = new ContainerIndex(new ReapAnnouncingAnchor(new Map([[pid, child]])), '/proc', (c) => changes.push(`${c.kind} ${c.container.id} ${c.container.liveness}`));
      index.upsert('static', { engine: 'static', id: 'a', names: ['a'], running: true, pid });
      const announced = new Promise((resolve) => child.once('exit', () => setImmediate(() => setImmediate(resolve))));
      child.kill('SIGKILL');
      await announced;
      expect(kernelStat.bind(null, pid)).toThrow();
      expect(changes).toEqual(['added a running', 'updated a exited']);
      expect(index.withId('a')[0]?.handle).toBeUndefined();
    });

    it('anchors at once a waiting container whose engine now gives no start time, so its exit is announced', async () => {
      const child = sleeper();
      const pid = child.pid as number;
      const start = kernelStat(pid).start;
      const changes: string[] = [];
      // The listener reads nothing that anchoring learns, so it anchors nothing itself.
      const index = new ContainerIndex(new ReapAnnouncingAnchor(new Map([[pid, child]])), '/proc', (c) => changes.push(`${c.kind} ${c.container.id}`));
      const release = index.holdBackgroundAnchoring();
      index.upsert('static', { engine: 'static', id: 'a', names: ['a'], running: true, pid, pidStartTime: start });
      index.upsert('static', { engine: 'static', id: 'a', names: ['a', 'b'], running: true, pid });
      const announced = new Promise((resolve) => child.once('exit', () => setImmediate(() => setImmediate(resolve))));
      child.kill('SIGKILL');
      await announced;
      release();
      expect(changes).toEqual(['added a', 'updated a', 'updated a']);
      expect(index.withId('a')[0]?.liveness).toBe('exited');
    });

    it('ignores the exit of a process it no longer holds for that container', async () => {
      const first = sleeper();
      const second = sleeper();
      const changes: string[] = [];
      const known = new Map([
        [first.pid as number, first],
        [second.pid as number, second],
      ]);
      const index = new ContainerIndex(new ReapAnnouncingAnchor(known), '/proc', (c) => changes.push(`${c.kind} ${c.container.id} ${c.container.liveness}`));
      index.upsert('static', { engine: 'static', id: 'a', names: ['a'], running: true, pid: first.pid as number });
      // The engine reports a new init process: the old one's end is no news about the container.
      index.upsert('static', { engine: 'static', id: 'a', names: ['a'], running: true, pid: second.pid as number });
      index.upsert('static', { engine: 'static', id: 'b', names: ['b'], running: true, pid: first.pid as number });
      index.remove('static', 'b');
      const announced = new Promise((resolve) => first.once('exit', () => setImmediate(() => setImmediate(resolve))));
      first.kill('SIGKILL');
      await announced;
      expect(changes).toEqual(['added a running', 'updated a running', 'added b running', 'removed b running']);
      expect(index.withId('a')[0]?.liveness).toBe('running');
    });
  });

  it('keeps prefix search right when two engines hold the same digest id and either leaves', () => {
    const index = new ContainerIndex(anchor, '/proc');
    for (const leaving of ['docker', 'podman']) {
      index.upsert('docker', stopped('docker', 'abcabc000000', 'x'));
      index.upsert('podman', stopped('podman', 'abcabc000000', 'y'));
      index.remove(leaving, 'abcabc000000');
      expect(index.withIdPrefix('abcabc').map((c) => c.engine)).toEqual([leaving === 'docker' ? 'podman' : 'docker']);
      index.clear();
    }
  });
});
