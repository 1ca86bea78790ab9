import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describeWith, probes, run as runCommand } from '../../test/support/components.js';
import { eventually } from '../../test/support/outcomes.js';
import { childrenOf, parentPid, processState, startTimeOf, testChildren } from '../../test/support/processes.js';
import {
  canonicalDriver,
  chooseDriver,
  listPaths,
  persistDir,
  readInitProcess,
  readParentPid,
  readRunState,
  runStatus,
  scanStore,
  userdataDir,
  type StorageEntry,
} from './podman-storage.js';

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

  it("reads the lists on disk over a configured driver that has none (podman keeps the driver it recorded), and says so", async () => {
    list(graph, 'vfs');
    const choice = await chooseDriver(graph, run, { name: 'overlay', from: '/home/u/.config/containers/storage.conf' });
    expect(choice).toEqual({
      driver: 'vfs',
      found: true,
      note: `/home/u/.config/containers/storage.conf sets driver "overlay", but only vfs-containers under ${graph} hold lists, and podman keeps the driver it recorded for a store: reading vfs's`,
    });
  });

  it('follows a configured driver in a store without lists (podman makes the store with it)', async () => {
    await expect(chooseDriver(graph, run, { name: 'vfs', from: '/etc/containers/storage.conf' })).resolves.toEqual({ driver: 'vfs', found: false });
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

describeWith('podman', probes.podman, 'chooseDriver against podman itself', () => {
  let dir: string;
  let own: string[];

  beforeAll(() => {
    dir = mkdtempSync(join('/var/tmp', 'croot-t-driver-'));
    // A store of the test's own (graph root, run root, and libpod's tmp dir: nothing of the host's podman shared).
    own = ['--root', join(dir, 'graph'), '--runroot', join(dir, 'run'), '--tmpdir', join(dir, 'tmp')];
  });

  afterAll(() => {
    try {
      runCommand('podman', [...own, '--storage-driver', 'vfs', 'rm', '-fa']);
      runCommand('podman', [...own, '--storage-driver', 'vfs', 'rmi', '-af']);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it("reads the driver podman uses for a store whose storage.conf names another (podman info and podman ps as truth)", async () => {
    const graph = join(dir, 'graph');
    const runRoot = join(dir, 'run');
    // A vfs store with one container, made by podman: its database records vfs.
    runCommand('sh', ['-c', `d=$(mktemp -d) && cp /bin/busybox $d/ && tar -C $d -c . | podman ${own.join(' ')} --storage-driver vfs import - localhost/croot-t-driver:latest >/dev/null; s=$?; rm -rf $d; exit $s`]);
    const id = runCommand('podman', [...own, '--storage-driver', 'vfs', 'create', '--name', 'croot-t-driver', 'localhost/croot-t-driver:latest', '/busybox', 'true']);
    // Then a storage.conf for that store naming overlay.
    const conf = join(dir, 'storage.conf');
    writeFileSync(conf, `[storage]\ndriver = "overlay"\ngraphroot = "${graph}"\nrunroot = "${runRoot}"\n`);
    const podman = (args: readonly string[]): string =>
      execFileSync('podman', ['--tmpdir', join(dir, 'tmp'), ...args], {
        env: { ...process.env, CONTAINERS_STORAGE_CONF: conf },
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 60000,
      }).trim();
    const used = podman(['info', '--format', '{{.Store.GraphDriverName}}']);
    expect(podman(['ps', '-a', '--no-trunc', '--format', '{{.ID}}'])).toBe(id);
    const choice = await chooseDriver(graph, runRoot, { name: 'overlay', from: conf });
    expect(choice.driver).toBe(used);
    const scan = await scanStore({ label: 'rootful', storageDir: graph, runDir: runRoot, driver: choice.driver });
    expect(scan.entries.map((e) => e.id)).toEqual([id]);
  }, 120000);

  it('reads a store podman has used for images only as empty, not absent (podman ps -a lists nothing there), and a store folder that is not there as absent', async () => {
    const images = ['--root', join(dir, 'images-graph'), '--runroot', join(dir, 'images-run'), '--tmpdir', join(dir, 'tmp'), '--storage-driver', 'vfs'];
    try {
      runCommand('sh', ['-c', `d=$(mktemp -d) && cp /bin/busybox $d/ && tar -C $d -c . | podman ${images.join(' ')} import - localhost/croot-t-images:latest >/dev/null; s=$?; rm -rf $d; exit $s`]);
      expect(runCommand('podman', [...images, 'ps', '-a', '--format', '{{.ID}}'])).toBe('');
      const store = { label: 'rootful', storageDir: join(dir, 'images-graph'), runDir: join(dir, 'images-run'), driver: 'vfs' };
      // What c/storage left: the store, and no container list yet.
      expect(existsSync(store.storageDir)).toBe(true);
      expect(existsSync(listPaths(store)[0] as string)).toBe(false);
      const scan = await scanStore(store);
      expect(scan).toMatchObject({ entries: [], read: [], empty: `no containers yet (no ${listPaths(store)[0] as string})` });
      expect(scan.absent).toBeUndefined();
      const nowhere = { ...store, storageDir: join(dir, 'never-made') };
      expect(await scanStore(nowhere)).toMatchObject({ entries: [], absent: `no ${listPaths(nowhere)[0] as string}` });
    } finally {
      runCommand('podman', [...images, 'rmi', '-af']);
    }
  }, 120000);
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
    // The store's folder is still there: empty, as podman sees it.
    await expect(scanStore(store(), lastGood)).resolves.toMatchObject({ entries: [], empty: `no containers yet (no ${list()})` });
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

describe('scanStore on c/storage\'s lists', () => {
  let root: string;
  const store = () => ({ label: 'rootful', storageDir: join(root, 'graph'), runDir: join(root, 'run'), driver: 'overlay' });
  const list = (name: string) => join(root, 'graph', 'overlay-containers', name);
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'croot-podman-lists-'));
    mkdirSync(join(root, 'graph', 'overlay-containers'), { recursive: true });
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('takes each entry\'s id and string names, and drops entries without an id', async () => {
    writeFileSync(
      list('containers.json'),
      JSON.stringify([
        { id: 'c1', names: ['web', '', 7, 'alias'], image: 'i', layer: 'l' },
        { id: '', names: ['no-id'] },
        { names: ['missing-id'] },
        { id: 5, names: ['number-id'] },
        { id: 'c2' },
        { id: 'c3', names: 'not-a-list' },
      ]),
    );
    await expect(scanStore(store())).resolves.toEqual({
      store: store(),
      entries: [
        { id: 'c1', names: ['web', 'alias'] },
        { id: 'c2', names: [] },
        { id: 'c3', names: [] },
      ],
      read: [list('containers.json')],
    });
  });

  it('joins the names of a container both lists hold', async () => {
    writeFileSync(list('containers.json'), JSON.stringify([{ id: 'c1', names: ['web'] }, { id: 'c2', names: ['db'] }]));
    writeFileSync(list('volatile-containers.json'), JSON.stringify([{ id: 'c1', names: ['web', 'web-tmp'] }]));
    const scan = await scanStore(store());
    expect(scan.entries).toEqual([
      { id: 'c1', names: ['web', 'web-tmp'] },
      { id: 'c2', names: ['db'] },
    ]);
    expect(scan.read).toEqual([list('containers.json'), list('volatile-containers.json')]);
  });

  it('refuses a list that is JSON but not an array, and counts the containers it keeps', async () => {
    const lastGood = new Map<string, readonly StorageEntry[]>();
    writeFileSync(list('containers.json'), JSON.stringify([{ id: 'c1' }, { id: 'c2' }]));
    await scanStore(store(), lastGood);
    writeFileSync(list('containers.json'), '{"id": "c1"}');
    const scan = await scanStore(store(), lastGood);
    expect(scan.entries.map((e) => e.id)).toEqual(['c1', 'c2']);
    expect(scan.kept).toEqual([`${list('containers.json')}: not a JSON array; keeping the 2 containers of its last good read`]);
    await expect(scanStore(store(), new Map())).resolves.toMatchObject({ entries: [], read: [], absent: `${list('containers.json')}: not a JSON array` });
  });

  it('names every list it could not read when it read none', async () => {
    writeFileSync(list('containers.json'), 'not json');
    writeFileSync(list('volatile-containers.json'), '"text"');
    const scan = await scanStore(store());
    expect(scan.absent?.split('; ')).toEqual([expect.stringMatching(new RegExp(`^${list('containers.json')}: .+`)), `${list('volatile-containers.json')}: not a JSON array`]);
  });
});

describe('readRunState', () => {
  let root: string;
  const store = () => ({ runDir: root, driver: 'overlay' });
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'croot-podman-run-'));
    mkdirSync(userdataDir(store(), 'c1'), { recursive: true });
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  const write = (name: string, text: string): void => writeFileSync(join(userdataDir(store(), 'c1'), name), text);

  it('reads the PIDs and hostname podman and conmon write, with or without a newline', () => {
    write('pidfile', '4242');
    write('conmon.pid', '4241\n');
    write('hostname', 'web-host\n');
    expect(readRunState(store(), 'c1')).toEqual({ pid: 4242, conmonPid: 4241, hostname: 'web-host' });
  });

  it.each(['', '0', '-12', '12abc', '1.5', 'abc'])('leaves out a PID that is not a positive whole number: %j', (text) => {
    write('pidfile', text);
    write('conmon.pid', text);
    write('hostname', ' \n');
    expect(readRunState(store(), 'c1')).toEqual({});
  });
});

describe('the init process in /proc', () => {
  const children = testChildren();
  let tools: string;
  beforeEach(() => (tools = mkdtempSync(join(tmpdir(), 'croot-t-proc-'))));
  afterEach(async () => {
    await children.reap();
    rmSync(tools, { recursive: true, force: true });
  });

  it('gives a live process\'s parent and start time as the kernel does, whatever its name', () => {
    // A command name with the characters that end the name field of /proc/PID/stat.
    const odd = join(tools, 'a) S 1 (b');
    copyFileSync('/bin/sleep', odd);
    execFileSync('chmod', ['755', odd]);
    const child = children.start(odd, ['1000']);
    expect(readInitProcess('/proc', child.pid)).toEqual({ ppid: process.pid, startTime: startTimeOf(child.pid) });
    expect(readParentPid('/proc', child.pid)).toBe(process.pid);
  });

  it('gives nothing for a PID that is gone, and no parent for the kernel\'s own first process', async () => {
    const child = children.start('/bin/sleep', ['1000']);
    await children.reap();
    expect(readInitProcess('/proc', child.pid)).toBeUndefined();
    expect(readParentPid('/proc', child.pid)).toBeUndefined();
    expect(parentPid(1)).toBe(0);
    expect(readParentPid('/proc', 1)).toBeUndefined();
  });

  it('does not take a zombie as an init, but still gives its parent', async () => {
    // sh starts a short child and becomes a sleep that never reaps it.
    const parent = children.start('/bin/sh', ['-c', 'sleep 0 & exec sleep 1000']);
    const zombie = await eventually(async () => childrenOf(parent.pid).find((pid) => processState(pid) === 'Z'));
    expect(readInitProcess('/proc', zombie)).toBeUndefined();
    expect(readParentPid('/proc', zombie)).toBe(parent.pid);
    expect(readFileSync(`/proc/${zombie}/stat`, 'utf8')).toMatch(/\) Z /);
  });
});
