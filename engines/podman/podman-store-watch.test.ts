/**
 * One store's watch on its own, over a copy of the rootful fixture store
 * (test/fixtures/podman): what it places and pushes, and that a store closed
 * while it loads (the engine retires a store that moved) places and pushes
 * nothing more.
 */
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ContainerRecord } from '../../core/registry/engine-contribution.js';
import { CountingWatcher } from '../../test/support/counting-watcher.js';
import { PodmanStoreWatch, type StoreHost } from './podman-store-watch.js';
import { ReadScheduler } from './read-scheduler.js';

const FIXTURE = join(__dirname, '..', '..', 'test', 'fixtures', 'podman');

describe('PodmanStoreWatch', () => {
  let root: string;
  let watcher: CountingWatcher;
  let records: ContainerRecord[];
  let errors: unknown[];
  let onListsRead: () => void;
  const stores: PodmanStoreWatch[] = [];

  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'croot-t-store-'));
    cpSync(join(FIXTURE, 'rootful'), join(root, 'rootful'), { recursive: true });
    watcher = new CountingWatcher();
    records = [];
    errors = [];
    onListsRead = () => undefined;
  });
  afterEach(() => {
    for (const s of stores.splice(0)) s.close();
    rmSync(root, { recursive: true, force: true });
  });

  function storeWatch(): PodmanStoreWatch {
    const host: StoreHost = {
      watcher,
      procRoot: join(FIXTURE, 'proc'),
      scheduler: new ReadScheduler(4, (err) => errors.push(err)),
      setRecord: (record) => records.push(record),
      dropRecord: () => undefined,
      listsRead: () => onListsRead(),
      driverFoldersChanged: () => undefined,
    };
    const store = new PodmanStoreWatch(host, { label: 'rootful', storageDir: join(root, 'rootful/storage'), runDir: join(root, 'rootful/run'), driver: 'overlay' }, true, true);
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
});
