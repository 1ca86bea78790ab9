/**
 * One store's watch on its own, over a copy of the rootful fixture store
 * (test/fixtures/podman): what it places and pushes, and that a store closed
 * while it loads (the engine retires a store that moved) places and pushes
 * nothing more.
 */
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { DirectoryWatcher } from '../../core/host/host-services.js';
import { NodeDirectoryWatcher } from '../../core/host/node-directory-watcher.js';
import type { ContainerRecord } from '../../core/registry/engine-contribution.js';
import { CountingWatcher } from '../../test/support/counting-watcher.js';
import { eventually } from '../../test/support/outcomes.js';
import { RefusingWatcher } from '../../test/support/refusing-watcher.js';
import type { PodmanStore } from './podman-storage.js';
import { PodmanStoreWatch, type StoreHost } from './podman-store-watch.js';
import { ReadScheduler } from './read-scheduler.js';

const FIXTURE = join(__dirname, '..', '..', 'test', 'fixtures', 'podman');
/** The fixture's running container (containers.json) and its volatile one (volatile-containers.json). */
const RUN = 'be36a965cb4803f38194ce0ee329956f4c53254d81f5cdd5f9ef5a8722fe788b';
const VOL = '583c8334f046c80cbfdf19da10b00d7d19a7d1eff79ac05d2beb45c56b1b37af';

