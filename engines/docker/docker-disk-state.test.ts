import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ContainerRecord } from '../../core/engine.js';
import { DockerDiskState, nodeDockerDiskFs, type DockerDiskFs } from './docker-disk-state.js';
import { startTimeOf } from '../../test/support/processes.js';
import { bootTimeTruth, clockTicksTruth } from '../../test/support/truth.js';

/** PCP's QA tarballs and 761.out, see test/fixtures/pcp-qa/README.md. */
const FIXTURES = resolve(__dirname, '../../test/fixtures/pcp-qa');

/** What 761.out expects for one tarball: metric -> instance id -> printed value. */
type Expected = Map<string, Map<string, string>>;

function parse761(text: string): Map<string, Expected> {
  const out = new Map<string, Expected>();
  let tarball: string | undefined;
  let metric: string | undefined;
  for (const line of text.split('\n')) {
    const head = /^== Checking values for active containers in (\S+\.tgz)$/.exec(line);
    if (head?.[1] !== undefined) {
      tarball = head[1];
      out.set(tarball, new Map());
      continue;
    }
    if (line.startsWith('== done')) {
      tarball = undefined;
      continue;
    }
    if (tarball === undefined) continue;
    const metricLine = /^(containers\.[a-z.]+)$/.exec(line);
    if (metricLine?.[1] !== undefined) {
      metric = metricLine[1];
      out.get(tarball)?.set(metric, new Map());
      continue;
    }
    const inst = /^\s+inst \[N or "([^"]+)"\] value (.*)$/.exec(line);
    if (inst?.[1] !== undefined && inst[2] !== undefined && metric !== undefined) {
      out.get(tarball)?.get(metric)?.set(inst[1], inst[2].replace(/^"(.*)"$/, '$1'));
    }
  }
  return out;
}

const expectations = parse761(readFileSync(join(FIXTURES, '761.out'), 'utf8'));
const dockerTarballs = [...expectations.keys()].filter((t) => t.startsWith('containers-docker-'));

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'croot-docker-disk-'));
});
afterAll(() => {
  rmSync(scratch, { recursive: true, force: true });
});

function unpack(tarball: string): string {
  const root = mkdtempSync(join(scratch, 'root-'));
  execFileSync('tar', ['-xzf', join(FIXTURES, tarball), '-C', root]);
  return root;
}

function byId(records: readonly ContainerRecord[]): Map<string, ContainerRecord> {
  return new Map(records.map((r) => [r.id, r]));
}

/** The real fs, counting calls. */
function countingFs(): DockerDiskFs & { counts: Record<'readdir' | 'stat' | 'readFile', number>; reads: string[] } {
  const counts = { readdir: 0, stat: 0, readFile: 0 };
  const reads: string[] = [];
  return {
    counts,
    reads,
    readdir: (p) => (counts.readdir++, nodeDockerDiskFs.readdir(p)),
    stat: (p) => (counts.stat++, nodeDockerDiskFs.stat(p)),
    readFile: (p) => (counts.readFile++, reads.push(p), nodeDockerDiskFs.readFile(p)),
  };
}

