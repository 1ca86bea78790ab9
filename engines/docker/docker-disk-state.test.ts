import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ContainerRecord } from '../../core/registry/engine-contribution.js';
import type { DirectoryWatcher } from '../../core/host/host-services.js';
import { NodeDirectoryWatcher } from '../../core/host/node-directory-watcher.js';
import { CountingWatcher } from '../../test/support/counting-watcher.js';
import { eventually } from '../../test/support/outcomes.js';
import { bootTimeTruth } from '../../test/support/truth.js';
import { DockerDiskState, type DockerDiskStateOptions } from './docker-disk-state.js';

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

const bootTime = bootTimeTruth();

/** A DockerDiskState on `dockerDir` with Node's watcher (unless given another) and the host's /proc. */
function diskState(dockerDir: string, extra: Partial<DockerDiskStateOptions> = {}): DockerDiskState {
  return new DockerDiskState({ dockerDir, watcher: new NodeDirectoryWatcher(), bootTime, ...extra });
}

async function loaded(dockerDir: string): Promise<readonly ContainerRecord[]> {
  const state = diskState(dockerDir);
  try {
    return await state.load();
  } finally {
    state.close();
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
    beforeAll(() => {
      root = unpack(tarball);
      expected = expectations.get(tarball) as Expected;
    });
    // Read in each test, not once: what a test checks must run inside it for Stryker's per-test coverage.
    beforeEach(async () => {
      records = await loaded(join(root, 'var/lib/docker'));
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
    const rec = byId(await loaded(join(root, 'var/lib/docker'))).get('e137109040f53c67031325695ae541a3bf383c7b015af0fd718a412cc0f32da1');
    expect(rec?.names).toEqual([]);
    expect(rec?.hostname).toBe('e137109040f5');
  });

  describe('on the titan fixture, whose cgroup tree shows where Docker put the container', () => {
    const id = 'e41d0176fce811b3065a604031ff6629c850d76747a29604ff930794596052bb';
    let root: string;
    let record: ContainerRecord | undefined;
    beforeAll(() => {
      root = unpack('containers-docker-titan-root-007.tgz');
    });
    beforeEach(async () => {
      record = byId(await loaded(join(root, 'var/lib/docker'))).get(id);
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

  describe('following changes', () => {
    let dockerDir: string;
    let state: DockerDiskState;
    let changes: string[];
    const containersDir = () => join(dockerDir, 'containers');
    const newId = 'f00dfeed'.repeat(8);
    const template = '2cb8e83aa13ae05b7d11146ed0daae3607cd1a73d793544e06411fd8f4afc255';

    function start(extra: Partial<DockerDiskStateOptions> = {}): DockerDiskState {
      changes = [];
      state = diskState(dockerDir, {
        onUpsert: (r) => changes.push(`upsert ${r.id.slice(0, 8)} ${r.names.join(',')} ${r.state ?? ''}`),
        onRemove: (id) => changes.push(`remove ${id.slice(0, 8)}`),
        onPresence: () => changes.push(`presence ${state.isPresent}`),
        ...extra,
      });
      return state;
    }

    beforeEach(() => {
      dockerDir = join(unpack('containers-docker-1.3.2-root-001.tgz'), 'var/lib/docker');
    });
    afterEach(() => state.close());

    /** Writes a config file as Docker does: a temporary file renamed over the old one. */
    function writeConfig(id: string, file: string, json: unknown): void {
      const path = join(containersDir(), id, file);
      writeFileSync(`${path}.tmp`, JSON.stringify(json));
      renameSync(`${path}.tmp`, path);
    }

    function configOf(id: string): Record<string, unknown> {
      return JSON.parse(readFileSync(join(containersDir(), id, 'config.json'), 'utf8')) as Record<string, unknown>;
    }

    function addContainer(id: string, name: string): void {
      const dir = join(containersDir(), id);
      mkdirSync(dir);
      writeConfig(id, 'config.json', { ...configOf(template), ID: id, Name: `/${name}` });
    }

    const next = (prefix: string) => eventually(async () => changes.find((c) => c.startsWith(prefix)));

    it('pushes nothing for the first load, which it returns whole', async () => {
      const records = await start().load();
      expect(records.map((r) => r.names[0]).sort()).toEqual(['desperate_turing', 'dreamy_elion', 'jolly_sinoussi']);
      expect(changes).toEqual([]);
      expect(state.size).toBe(3);
    });

    it('hands on a container folder added, read from its config file', async () => {
      await start().load();
      addContainer(newId, 'added_later');
      expect(await next(`upsert ${newId.slice(0, 8)}`)).toBe(`upsert ${newId.slice(0, 8)} added_later running`);
      expect(state.size).toBe(4);
    });

    it('hands on a config file replaced by rename, and ignores the other files of the folder', async () => {
      await start().load();
      writeFileSync(join(containersDir(), template, `${template}-json.log`), 'a log line\n');
      writeConfig(template, 'config.json', { ...configOf(template), Name: '/renamed', State: { Running: false, Pid: 0 } });
      await next(`upsert ${template.slice(0, 8)}`);
      expect(changes).toEqual([`upsert ${template.slice(0, 8)} renamed created`]);
      const record = state.containers().find((r) => r.id === template);
      expect(record).toMatchObject({ names: ['renamed'], running: false });
      expect(record?.pid).toBeUndefined();
    });

    it('hands on the removal of a container folder', async () => {
      await start().load();
      rmSync(join(containersDir(), template), { recursive: true });
      expect(await next('remove')).toBe(`remove ${template.slice(0, 8)}`);
      expect(state.size).toBe(2);
    });

    it('finds a containers folder made (mkdir) in Docker\'s folder, and the containers put in it', async () => {
      const config = configOf(template);
      rmSync(containersDir(), { recursive: true });
      expect(await start().load()).toEqual([]);
      mkdirSync(containersDir());
      await next('presence true');
      mkdirSync(join(containersDir(), newId));
      writeConfig(newId, 'config.json', { ...config, ID: newId, Name: '/in_made_folder' });
      expect(await next(`upsert ${newId.slice(0, 8)}`)).toBe(`upsert ${newId.slice(0, 8)} in_made_folder running`);
    });

    it('takes no notice of a container folder that goes before it ever held a config', async () => {
      const counting = new CountingWatcher();
      await start({ watcher: counting }).load();
      mkdirSync(join(containersDir(), newId));
      // Once it is watched, it was taken as a container folder (and found without a config).
      await eventually(async () => (counting.active.get(join(containersDir(), newId)) === 1 ? true : undefined));
      rmSync(join(containersDir(), newId), { recursive: true });
      // Heard after the removal, through the same folder's events.
      addContainer(template.replace(/^2/, '3'), 'after_the_empty_one');
      await next('upsert 3cb8e83a');
      // One gone before its event is handled: its removal names a folder never taken.
      mkdirSync(join(containersDir(), newId));
      rmSync(join(containersDir(), newId), { recursive: true });
      addContainer(template.replace(/^2/, '4'), 'after_the_short_one');
      await next('upsert 4cb8e83a');
      expect(changes).toEqual(['upsert 3cb8e83a after_the_empty_one running', 'upsert 4cb8e83a after_the_short_one running']);
      expect(state.size).toBe(5);
    });

    it('says when the containers folder is absent, and picks it up when it appears', async () => {
      renameSync(containersDir(), `${containersDir()}.away`);
      expect(await start().load()).toEqual([]);
      expect(state.unavailableReason()).toBe(`${containersDir()} absent`);
      renameSync(`${containersDir()}.away`, containersDir());
      await next('presence true');
      await eventually(async () => (state.size === 3 ? true : undefined));
      expect(state.unavailableReason()).toBeUndefined();
      expect(changes.filter((c) => c.startsWith('upsert')).map((c) => c.split(' ')[2]).sort()).toEqual(['desperate_turing', 'dreamy_elion', 'jolly_sinoussi']);
    });

    it('takes no config that names another container, nor one reached through a link or a FIFO in its place', async () => {
      const other = 'd2e89f8c107e1b7ae899603469cd524618897d52197fbbd6aaf961454202f23e';
      // Folders whose config cannot be taken: never read whole, so not answered.
      mkdirSync(join(containersDir(), newId));
      writeConfig(newId, 'config.json', { ...configOf(template), ID: other, Name: '/impostor' });
      const linked = 'abcdef01'.repeat(8);
      mkdirSync(join(containersDir(), linked));
      symlinkSync(join(containersDir(), template, 'config.json'), join(containersDir(), linked, 'config.json'));
      const fifo = '12345678'.repeat(8);
      mkdirSync(join(containersDir(), fifo));
      execFileSync('mkfifo', [join(containersDir(), fifo, 'config.json')]);
      const records = await start().load();
      expect(records.map((r) => r.names[0]).sort()).toEqual(['desperate_turing', 'dreamy_elion', 'jolly_sinoussi']);
      // A config of a container read whole that breaks afterwards keeps what was known of it.
      const before = state.containers().find((r) => r.id === template);
      const path = join(containersDir(), template, 'config.json');
      renameSync(path, `${path}.away`);
      symlinkSync('/etc/passwd', path);
      await state.recheck();
      expect(changes).toEqual([]);
      expect(state.containers().find((r) => r.id === template)).toBe(before);
    });

    describe('with a watcher that misses every change', () => {
      const deaf: DirectoryWatcher = { watch: () => () => undefined };

      it('sees them at the safety net\'s re-check, re-reading only the containers whose files changed', async () => {
        const first = await start({ watcher: deaf }).load();
        writeConfig(template, 'config.json', { ...configOf(template), Name: '/changed_unseen' });
        addContainer(newId, 'added_unseen');
        rmSync(join(containersDir(), 'd2e89f8c107e1b7ae899603469cd524618897d52197fbbd6aaf961454202f23e'), { recursive: true });
        expect(changes).toEqual([]);
        await state.recheck();
        expect(changes.sort()).toEqual([
          `remove d2e89f8c`,
          `upsert ${template.slice(0, 8)} changed_unseen running`,
          `upsert ${newId.slice(0, 8)} added_unseen running`,
        ].sort());
        // The container whose files did not change kept its record: it was not read again.
        const untouched = first.find((r) => r.names[0] === 'desperate_turing');
        expect(state.containers().find((r) => r.id === untouched?.id)).toBe(untouched);
      });

      it('keeps its containers up to date without being given onUpsert, onRemove or onPresence', async () => {
        state = diskState(dockerDir, { watcher: deaf });
        await state.load();
        writeConfig(template, 'config.json', { ...configOf(template), Name: '/renamed_quietly' });
        // One container's config file goes, another's whole folder.
        rmSync(join(containersDir(), 'd2e89f8c107e1b7ae899603469cd524618897d52197fbbd6aaf961454202f23e', 'config.json'));
        rmSync(join(containersDir(), '252b56e79da57371dd0fe0fd1069418b761a06c42304d5c74b873f3fb9386d5f'), { recursive: true });
        await state.recheck();
        expect(state.containers().map((r) => r.names[0])).toEqual(['renamed_quietly']);
        expect(state.size).toBe(1);
        // Nor onPresence.
        renameSync(containersDir(), `${containersDir()}.away`);
        await state.recheck();
        expect([state.isPresent, state.size]).toEqual([false, 0]);
        renameSync(`${containersDir()}.away`, containersDir());
        await state.recheck();
        expect([state.isPresent, state.size]).toEqual([true, 1]);
      });

      it('drops at the re-check a container whose config file went unheard, and takes it again when the file is back', async () => {
        await start({ watcher: deaf }).load();
        const config = configOf(template);
        rmSync(join(containersDir(), template, 'config.json'));
        await state.recheck();
        await state.recheck();
        expect(changes).toEqual([`remove ${template.slice(0, 8)}`]);
        expect(state.size).toBe(2);
        writeConfig(template, 'config.json', { ...config, Name: '/back_again' });
        await state.recheck();
        expect(changes).toEqual([`remove ${template.slice(0, 8)}`, `upsert ${template.slice(0, 8)} back_again running`]);
      });

      it('runs a re-check asked for during one once more after it, so a container added meanwhile is read', async () => {
        let second: Promise<void> | undefined;
        await start({
          watcher: deaf,
          onUpsert: (r) => {
            changes.push(`upsert ${r.id.slice(0, 8)} ${r.names.join(',')}`);
            // The first re-check is reading containers now: it listed the folder before this one was added.
            if (second === undefined) {
              addContainer(newId, 'added_during_recheck');
              second = state.recheck();
            }
          },
        }).load();
        writeConfig(template, 'config.json', { ...configOf(template), Name: '/changed_unseen' });
        await state.recheck();
        await second;
        expect(changes.sort()).toEqual([`upsert ${template.slice(0, 8)} changed_unseen`, `upsert ${newId.slice(0, 8)} added_during_recheck`]);
      });
    });
  });
});