describe('PodmanStoreWatch', () => {
  let root: string;
  let watcher: CountingWatcher;
  let records: ContainerRecord[];
  let errors: unknown[];
  let onListsRead: () => void;
  let driverFolderSignals: number;
  const stores: PodmanStoreWatch[] = [];

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'croot-t-store-'));
    cpSync(join(FIXTURE, 'rootful'), join(root, 'rootful'), { recursive: true });
    watcher = new CountingWatcher();
    records = [];
    errors = [];
    onListsRead = () => undefined;
    driverFolderSignals = 0;
  });
  afterEach(() => {
    for (const s of stores.splice(0)) s.close();
    rmSync(root, { recursive: true, force: true });
  });

  /** The fixture's rootful store, as the engine places it. */
  function rootful(): PodmanStore {
    return { label: 'rootful', storageDir: join(root, 'rootful/storage'), runDir: join(root, 'rootful/run'), driver: 'overlay' };
  }

  function storeWatch(options: { store?: PodmanStore; driverConfigured?: boolean; alwaysShown?: boolean; watcher?: DirectoryWatcher } = {}): PodmanStoreWatch {
    const host: StoreHost = {
      watcher: options.watcher ?? watcher,
      procRoot: join(FIXTURE, 'proc'),
      scheduler: new ReadScheduler(4, (err) => errors.push(err)),
      setRecord: (record) => records.push(record),
      dropRecord: () => undefined,
      listsRead: () => onListsRead(),
      driverFoldersChanged: () => driverFolderSignals++,
    };
    const store = new PodmanStoreWatch(host, options.store ?? rootful(), options.driverConfigured ?? true, options.alwaysShown ?? true);
    stores.push(store);
    return store;
  }

  /** The ids of containers.json and volatile-containers.json, as c/storage wrote them. */
  function listedIds(): string[] {
    const lists = join(root, 'rootful/storage/overlay-containers');
    return ['containers.json', 'volatile-containers.json'].flatMap((f) => (JSON.parse(readFileSync(join(lists, f), 'utf8')) as { id: string }[]).map((e) => e.id));
  }

  it('pushes a record of every listed container and watches its run state, and nothing once closed', async () => {
    const store = storeWatch();
    store.open();
    await store.load();
    expect(records.map((r) => r.id).sort()).toEqual(listedIds().sort());
    expect(records.every((r) => r.engine === 'podman' && r.source === 'rootful')).toBe(true);
    expect([...watcher.active.keys()].filter((dir) => dir.endsWith('/userdata'))).not.toEqual([]);
    store.close();
    expect([...watcher.active]).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('places no watch and pushes no record once closed between reading its lists and opening its containers', async () => {
    const store = storeWatch();
    // The engine retires a store whose place changed while its first read was under way.
    onListsRead = () => store.close();
    store.open();
    await store.load();
    expect(records).toEqual([]);
    expect([...watcher.active]).toEqual([]);
    expect(errors).toEqual([]);
  });

  it('reads a list of more than a thousand containers whole (it is gone through in pieces, with turns for other work between them)', async () => {
    const ids = Array.from({ length: 1200 }, (_, i) => i.toString(16).padStart(64, '0'));
    writeFileSync(join(root, 'rootful/storage/overlay-containers/containers.json'), JSON.stringify(ids.map((id, i) => ({ id, names: [`croot-fx-${i}`] }))));
    const store = storeWatch();
    store.open();
    await store.load();
    expect(store.scan?.count).toBe(ids.length + 1);
    expect(records.map((r) => r.id).sort()).toEqual(listedIds().sort());
    expect(records).toHaveLength(ids.length + 1);
  });

  it('reads a container again for its run-state and conmon files only: a log written beside them (k8s-file\'s ctr.log) reads nothing', async () => {
    // Podman's k8s-file log is <graph root>/overlay-containers/<id>/userdata/ctr.log, beside conmon's files.
    const persist = join(root, `rootful/storage/overlay-containers/${RUN}/userdata`);
    mkdirSync(persist, { recursive: true });
    const store = storeWatch();
    store.open();
    await store.load();
    records.length = 0;
    writeFileSync(join(persist, 'ctr.log'), '2026-12-07T18:00:00.000000000+00:00 stdout F hello\n');
    // Then a change that is read: one inotify queue, one read queue, so the log's read (if any) comes first.
    writeFileSync(join(root, `rootful/run/overlay-containers/${VOL}/userdata/hostname`), 'vol-renamed');
    await eventually(async () => records.find((r) => r.id === VOL && r.hostname === 'vol-renamed'));
    expect(records.filter((r) => r.id === RUN)).toEqual([]);
  });

  it('asks for the stores to be located again when a <driver>-containers folder appears in the graph root, not at other changes there', async () => {
    const graph = join(root, 'rootful/storage');
    writeFileSync(join(graph, 'storage.lock'), '');
    const store = storeWatch({ driverConfigured: false });
    store.open();
    await store.load();
    driverFolderSignals = 0;
    // The test's own watch on the graph root: once it has seen the new folder, the store's watch has seen all before it.
    const seen: string[] = [];
    const unwatch = new NodeDirectoryWatcher().watch(graph, (e) => seen.push(e.name));
    try {
      // c/storage writes its lock file at every change of the store.
      writeFileSync(join(graph, 'storage.lock'), 'x');
      mkdirSync(join(graph, 'vfs-containers'));
      await eventually(async () => (seen.includes('vfs-containers') ? true : undefined));
    } finally {
      unwatch();
    }
    expect(driverFolderSignals).toBe(1);
  });

  it('takes a re-check that comes while new containers wait for their watches', async () => {
    const store = storeWatch();
    let rechecked: Promise<void> | undefined;
    // The safety net runs on a timer of its own: here, just after the lists were read, before any container was opened.
    onListsRead = () => {
      rechecked ??= store.recheck();
    };
    store.open();
    await store.load();
    await rechecked;
    expect(errors).toEqual([]);
    expect(new Set(records.map((r) => r.id))).toEqual(new Set(listedIds()));
    // Each run-state folder there is watched, once.
    const runFolders = [...watcher.active].filter(([dir]) => dir.startsWith(join(root, 'rootful/run/')) && dir.endsWith('/userdata'));
    expect(runFolders.map(([, n]) => n)).toEqual([1, 1, 1]);
  });

  it('watches from the next re-check on a container folder the kernel refused (no inotify watches left)', async () => {
    const userdata = join(root, `rootful/run/overlay-containers/${VOL}/userdata`);
    const refusing = new RefusingWatcher(new Map([[userdata, 'ENOSPC']]));
    const store = storeWatch({ watcher: refusing });
    store.open();
    await store.load();
    refusing.refused.clear();
    await store.recheck();
    records.length = 0;
    writeFileSync(join(userdata, 'hostname'), 'vol-renamed');
    await eventually(async () => records.find((r) => r.id === VOL && r.hostname === 'vol-renamed'));
  });

  it('is shown in the health once its lists are read, a store without lists only when it has a note', async () => {
    const store = storeWatch({ alwaysShown: false });
    expect(store.shown).toBe(false);
    store.open();
    await store.load();
    expect(store.shown).toBe(true);
    const bob: PodmanStore = { label: 'rootless:bob', user: 'bob', storageDir: join(root, 'bob/storage'), runDir: join(root, 'bob/run'), driver: 'overlay' };
    const empty = storeWatch({ store: bob, alwaysShown: false });
    empty.open();
    await empty.load();
    expect(empty.scan?.absent).toBeDefined();
    expect(empty.shown).toBe(false);
    expect(storeWatch({ store: { ...bob, note: 'storage.conf: not TOML' }, alwaysShown: false }).shown).toBe(true);
    expect(storeWatch({ store: bob, alwaysShown: true }).shown).toBe(true);
  });

  it('is the same store as one at the same place with the same driver and owner only', () => {
    const alice: PodmanStore = { label: 'rootless:alice', user: 'alice', storageDir: join(root, 'alice/storage'), runDir: join(root, 'alice/run'), driver: 'overlay' };
    const store = storeWatch({ store: alice });
    expect(store.sameLocation({ ...alice, note: 'a note changes nothing' })).toBe(true);
    const moved: Partial<PodmanStore>[] = [{ storageDir: join(root, 'other/storage') }, { runDir: join(root, 'other/run') }, { driver: 'vfs' }, { user: 'bob' }];
    expect(moved.map((change) => store.sameLocation({ ...alice, ...change }))).toEqual([false, false, false, false]);
  });

  it('reads only the container that was added when a list is rewritten, not every container again', async () => {
    const store = storeWatch();
    store.open();
    await store.load();
    records.length = 0;
    const lists = join(root, 'rootful/storage/overlay-containers');
    const added = 'f'.repeat(64);
    const entries = JSON.parse(readFileSync(join(lists, 'containers.json'), 'utf8')) as unknown[];
    // As c/storage writes it: a new file renamed over the list, the new container last.
    writeFileSync(join(lists, 'containers.json.tmp'), JSON.stringify([...entries, { id: added, names: ['croot-fx-added'] }]));
    renameSync(join(lists, 'containers.json.tmp'), join(lists, 'containers.json'));
    await eventually(async () => records.find((r) => r.id === added));
    expect(records.map((r) => r.id)).toEqual([added]);
  });

  it('reads a container once for a start\'s burst of run-state files written together', async () => {
    const store = storeWatch();
    store.open();
    await store.load();
    records.length = 0;
    const userdata = join(root, `rootful/run/overlay-containers/${VOL}/userdata`);
    const conmonPid = readFileSync(join(userdata, 'conmon.pid'), 'utf8');
    const pid = readFileSync(join(userdata, 'pidfile'), 'utf8');
    // What podman and conmon write at a start, one after the other.
    writeFileSync(join(userdata, 'hostname'), 'vol-restarted');
    writeFileSync(join(userdata, 'conmon.pid'), conmonPid);
    writeFileSync(join(userdata, 'pidfile'), pid);
    await eventually(async () => records.find((r) => r.id === VOL && r.hostname === 'vol-restarted'));
    // The test's own watch on the folder, placed after the writes: once it sees a new file, every event before it was delivered.
    const seen: string[] = [];
    const unwatch = new NodeDirectoryWatcher().watch(userdata, (e) => seen.push(e.name));
    try {
      writeFileSync(join(userdata, 'oci-log'), '');
      await eventually(async () => (seen.includes('oci-log') ? true : undefined));
    } finally {
      unwatch();
    }
    expect(records.filter((r) => r.id === VOL)).toHaveLength(1);
  });

  it('pushes a container whose names changed in part: one name replaced, or one added', async () => {
    const store = storeWatch();
    store.open();
    await store.load();
    records.length = 0;
    const list = join(root, 'rootful/storage/overlay-containers/containers.json');
    const entries = JSON.parse(readFileSync(list, 'utf8')) as { id: string; names: string[] }[];
    const renamed = entries.map((e) => (e.names[0] === 'croot-fx-run' ? { ...e, names: ['croot-fx-run', 'croot-fx-renamed'] } : e.names[0] === 'croot-fx-stopped' ? { ...e, names: [...e.names, 'croot-fx-added'] } : e));
    writeFileSync(`${list}.tmp`, JSON.stringify(renamed));
    renameSync(`${list}.tmp`, list);
    await eventually(async () => (records.length >= 2 ? true : undefined));
    expect(new Map(records.map((r) => [r.names[0], r.names]))).toEqual(
      new Map([
        ['croot-fx-run', ['croot-fx-run', 'croot-fx-renamed']],
        ['croot-fx-stopped', ['croot-fx-stopped', 'croot-fx-added']],
      ]),
    );
  });
});