async function eventually<T>(probe: () => Promise<T | undefined>, ms = 3000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('DockerDiskState', () => {
  it('finds every Docker tarball of PCP QA test 761', () => {
    expect(dockerTarballs).toHaveLength(7);
  });

  describe.each(dockerTarballs)('on PCP QA fixture %s', (tarball) => {
    let records: readonly ContainerRecord[];
    let expected: Expected;
    let root: string;
    beforeAll(async () => {
      root = unpack(tarball);
      expected = expectations.get(tarball) as Expected;
      const state = new DockerDiskState({ dockerDir: join(root, 'var/lib/docker'), procRoot: '/proc', watch: false });
      records = await state.containers();
      state.close();
    });

    it('reports the same container ids as PCP', () => {
      const ids = [...(expected.get('containers.engine')?.keys() ?? [])].sort();
      expect(ids.length).toBeGreaterThan(0);
      expect(records.map((r) => r.id).sort()).toEqual(ids);
      expect(records.every((r) => r.engine === 'docker' && r.source === 'disk')).toBe(true);
    });

    it('reports the names PCP shows, and no name where PCP prints "?"', () => {
      for (const [id, name] of expected.get('containers.name') ?? []) {
        // PCP prints "?" for a config without a Name key; croot gives such a
        // container no name at all, so "?" never matches it.
        expect([id, byId(records).get(id)?.names]).toEqual([id, name === '?' ? [] : [name]]);
      }
    });

    it('reports running, paused and restarting as PCP does', () => {
      for (const [metric, key] of [
        ['containers.state.running', 'running'],
        ['containers.state.paused', 'paused'],
        ['containers.state.restarting', 'restarting'],
      ] as const) {
        for (const [id, value] of expected.get(metric) ?? []) {
          expect([metric, id, byId(records).get(id)?.[key] === true]).toEqual([metric, id, value === '1']);
        }
      }
    });

    it('reports a PID exactly for the containers PCP shows one for', () => {
      const pids = expected.get('containers.pid') ?? new Map<string, string>();
      for (const record of records) {
        const want = pids.get(record.id);
        expect([record.id, record.pid]).toEqual([record.id, want === undefined ? undefined : Number(want)]);
      }
    });
  });

  it('reads the name-less container of 1.10.3-005 as having no names (PCP: "?")', async () => {
    const root = unpack('containers-docker-1.10.3-root-005.tgz');
    const state = new DockerDiskState({ dockerDir: join(root, 'var/lib/docker'), procRoot: '/proc', watch: false });
    const rec = byId(await state.containers()).get('e137109040f53c67031325695ae541a3bf383c7b015af0fd718a412cc0f32da1');
    expect(rec?.names).toEqual([]);
    expect(rec?.hostname).toBe('e137109040f5');
  });

  describe('on the titan fixture, whose cgroup tree shows where Docker put the container', () => {
    const id = 'e41d0176fce811b3065a604031ff6629c850d76747a29604ff930794596052bb';
    let root: string;
    let record: ContainerRecord | undefined;
    beforeAll(async () => {
      root = unpack('containers-docker-titan-root-007.tgz');
      const state = new DockerDiskState({ dockerDir: join(root, 'var/lib/docker'), procRoot: '/proc', watch: false });
      record = byId(await state.containers()).get(id);
    });

    it('takes the cgroup hint from hostconfig.json\'s CgroupParent', () => {
      expect(record?.cgroupHint).toBe(`containers.slice/9420592e-e762-4856-ab83-0262e6b1ac7e/${id}`);
    });

    it('gives a hint that exists as a cgroup in every v1 hierarchy of the tarball', () => {
      const controllers = readdirSync(join(root, 'sys/fs/cgroup'));
      expect(controllers.length).toBeGreaterThanOrEqual(10);
      for (const controller of controllers) {
        expect([controller, existsSync(join(root, 'sys/fs/cgroup', controller, record?.cgroupHint ?? 'none'))]).toEqual([controller, true]);
      }
    });

    it('reads the Kubernetes-style hostname from Config.Hostname', () => {
      expect(record?.hostname).toBe('25ad5c4c-4dd2-49a4-ab75-5e61e4568b0b');
      expect(record?.names).toEqual(['25ad5c4c-4dd2-49a4-ab75-5e61e4568b0b']);
    });
  });

  describe('index refresh', () => {
    let dockerDir: string;
    let clock: number;
    let fs: ReturnType<typeof countingFs>;
    let state: DockerDiskState;
    const containersDir = () => join(dockerDir, 'containers');
    const newId = 'f00dfeed'.repeat(8);
    const template = '2cb8e83aa13ae05b7d11146ed0daae3607cd1a73d793544e06411fd8f4afc255';

    beforeEach(() => {
      dockerDir = join(unpack('containers-docker-1.3.2-root-001.tgz'), 'var/lib/docker');
      clock = 1_000_000;
      fs = countingFs();
      state = new DockerDiskState({ dockerDir, procRoot: '/proc', fs, watch: false, checkIntervalMs: 1000, now: () => clock });
    });
    afterEach(() => state.close());

    function addContainer(id: string, name: string): void {
      const dir = join(containersDir(), id);
      cpSync(join(containersDir(), template), dir, { recursive: true });
      const config = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')) as Record<string, unknown>;
      writeFileSync(join(dir, 'config.json'), JSON.stringify({ ...config, ID: id, Name: `/${name}` }));
    }

    it('touches no file on a lookup within the check interval, and returns the same array', async () => {
      const first = await state.containers();
      expect(first).toHaveLength(3);
      const before = { ...fs.counts };
      clock += 999;
      const second = await state.containers();
      expect(second).toBe(first);
      expect(fs.counts).toEqual(before);
    });

    it('only stats, never re-reads, when the interval passed and nothing changed', async () => {
      const first = await state.containers();
      const before = { ...fs.counts };
      clock += 1000;
      expect(await state.containers()).toBe(first);
      expect(fs.counts.stat).toBeGreaterThan(before.stat);
      expect(fs.counts.readFile).toBe(before.readFile);
      expect(fs.counts.readdir).toBe(before.readdir);
      expect(Object.isFrozen(first)).toBe(true);
    });

    it('sees a container folder added, reading only its files', async () => {
      const first = await state.containers();
      addContainer(newId, 'added_later');
      fs.reads.length = 0;
      clock += 1000;
      const second = await state.containers();
      expect(second).not.toBe(first);
      expect(byId(second).get(newId)?.names).toEqual(['added_later']);
      expect(fs.reads.every((p) => p.includes(newId))).toBe(true);
      // Unchanged containers keep their record objects.
      expect(byId(second).get(template)).toBe(byId(first).get(template));
    });

    it('sees a changed config file', async () => {
      await state.containers();
      const file = join(containersDir(), template, 'config.json');
      const config = JSON.parse(readFileSync(file, 'utf8')) as { State: Record<string, unknown> };
      writeFileSync(file, JSON.stringify({ ...config, Name: '/renamed', State: { ...config.State, Running: false, Pid: 0 } }));
      clock += 1000;
      const rec = byId(await state.containers()).get(template);
      expect(rec?.names).toEqual(['renamed']);
      expect(rec?.running).toBe(false);
      expect(rec?.pid).toBeUndefined();
    });

    it('drops a container whose folder is removed', async () => {
      await state.containers();
      rmSync(join(containersDir(), template), { recursive: true });
      clock += 1000;
      expect(byId(await state.containers()).has(template)).toBe(false);
      expect(state.size).toBe(2);
    });

    it('reports an absent containers folder, then picks it up when it appears', async () => {
      renameSync(containersDir(), `${containersDir()}.away`);
      expect(await state.containers()).toEqual([]);
      expect(state.unavailableReason()).toBe(`${containersDir()} absent`);
      renameSync(`${containersDir()}.away`, containersDir());
      clock += 1000;
      expect((await state.containers()).map((r) => r.names[0]).sort()).toEqual(['desperate_turing', 'dreamy_elion', 'jolly_sinoussi']);
      expect(state.unavailableReason()).toBeUndefined();
    });

    it('with fs.watch, sees changes before the check interval is due', async () => {
      const watching = new DockerDiskState({ dockerDir, procRoot: '/proc', checkIntervalMs: 1e9 });
      try {
        expect(await watching.containers()).toHaveLength(3);
        addContainer(newId, 'watched');
        await eventually(async () => byId(await watching.containers()).get(newId));
        // Docker replaces config files by rename: a new inode in the container's folder.
        const file = join(containersDir(), newId, 'config.json');
        const config = JSON.parse(readFileSync(file, 'utf8')) as Record<string, unknown>;
        writeFileSync(`${file}.tmp`, JSON.stringify({ ...config, Name: '/watched_renamed' }));
        renameSync(`${file}.tmp`, file);
        const renamed = await eventually(async () => {
          const names = byId(await watching.containers()).get(newId)?.names;
          return names?.[0] === 'watched_renamed' ? names : undefined;
        });
        expect(renamed).toEqual(['watched_renamed']);
      } finally {
        watching.close();
      }
    });
  });

  describe('PID start times', () => {
    let dockerDir: string;
    const id = 'abcdef01'.repeat(8);
    beforeEach(() => {
      dockerDir = mkdtempSync(join(scratch, 'pid-'));
      mkdirSync(join(dockerDir, 'containers', id), { recursive: true });
    });

    async function recordWith(startedAt: string): Promise<ContainerRecord | undefined> {
      writeFileSync(
        join(dockerDir, 'containers', id, 'config.v2.json'),
        JSON.stringify({ ID: id, Name: '/pidtest', State: { Running: true, Pid: process.pid, StartedAt: startedAt } }),
      );
      const state = new DockerDiskState({ dockerDir, procRoot: '/proc', watch: false });
      const rec = (await state.containers())[0];
      state.close();
      return rec;
    }

    it('records the real start time when the process started when Docker says it did', async () => {
      const actual = startTimeOf(process.pid) as number;
      const startedAt = new Date((bootTimeTruth() + actual / clockTicksTruth()) * 1000 + 300).toISOString();
      expect((await recordWith(startedAt))?.pidStartTime).toBe(actual);
    });

    it('records Docker\'s start time when the PID now belongs to a process started at another time', async () => {
      const startedAt = '2014-12-10T05:22:46.8807158Z';
      const rec = await recordWith(startedAt);
      expect(rec?.pid).toBe(process.pid);
      // The clock ticks after boot that StartedAt implies, from the kernel's boot time.
      const implied = Math.round((Date.parse(startedAt) / 1000 - bootTimeTruth()) * clockTicksTruth());
      expect(rec?.pidStartTime).toBe(implied);
      expect(rec?.pidStartTime).not.toBe(startTimeOf(process.pid));
    });
  });

  it('never reads a config file a second time while its stat is unchanged (mtime survives in copies)', async () => {
    const root = unpack('containers-docker-1.5.0-root-003.tgz');
    const file = join(root, 'var/lib/docker/containers/c2a1bd412ad4206ced8107b9faa1f9b244bd873dcced6f909dbf72682662b7d9/config.json');
    expect(statSync(file).mtime.getUTCFullYear()).toBe(2015);
    const fs = countingFs();
    let clock = 0;
    const state = new DockerDiskState({ dockerDir: join(root, 'var/lib/docker'), procRoot: '/proc', fs, watch: false, now: () => clock });
    await state.containers();
    const reads = fs.counts.readFile;
    for (let i = 0; i < 5; i++) {
      clock += 5000;
      await state.containers();
    }
    expect(fs.counts.readFile).toBe(reads);
  });
});

describe('DockerDiskState lookups during a refresh', () => {
  it('wait for the refresh in flight instead of answering from the old index', async () => {
    const root = mkdtempSync(join(tmpdir(), 'croot-docker-inflight-'));
    try {
      execFileSync('tar', ['-xzf', join(FIXTURES, 'containers-docker-1.3.2-root-001.tgz'), '-C', root]);
      // Hold every file read until the second lookup has been made.
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let readStarted!: () => void;
      const reading = new Promise<void>((r) => (readStarted = r));
      const fs: DockerDiskFs = {
        ...nodeDockerDiskFs,
        readFile: async (p) => {
          readStarted();
          await gate;
          return nodeDockerDiskFs.readFile(p);
        },
      };
      const state = new DockerDiskState({ dockerDir: join(root, 'var/lib/docker'), procRoot: '/proc', fs, watch: false });
      const firstLookup = state.containers();
      await reading;
      const secondLookup = state.containers();
      release();
      const [first, second] = await Promise.all([firstLookup, secondLookup]);
      expect(first).toHaveLength(3);
      expect(second).toBe(first);
      state.close();
    } finally {
      rmSync(root, { recursive: true, force: true });
    }
  });
});
