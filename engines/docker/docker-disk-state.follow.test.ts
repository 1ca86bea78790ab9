/**
 * DockerDiskState following Docker's folder through what happens to it
 * besides config files being replaced (docker-disk-state.test.ts): the
 * containers folder not a folder, removed and made again, Docker's folder
 * made late, hostconfig.json changed or damaged, lost events, and close().
 * The truth is what the test itself wrote in Docker's file layout and what
 * the kernel says of it (errno); the fixture is PCP QA's Docker 1.3.2 tree.
 */
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { ContainerRecord } from '../../core/registry/engine-contribution.js';
import type { DirectoryEvent, DirectoryWatcher } from '../../core/host/host-services.js';
import { NodeDirectoryWatcher } from '../../core/host/node-directory-watcher.js';
import { CountingWatcher } from '../../test/support/counting-watcher.js';
import { LossyWatcher } from '../../test/support/lossy-watcher.js';
import { RefusingWatcher } from '../../test/support/refusing-watcher.js';
import { eventually } from '../../test/support/outcomes.js';
import { bootTimeTruth } from '../../test/support/truth.js';
import { DockerDiskState, type DockerDiskStateOptions } from './docker-disk-state.js';

const FIXTURE = resolve(__dirname, '../../test/fixtures/pcp-qa/containers-docker-1.3.2-root-001.tgz');
/** The fixture's three containers, by name. */
const NAMES = ['desperate_turing', 'dreamy_elion', 'jolly_sinoussi'];
const TEMPLATE = '2cb8e83aa13ae05b7d11146ed0daae3607cd1a73d793544e06411fd8f4afc255';
const NEW_ID = 'beadfeed'.repeat(8);
const bootTime = bootTimeTruth();

let scratch: string;
let dockerDir: string;
let state: DockerDiskState | undefined;
let changes: string[];

beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), 'croot-docker-follow-'));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));
beforeEach(() => {
  const root = mkdtempSync(join(scratch, 'root-'));
  execFileSync('tar', ['-xzf', FIXTURE, '-C', root]);
  dockerDir = join(root, 'var/lib/docker');
  changes = [];
});
afterEach(() => {
  state?.close();
  state = undefined;
});

const containersDir = (): string => join(dockerDir, 'containers');

function start(extra: Partial<DockerDiskStateOptions> = {}): DockerDiskState {
  const made: DockerDiskState = new DockerDiskState({
    dockerDir,
    watcher: new NodeDirectoryWatcher(),
    bootTime,
    onUpsert: (r) => changes.push(`upsert ${r.names.join(',')} ${r.cgroupHint ?? ''}`),
    onRemove: (id) => changes.push(`remove ${id.slice(0, 8)}`),
    onPresence: () => changes.push(`presence ${made.isPresent}`),
    ...extra,
  });
  state = made;
  return made;
}

/** How many containers were read each time the event loop came round to this test's own callback, until `loading` settles. */
async function sizesPerTurn(loading: Promise<unknown>): Promise<number[]> {
  let loaded = false;
  void loading.finally(() => (loaded = true));
  const sizes = [state?.size ?? -1];
  while (!loaded) {
    await new Promise<void>((turn) => setImmediate(turn));
    sizes.push(state?.size ?? -1);
  }
  return sizes;
}

const names = (records: readonly ContainerRecord[]): string[] => records.map((r) => r.names[0] ?? '?').sort();
const seen = (change: string): Promise<string> => eventually(async () => changes.find((c) => c === change));

/** Writes a file as Docker does: a temporary file renamed over the old one. */
function replace(path: string, text: string): void {
  writeFileSync(`${path}.tmp`, text);
  renameSync(`${path}.tmp`, path);
}

function templateConfig(): Record<string, unknown> {
  return JSON.parse(readFileSync(join(containersDir(), TEMPLATE, 'config.json'), 'utf8')) as Record<string, unknown>;
}

/** A container folder `id` named `name` under `dir`, its config.json made from the fixture's own. */
function addContainer(dir: string, id: string, name: string, config: Record<string, unknown>): void {
  mkdirSync(join(dir, id), { recursive: true });
  replace(join(dir, id, 'config.json'), JSON.stringify({ ...config, ID: id, Name: `/${name}` }));
}

