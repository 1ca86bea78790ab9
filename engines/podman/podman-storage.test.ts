import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canonicalDriver, chooseDriver, listPaths, persistDir, readRunState, runStatus, scanStore, userdataDir, type StorageEntry } from './podman-storage.js';

describe('chooseDriver', () => {
  let root: string;
  let graph: string;
  let run: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'croot-driver-'));
    graph = join(root, 'graph');
    run = join(root, 'run');
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  /** Writes an empty container list of `driver` under `dir`, modified `secondsAgo` ago. */
  function list(dir: string, driver: string, file = 'containers.json', secondsAgo = 0): void {
    mkdirSync(join(dir, `${driver}-containers`), { recursive: true });
    const path = join(dir, `${driver}-containers`, file);
    writeFileSync(path, '[]');
    const when = Date.now() / 1000 - secondsAgo;
    utimesSync(path, when, when);
  }

  it('takes overlay, found nowhere, when nothing is on disk and nothing is configured', async () => {
    await expect(chooseDriver(graph, run, undefined)).resolves.toEqual({ driver: 'overlay', found: false });
  });

  it.each(['vfs', 'btrfs', 'zfs', 'devicemapper', 'aufs', 'overlay'])('finds the one driver whose containers.json exists: %s', async (driver) => {
    list(graph, driver);
    await expect(chooseDriver(graph, run, undefined)).resolves.toEqual({ driver, found: true });
  });

  it('finds a driver by a volatile list in the run root (a transient store)', async () => {
    list(run, 'vfs', 'volatile-containers.json');
    await expect(chooseDriver(graph, run, undefined)).resolves.toEqual({ driver: 'vfs', found: true });
  });

  it('reads the driver whose list changed last when several have lists, and says so', async () => {
    list(graph, 'overlay', 'containers.json', 3600);
    list(graph, 'vfs', 'containers.json', 60);
    const choice = await chooseDriver(graph, run, undefined);
    expect(choice).toMatchObject({ driver: 'vfs', found: true });
    expect(choice.note).toBe(`container lists of several graph drivers (overlay, vfs) under ${graph} and no driver in storage.conf: reading vfs's, changed last`);
    utimesSync(join(graph, 'overlay-containers/containers.json'), new Date(), new Date());
    await expect(chooseDriver(graph, run, undefined)).resolves.toMatchObject({ driver: 'overlay' });
  });

  it('follows the configured driver over the lists on disk and names the lists it leaves unread', async () => {
    list(graph, 'vfs');
    const choice = await chooseDriver(graph, run, { name: 'overlay', from: '/home/u/.config/containers/storage.conf' });
    expect(choice).toEqual({
      driver: 'overlay',
      found: false,
      note: `/home/u/.config/containers/storage.conf sets driver "overlay", so vfs-containers under ${graph} are not read`,
    });
  });

  it('follows a configured driver that has lists without a note, even when others have newer ones', async () => {
    list(graph, 'vfs', 'containers.json', 3600);
    list(graph, 'overlay');
    await expect(chooseDriver(graph, run, { name: 'vfs', from: '/etc/containers/storage.conf' })).resolves.toEqual({ driver: 'vfs', found: true });
  });

  it('reads overlay2 as overlay, as c/storage does', async () => {
    list(graph, 'overlay');
    expect(canonicalDriver('overlay2')).toBe('overlay');
    await expect(chooseDriver(graph, run, { name: 'overlay2', from: 'system storage.conf' })).resolves.toEqual({ driver: 'overlay', found: true });
  });
});

describe('store paths', () => {
  const store = { label: 'rootless:u', storageDir: '/g', runDir: '/r', driver: 'vfs' };

  it('puts the lists and the run state under the driver\'s directories', () => {
    expect(listPaths(store)).toEqual(['/g/vfs-containers/containers.json', '/g/vfs-containers/volatile-containers.json', '/r/vfs-containers/volatile-containers.json']);
    expect(userdataDir(store, 'abc')).toBe('/r/vfs-containers/abc/userdata');
    expect(persistDir(store, 'abc')).toBe('/g/vfs-containers/abc/userdata');
  });
});

describe('runStatus', () => {
  it('says created without a pidfile, exited when the pidfile\'s process is gone or not conmon\'s, running when it is', () => {
    expect(runStatus({}, undefined)).toEqual({ running: false, state: 'created' });
    expect(runStatus({ pid: 10, conmonPid: 9 }, undefined)).toEqual({ running: false, state: 'exited' });
    expect(runStatus({ pid: 10, conmonPid: 9 }, { ppid: 1, startTime: 500 })).toEqual({ running: false, state: 'exited' });
    expect(runStatus({ pid: 10, conmonPid: 9 }, { ppid: 9, startTime: 500 })).toEqual({ running: true, state: 'running', startTime: 500 });
    expect(runStatus({ pid: 10 }, { ppid: 1, startTime: 500 })).toEqual({ running: true, state: 'running', startTime: 500 });
  });
});

describe('scanStore and readRunState on damaged files', () => {
  let root: string;
  const store = () => ({ label: 'rootful', storageDir: join(root, 'graph'), runDir: join(root, 'run'), driver: 'vfs' });
  const list = () => join(root, 'graph', 'vfs-containers', 'containers.json');
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'croot-podman-damaged-'));
    mkdirSync(join(root, 'graph', 'vfs-containers'), { recursive: true });
    writeFileSync(list(), JSON.stringify([{ id: 'c1', names: ['web'] }]));
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('keeps the entries of a list’s last good read while it is cut short, a link or a FIFO, and says so', async () => {
    const lastGood = new Map<string, readonly StorageEntry[]>();
    await expect(scanStore(store(), lastGood)).resolves.toEqual({ store: store(), entries: [{ id: 'c1', names: ['web'] }], read: [list()] });
    for (const damage of [() => writeFileSync(list(), '[{"id": "c1", "na'), () => symlinkSync('/etc/passwd', list()), () => execFileSync('mkfifo', [list()])]) {
      rmSync(list());
      damage();
      const scan = await scanStore(store(), lastGood);
      expect(scan.entries).toEqual([{ id: 'c1', names: ['web'] }]);
      expect(scan.kept).toEqual([expect.stringMatching(/^.*containers\.json: .*; keeping the container of its last good read$/)]);
    }
    // Never read whole: nothing to keep, the store is absent and says why.
    await expect(scanStore(store(), new Map())).resolves.toMatchObject({ entries: [], absent: `${list()}: a FIFO` });
  });

  it('forgets a list removed', async () => {
    const lastGood = new Map<string, readonly StorageEntry[]>();
    await scanStore(store(), lastGood);
    rmSync(list());
    await expect(scanStore(store(), lastGood)).resolves.toMatchObject({ entries: [], absent: `no ${list()}` });
    expect(lastGood.size).toBe(0);
  });

  it('reads no run-state file through a link, a FIFO or past its size', () => {
    const dir = userdataDir(store(), 'c1');
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(root, 'elsewhere.pid'), '4321');
    symlinkSync(join(root, 'elsewhere.pid'), join(dir, 'pidfile'));
    execFileSync('mkfifo', [join(dir, 'conmon.pid')]);
    writeFileSync(join(dir, 'hostname'), `web${' '.repeat(5000)}`);
    expect(readRunState(store(), 'c1')).toEqual({});
  });
});