describe('DockerDiskState, following Docker\'s folder', () => {
  it('calls a containers path that is no folder unreadable, with the kernel\'s errno, and finds nothing there', async () => {
    rmSync(containersDir(), { recursive: true });
    writeFileSync(containersDir(), 'not a folder\n');
    // Given with trailing slashes, as an environment variable may hold it.
    const records = await start({ dockerDir: `${dockerDir}//` }).load();
    expect(records).toEqual([]);
    expect(state?.isPresent).toBe(false);
    expect(state?.unavailableReason()).toBe(`${dockerDir}/containers unreadable (ENOTDIR)`);
  });

  it('follows a containers folder removed and made again, whatever it holds then', async () => {
    const config = templateConfig();
    expect(names(await start().load())).toEqual(NAMES);
    rmSync(containersDir(), { recursive: true });
    await seen('presence false');
    expect(changes.filter((c) => c.startsWith('remove')).length).toBe(3);
    expect(state?.size).toBe(0);
    expect(state?.unavailableReason()).toBe(`${containersDir()} absent`);
    // The new folder is another inode: the old watch hears nothing of it.
    mkdirSync(`${containersDir()}.new`);
    addContainer(`${containersDir()}.new`, NEW_ID, 'after_rebuild', config);
    renameSync(`${containersDir()}.new`, containersDir());
    await seen(`upsert after_rebuild docker/${NEW_ID}`);
    expect(state?.isPresent).toBe(true);
    expect(names(state?.containers() ?? [])).toEqual(['after_rebuild']);
    // And it follows that folder too.
    rmSync(join(containersDir(), NEW_ID), { recursive: true });
    await seen(`remove ${NEW_ID.slice(0, 8)}`);
    expect(state?.size).toBe(0);
  });

  it('finds Docker\'s folder made after it started at the next re-check', async () => {
    const away = `${dockerDir}.away`;
    renameSync(dockerDir, away);
    expect(await start().load()).toEqual([]);
    expect(state?.unavailableReason()).toBe(`${containersDir()} absent`);
    renameSync(away, dockerDir);
    await state?.recheck();
    expect(state?.isPresent).toBe(true);
    expect(names(state?.containers() ?? [])).toEqual(NAMES);
    expect(changes.filter((c) => c.startsWith('presence'))).toEqual(['presence true']);
  });

  it('takes the cgroup parent from hostconfig.json when it is replaced, and Docker\'s default when it is damaged', async () => {
    await start().load();
    expect(state?.containers().find((r) => r.id === TEMPLATE)?.cgroupHint).toBe(`docker/${TEMPLATE}`);
    const hostconfig = join(containersDir(), TEMPLATE, 'hostconfig.json');
    replace(hostconfig, JSON.stringify({ ...(JSON.parse(readFileSync(hostconfig, 'utf8')) as object), CgroupParent: '/croot-test.slice/' }));
    await seen(`upsert jolly_sinoussi croot-test.slice/${TEMPLATE}`);
    replace(hostconfig, '{ "CgroupParent": ');
    await seen(`upsert jolly_sinoussi docker/${TEMPLATE}`);
    expect(state?.containers().find((r) => r.id === TEMPLATE)).toMatchObject({ names: ['jolly_sinoussi'], cgroupHint: `docker/${TEMPLATE}` });
  });

  it('re-reads at the re-check a container whose hostconfig.json alone changed, with a watcher that misses it, and no other', async () => {
    // A container without hostconfig.json (Docker < 1.3.2 wrote none) is not read again while nothing changes.
    addContainer(containersDir(), NEW_ID, 'no_hostconfig', templateConfig());
    await start({ watcher: { watch: () => () => undefined } }).load();
    await state?.recheck();
    expect(changes).toEqual([]);
    const hostconfig = join(containersDir(), TEMPLATE, 'hostconfig.json');
    replace(hostconfig, JSON.stringify({ CgroupParent: 'unseen.slice' }));
    await state?.recheck();
    expect(changes).toEqual([`upsert jolly_sinoussi unseen.slice/${TEMPLATE}`]);
  });

  it('reads config.v2.json before config.json when a folder holds both (Docker >= 1.10 writes v2)', async () => {
    await start().load();
    replace(join(containersDir(), TEMPLATE, 'config.v2.json'), JSON.stringify({ ...templateConfig(), Name: '/from_v2' }));
    await seen(`upsert from_v2 docker/${TEMPLATE}`);
    // A later write of the old file changes nothing: v2 still wins.
    replace(join(containersDir(), TEMPLATE, 'config.json'), JSON.stringify({ ...templateConfig(), Name: '/from_v1' }));
    await state?.recheck();
    expect(state?.containers().find((r) => r.id === TEMPLATE)?.names).toEqual(['from_v2']);
  });

  it('no longer answers for a container folder whose config file is gone', async () => {
    await start().load();
    rmSync(join(containersDir(), TEMPLATE, 'config.json'));
    await seen(`remove ${TEMPLATE.slice(0, 8)}`);
    expect(state?.size).toBe(2);
    expect(names(state?.containers() ?? [])).toEqual(['desperate_turing', 'dreamy_elion']);
  });

  it('re-reads the folder, and a container\'s folder, when the kernel says their events were lost', async () => {
    const lossy = new LossyWatcher();
    const config = templateConfig();
    await start({ watcher: lossy }).load();
    lossy.losing = true;
    addContainer(containersDir(), NEW_ID, 'added_while_lost', config);
    await eventually(async () => (lossy.lost.some((l) => l.dir === containersDir()) ? true : undefined));
    lossy.overflow(containersDir());
    await seen(`upsert added_while_lost docker/${NEW_ID}`);
    lossy.losing = true;
    replace(join(containersDir(), TEMPLATE, 'config.json'), JSON.stringify({ ...config, Name: '/renamed_while_lost' }));
    await eventually(async () => (lossy.lost.some((l) => l.dir === join(containersDir(), TEMPLATE)) ? true : undefined));
    lossy.overflow(join(containersDir(), TEMPLATE));
    await seen(`upsert renamed_while_lost docker/${TEMPLATE}`);
  });

  it('ends every watch it opened at close, and hands nothing on after it', async () => {
    const counting = new CountingWatcher();
    await start({ watcher: counting }).load();
    expect(counting.active.get(containersDir())).toBe(1);
    expect(counting.active.get(join(containersDir(), TEMPLATE))).toBe(1);
    expect(counting.active.size).toBe(4);
    state?.close();
    expect([...counting.active.keys()]).toEqual([]);
    rmSync(join(containersDir(), TEMPLATE), { recursive: true });
    await state?.recheck();
    expect(changes).toEqual([]);
  });

  it('ends the watch on Docker\'s folder once the containers folder is there', async () => {
    const counting = new CountingWatcher();
    renameSync(containersDir(), `${containersDir()}.away`);
    await start({ watcher: counting }).load();
    expect([...counting.active.keys()]).toEqual([dockerDir]);
    renameSync(`${containersDir()}.away`, containersDir());
    await seen('presence true');
    await eventually(async () => (state?.size === 3 ? true : undefined));
    expect(counting.active.get(dockerDir)).toBeUndefined();
    expect(counting.active.get(containersDir())).toBe(1);
  });

  it('gives a running container the start time its StartedAt implies, in clock ticks since the kernel\'s boot', async () => {
    const ticks = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());
    const config = templateConfig() as { State: { Running: boolean; Pid: number; StartedAt: string } };
    expect(config.State.Running).toBe(true);
    const record = (await start().load()).find((r) => r.id === TEMPLATE);
    expect(record).toMatchObject({ pid: config.State.Pid, pidStartTime: Math.round((Date.parse(config.State.StartedAt) / 1000 - bootTime) * ticks) });
    state?.close();
    const unknownBoot = (await start({ bootTime: undefined }).load()).find((r) => r.id === TEMPLATE);
    expect(unknownBoot?.pid).toBe(config.State.Pid);
    expect(unknownBoot?.pidStartTime).toBeUndefined();
  });

  it('drops every container and says so when the containers folder goes, even unheard', async () => {
    await start({ watcher: { watch: () => () => undefined } }).load();
    renameSync(containersDir(), `${containersDir()}.away`);
    await state?.recheck();
    expect(changes.sort()).toEqual(['presence false', 'remove 252b56e7', 'remove 2cb8e83a', 'remove d2e89f8c'].sort());
    expect(state?.size).toBe(0);
    renameSync(`${containersDir()}.away`, containersDir());
    await state?.recheck();
    expect(changes.filter((c) => c.startsWith('presence'))).toEqual(['presence false', 'presence true']);
    expect(state?.size).toBe(3);
  });

  it('leaves no watch open when closed during its first load', async () => {
    const counting = new CountingWatcher();
    const loading = start({ watcher: counting }).load();
    state?.close();
    expect(await loading).toEqual([]);
    expect([...counting.active.keys()]).toEqual([]);
  });

  it('watches each folder once, however many re-checks and changes', async () => {
    const counting = new CountingWatcher();
    await start({ watcher: counting }).load();
    replace(join(containersDir(), TEMPLATE, 'config.json'), JSON.stringify({ ...templateConfig(), Name: '/once' }));
    await seen(`upsert once docker/${TEMPLATE}`);
    await state?.recheck();
    await state?.recheck();
    expect([...counting.active.values()]).toEqual([1, 1, 1, 1]);
  });

  it('watches Docker\'s folder again when it is removed and made again, and finds the containers folder made in it', async () => {
    const config = templateConfig();
    const counting = new CountingWatcher();
    rmSync(containersDir(), { recursive: true });
    await start({ watcher: counting }).load();
    expect([...counting.active.keys()]).toEqual([dockerDir]);
    rmSync(dockerDir, { recursive: true });
    await eventually(async () => (counting.active.size === 0 ? true : undefined));
    mkdirSync(dockerDir);
    await state?.recheck();
    expect([...counting.active.keys()]).toEqual([dockerDir]);
    mkdirSync(`${dockerDir}/containers.new`);
    addContainer(`${dockerDir}/containers.new`, NEW_ID, 'in_new_docker_dir', config);
    renameSync(`${dockerDir}/containers.new`, containersDir());
    await seen(`upsert in_new_docker_dir docker/${NEW_ID}`);
  });

  it('watches a containers folder replaced unheard once a re-check finds it is another folder', async () => {
    const lossy = new LossyWatcher();
    const config = templateConfig();
    await start({ watcher: lossy }).load();
    lossy.losing = true;
    mkdirSync(`${containersDir()}.new`);
    renameSync(containersDir(), `${containersDir()}.old`);
    renameSync(`${containersDir()}.new`, containersDir());
    await eventually(async () => (lossy.lost.some((l) => l.dir === containersDir() && l.event.kind === 'gone') ? true : undefined));
    lossy.losing = false;
    await state?.recheck();
    expect(state?.size).toBe(0);
    // Heard through the new folder's own watch.
    addContainer(containersDir(), NEW_ID, 'in_replaced_folder', config);
    await seen(`upsert in_replaced_folder docker/${NEW_ID}`);
  });

  it('reads its first load a slice at a time, the event loop turning between slices', async () => {
    const config = templateConfig();
    for (const digit of '01234') addContainer(containersDir(), digit.repeat(64), `sliced_${digit}`, config);
    const loading = start({ readSlice: 3 }).load();
    const sizes = await sizesPerTurn(loading);
    expect(await loading).toHaveLength(8);
    expect([...new Set(sizes)].filter((n) => n < 8)).toEqual([0, 3, 6]);
  });

  it('reads 64 containers a turn unless told otherwise', async () => {
    const config = templateConfig();
    for (let i = 0; i < 67; i++) addContainer(containersDir(), i.toString(16).padStart(64, 'e'), `many_${i}`, config);
    const loading = start().load();
    const sizes = await sizesPerTurn(loading);
    expect(await loading).toHaveLength(70);
    expect([...new Set(sizes)].filter((n) => n < 70)).toEqual([0, 64]);
  });

  it('watches Docker\'s folder once while the containers folder stays absent, however many re-checks', async () => {
    const counting = new CountingWatcher();
    renameSync(containersDir(), `${containersDir()}.away`);
    await start({ watcher: counting }).load();
    await state?.recheck();
    await state?.recheck();
    expect([...counting.active.entries()]).toEqual([[dockerDir, 1]]);
    // Nor is its absence told again.
    expect(changes).toEqual([]);
  });

  it('ends the watches of the containers it drops when the containers folder is moved away', async () => {
    const counting = new CountingWatcher();
    await start({ watcher: counting }).load();
    expect(counting.active.size).toBe(4);
    renameSync(containersDir(), `${containersDir()}.away`);
    await seen('presence false');
    // The container folders still exist (moved along): only croot can end their watches.
    expect([...counting.active.entries()]).toEqual([[dockerDir, 1]]);
  });

  it('looks for the containers folder again when the kernel says events on Docker\'s folder were lost', async () => {
    const lossy = new LossyWatcher();
    renameSync(containersDir(), `${containersDir()}.away`);
    await start({ watcher: lossy }).load();
    lossy.losing = true;
    renameSync(`${containersDir()}.away`, containersDir());
    await eventually(async () => (lossy.lost.some((l) => l.dir === dockerDir && l.event.name === 'containers') ? true : undefined));
    lossy.overflow(dockerDir);
    await seen('presence true');
    await eventually(async () => (state?.size === 3 ? true : undefined));
  });

  it('watches a container folder at the next re-check when the kernel refused its watch (no inotify watch left)', async () => {
    const watcher = new RefusingOnceWatcher(join(containersDir(), TEMPLATE));
    await start({ watcher }).load();
    expect(watcher.counting.active.get(join(containersDir(), TEMPLATE))).toBeUndefined();
    const config = templateConfig();
    await state?.recheck();
    expect(watcher.counting.active.get(join(containersDir(), TEMPLATE))).toBe(1);
    replace(join(containersDir(), TEMPLATE, 'config.json'), JSON.stringify({ ...config, Name: '/heard_after_recheck' }));
    await seen(`upsert heard_after_recheck docker/${TEMPLATE}`);
  });

  it('ends every other watch at close when one was refused', async () => {
    const watcher = new RefusingOnceWatcher(join(containersDir(), TEMPLATE));
    await start({ watcher }).load();
    expect(watcher.counting.active.size).toBe(3);
    state?.close();
    expect([...watcher.counting.active.keys()]).toEqual([]);
  });

  it('re-reads at the safety net only the containers no live watch vouches for, when the watcher tells its lost events', async () => {
    const victim = 'd2e89f8c107e1b7ae899603469cd524618897d52197fbbd6aaf961454202f23e';
    // The template's folder is refused its watch (inotify's limit reached); the victim's watch loses a change without saying so.
    const watcher = new RefusingWatcher(new Map([[join(containersDir(), TEMPLATE), 'ENOSPC']]), { reportsLostEvents: true });
    watcher.deaf.add(join(containersDir(), victim));
    const config = templateConfig();
    await start({ watcher }).load();
    replace(join(containersDir(), TEMPLATE, 'config.json'), JSON.stringify({ ...config, Name: '/unwatched_renamed' }));
    replace(join(containersDir(), victim, 'config.json'), JSON.stringify({ ...config, ID: victim, Name: '/vouched_renamed' }));
    await state?.recheck();
    expect(changes).toEqual([`upsert unwatched_renamed docker/${TEMPLATE}`]);
    expect(names(state?.containers() ?? [])).toEqual(['desperate_turing', 'dreamy_elion', 'unwatched_renamed']);
    // The same watcher without that claim: the safety net reads every folder's files again.
    state?.close();
    changes = [];
    const unvouched = new RefusingWatcher(new Map(), { reportsLostEvents: false });
    unvouched.deaf.add(join(containersDir(), victim));
    await start({ watcher: unvouched }).load();
    replace(join(containersDir(), victim, 'config.json'), JSON.stringify({ ...config, ID: victim, Name: '/unvouched_renamed' }));
    await state?.recheck();
    expect(changes).toContain(`upsert unvouched_renamed docker/${victim}`);
  });
});


describe('DockerDiskState, a container folder made again under its name', () => {
  it('is watched again at once, so its next change is heard without a re-check', async () => {
    const config = templateConfig();
    await start().load();
    // Removed and made again before croot hears of either: its old watch ends, the name stays known.
    rmSync(join(containersDir(), TEMPLATE), { recursive: true });
    addContainer(containersDir(), TEMPLATE, 'made_again', config);
    await seen(`upsert made_again docker/${TEMPLATE}`);
    replace(join(containersDir(), TEMPLATE, 'config.json'), JSON.stringify({ ...config, ID: TEMPLATE, Name: '/changed_after' }));
    await seen(`upsert changed_after docker/${TEMPLATE}`);
  });
});

/**
 * A CountingWatcher whose first watch of one folder fails as inotify_add_watch
 * does once the user's inotify watches are used up (ENOSPC), which a test on
 * a shared machine must not cause for real.
 */
class RefusingOnceWatcher implements DirectoryWatcher {
  readonly counting = new CountingWatcher();
  private refused = false;

  constructor(private readonly dir: string) {}

  watch(dir: string, onEvent: (event: DirectoryEvent) => void): () => void {
    if (dir === this.dir && !this.refused) {
      this.refused = true;
      throw Object.assign(new Error(`inotify_add_watch ${dir}: ENOSPC`), { code: 'ENOSPC' });
    }
    return this.counting.watch(dir, onEvent);
  }
}
