import { execFileSync } from 'node:child_process';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cgroupHintFrom, kubernetesNamesOf, listFolders, readTask, readTaskRuntime, readTaskSpec, taskSpecFrom } from './containerd-tasks.js';

const FIXTURE = join(__dirname, '..', '..', 'test', 'fixtures', 'containerd');

describe('readTaskRuntime and readTaskSpec on damaged task files', () => {
  let base: string;
  let taskRoot: string;
  let runcRoot: string;
  const bundle = (id: string): string => join(taskRoot, 'ns', id);
  const runc = (id: string): string => join(runcRoot, 'ns', id);

  /** A started task `id` as runc leaves it: init.pid, state.json naming the same PID, no exec.fifo. */
  function task(id: string, pid: number): void {
    mkdirSync(bundle(id), { recursive: true });
    mkdirSync(runc(id), { recursive: true });
    writeFileSync(join(bundle(id), 'init.pid'), String(pid));
    writeFileSync(join(runc(id), 'state.json'), JSON.stringify({ init_process_pid: pid, init_process_start: 4242 }));
    writeFileSync(join(bundle(id), 'config.json'), JSON.stringify({ hostname: `h-${id}` }));
  }

  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'croot-ctr-tasks-'));
    taskRoot = join(base, 'tasks');
    runcRoot = join(base, 'runc');
    task('a', 1234);
    task('b', 5678);
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  it('reads a whole task: its PID and runc’s start time', async () => {
    await expect(readTaskRuntime(bundle('a'), runc('a'), taskRoot, runcRoot)).resolves.toEqual({ created: false, pid: 1234, recordedStart: 4242 });
  });

  it('takes init.pid alone when there is no state.json (a runtime other than runc)', async () => {
    rmSync(join(runc('a'), 'state.json'));
    await expect(readTaskRuntime(bundle('a'), runc('a'), taskRoot, runcRoot)).resolves.toStrictEqual({ created: false, pid: 1234 });
  });

  it('calls the run state damaged when init.pid is a link to another task’s', async () => {
    rmSync(join(bundle('a'), 'init.pid'));
    symlinkSync(join(bundle('b'), 'init.pid'), join(bundle('a'), 'init.pid'));
    await expect(readTaskRuntime(bundle('a'), runc('a'), taskRoot, runcRoot)).resolves.toEqual({ created: false, damaged: 'init.pid a symbolic link' });
  });

  it('calls the run state damaged when init.pid and state.json name two PIDs (init.pid cut short)', async () => {
    writeFileSync(join(bundle('a'), 'init.pid'), '12');
    await expect(readTaskRuntime(bundle('a'), runc('a'), taskRoot, runcRoot)).resolves.toEqual({ created: false, damaged: "init.pid says 12, runc's state.json 1234" });
  });

  it('calls the run state damaged when init.pid holds no PID, or state.json is not whole', async () => {
    writeFileSync(join(bundle('a'), 'init.pid'), '');
    writeFileSync(join(runc('b'), 'state.json'), '{"init_process_pid": 56');
    await expect(readTaskRuntime(bundle('a'), runc('a'), taskRoot, runcRoot)).resolves.toEqual({ created: false, damaged: 'init.pid holds no PID' });
    await expect(readTaskRuntime(bundle('b'), runc('b'), taskRoot, runcRoot)).resolves.toEqual({ created: false, damaged: "runc's state.json is not whole" });
  });

  it('finds the roots two folders above the task’s by default', async () => {
    await expect(readTaskRuntime(bundle('b'), runc('b'))).resolves.toEqual({ created: false, pid: 5678, recordedStart: 4242 });
    await expect(readTaskSpec(bundle('b'))).resolves.toEqual({ sandbox: false, hostname: 'h-b' });
  });

  it('reads no spec through a link, to another task’s config.json or through a linked bundle folder', async () => {
    rmSync(join(bundle('a'), 'config.json'));
    symlinkSync(join(bundle('b'), 'config.json'), join(bundle('a'), 'config.json'));
    symlinkSync(bundle('b'), bundle('c'));
    await expect(readTaskSpec(bundle('a'), taskRoot)).resolves.toBeUndefined();
    await expect(readTaskSpec(bundle('c'), taskRoot)).resolves.toBeUndefined();
    await expect(readTaskSpec(bundle('b'), taskRoot)).resolves.toEqual({ sandbox: false, hostname: 'h-b' });
  });
});

describe('readTaskRuntime and readTaskSpec on what runc and the shim write', () => {
  let base: string;
  let taskRoot: string;
  let runcRoot: string;
  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'croot-ctr-tasks-'));
    cpSync(FIXTURE, base, { recursive: true });
    taskRoot = join(base, 'task');
    runcRoot = join(base, 'runc');
  });
  afterEach(() => rmSync(base, { recursive: true, force: true }));

  const bundle = (key: string): string => join(taskRoot, key);
  const runc = (key: string): string => join(runcRoot, key);
  const json = (path: string): Record<string, unknown> => JSON.parse(readFileSync(path, 'utf8')) as Record<string, unknown>;

  it("reads the fixture's running task as its files say", async () => {
    const state = json(join(runc('default/croot-fx-ctr1'), 'state.json'));
    await expect(readTaskRuntime(bundle('default/croot-fx-ctr1'), runc('default/croot-fx-ctr1'), taskRoot, runcRoot)).resolves.toEqual({
      created: false,
      pid: Number(readFileSync(join(bundle('default/croot-fx-ctr1'), 'init.pid'), 'utf8')),
      recordedStart: state.init_process_start,
    });
  });

  it('gives the CRI names and the sandbox flag from the annotations of the fixture', async () => {
    const app = json(join(bundle('k8s.io/croot-fx-kapp'), 'config.json')) as { annotations: Record<string, string>; linux: { cgroupsPath: string } };
    const a = app.annotations;
    await expect(readTaskSpec(bundle('k8s.io/croot-fx-kapp'), taskRoot)).resolves.toEqual({
      sandbox: false,
      kubernetes: { namespace: a['io.kubernetes.cri.sandbox-namespace'], pod: a['io.kubernetes.cri.sandbox-name'], container: a['io.kubernetes.cri.container-name'] },
      cgroupsPath: app.linux.cgroupsPath,
    });
    const sbx = json(join(bundle('k8s.io/croot-fx-sbx'), 'config.json')) as { annotations: Record<string, string> };
    expect(sbx.annotations['io.kubernetes.cri.container-type']).toBe('sandbox');
    await expect(readTaskSpec(bundle('k8s.io/croot-fx-sbx'), taskRoot)).resolves.toMatchObject({ sandbox: true });
  });

  it('calls an init.pid damaged that is zero, negative, a fraction or has trailing junk', async () => {
    const key = 'default/croot-fx-ctr1';
    for (const text of ['0', '-8101', '8101.5', '8101abc', '0x1fa5']) {
      writeFileSync(join(bundle(key), 'init.pid'), text);
      await expect(readTaskRuntime(bundle(key), runc(key), taskRoot, runcRoot)).resolves.toEqual({ created: false, damaged: 'init.pid holds no PID' });
    }
  });

  it("calls a state.json damaged that is JSON but not an object, or a link", async () => {
    const key = 'default/croot-fx-ctr1';
    for (const text of ['null', '[]', '8101', '"8101"']) {
      writeFileSync(join(runc(key), 'state.json'), text);
      await expect(readTaskRuntime(bundle(key), runc(key), taskRoot, runcRoot)).resolves.toEqual({ created: false, damaged: "runc's state.json is not whole" });
    }
    rmSync(join(runc(key), 'state.json'));
    symlinkSync(join(runc('k8s.io/croot-fx-kapp'), 'state.json'), join(runc(key), 'state.json'));
    await expect(readTaskRuntime(bundle(key), runc(key), taskRoot, runcRoot)).resolves.toEqual({ created: false, damaged: "runc's state.json a symbolic link" });
  });

  it('keeps the PID but no start time when runc\'s start is not an integer', async () => {
    const key = 'default/croot-fx-ctr1';
    const state = json(join(runc(key), 'state.json'));
    for (const start of [38127.5, '38127', null]) {
      writeFileSync(join(runc(key), 'state.json'), JSON.stringify({ ...state, init_process_start: start }));
      await expect(readTaskRuntime(bundle(key), runc(key), taskRoot, runcRoot)).resolves.toEqual({ created: false, pid: state.init_process_pid });
    }
  });

  it('reads a task runc has created but not started: exec.fifo there, no init.pid yet', async () => {
    const key = 'default/croot-fx-ctr1';
    rmSync(join(bundle(key), 'init.pid'));
    execFileSync('mkfifo', [join(runc(key), 'exec.fifo')]);
    await expect(readTaskRuntime(bundle(key), runc(key), taskRoot, runcRoot)).resolves.toStrictEqual({ created: true });
  });

  it('reads no spec from a config.json that is not a JSON object', async () => {
    const key = 'default/croot-fx-ctr1';
    for (const text of ['[]', 'null', '{"hostname": ', '']) {
      writeFileSync(join(bundle(key), 'config.json'), text);
      await expect(readTaskSpec(bundle(key), taskRoot)).resolves.toBeUndefined();
    }
  });

  it('reads a task by key: namespace and id, its spec kept while the bundle folder is the same, read again when it is a new one', async () => {
    const key = 'default/croot-fx-ctr1';
    const first = await readTask(taskRoot, runcRoot, key, undefined);
    expect(first).toMatchObject({ key, namespace: 'default', id: 'croot-fx-ctr1', pid: 8101, created: false, damaged: undefined, spec: { sandbox: false } });
    const spec = json(join(bundle(key), 'config.json'));
    writeFileSync(join(bundle(key), 'config.json'), JSON.stringify({ ...spec, hostname: 'changed' }));
    expect((await readTask(taskRoot, runcRoot, key, first))?.spec?.hostname).toBeUndefined();
    // Removed and made again under the same id: another inode, another task.
    renameSync(bundle(key), join(base, 'old-bundle'));
    cpSync(join(base, 'old-bundle'), bundle(key), { recursive: true });
    expect((await readTask(taskRoot, runcRoot, key, first))?.spec?.hostname).toBe('changed');
  });

  it('reads the spec of a bundle whose config.json was missing at the first read once it is there', async () => {
    const key = 'default/croot-fx-ctr1';
    const spec = readFileSync(join(bundle(key), 'config.json'), 'utf8');
    rmSync(join(bundle(key), 'config.json'));
    await expect(readTaskSpec(bundle(key), taskRoot)).resolves.toBeUndefined();
    const first = await readTask(taskRoot, runcRoot, key, undefined);
    expect(first).toMatchObject({ key, spec: undefined });
    writeFileSync(join(bundle(key), 'config.json'), spec);
    expect((await readTask(taskRoot, runcRoot, key, first))?.spec).toMatchObject({ sandbox: false, cgroupsPath: (JSON.parse(spec) as { linux: { cgroupsPath: string } }).linux.cgroupsPath });
  });

  it('takes an init.pid with a trailing newline, and no PID beyond what a number holds exactly', async () => {
    const key = 'default/croot-fx-ctr1';
    writeFileSync(join(bundle(key), 'init.pid'), '8101\n');
    await expect(readTaskRuntime(bundle(key), runc(key), taskRoot, runcRoot)).resolves.toMatchObject({ pid: 8101 });
    writeFileSync(join(bundle(key), 'init.pid'), '99999999999999999999');
    await expect(readTaskRuntime(bundle(key), runc(key), taskRoot, runcRoot)).resolves.toEqual({ created: false, damaged: 'init.pid holds no PID' });
  });

  it('reads no task where the bundle is missing, a file, or a link to another bundle', async () => {
    writeFileSync(join(taskRoot, 'default', 'a-file'), '');
    symlinkSync(bundle('default/croot-fx-ctr1'), join(taskRoot, 'default', 'a-link'));
    for (const id of ['missing', 'a-file', 'a-link']) await expect(readTask(taskRoot, runcRoot, `default/${id}`, undefined)).resolves.toBeUndefined();
  });

  it('lists folders only, hidden ones left out', async () => {
    mkdirSync(join(taskRoot, '.hidden'));
    writeFileSync(join(taskRoot, 'a-file'), '');
    expect((await listFolders(taskRoot)).sort()).toEqual(['default', 'k8s.io', 'moby']);
  });
});

describe('taskSpecFrom and kubernetesNamesOf', () => {
  it('keeps string annotations only, and leaves out an empty hostname or cgroupsPath', () => {
    expect(taskSpecFrom({ annotations: { 'io.kubernetes.cri.container-type': 1, other: null }, hostname: '', linux: { cgroupsPath: '' } })).toStrictEqual({ sandbox: false });
    expect(taskSpecFrom({ annotations: null, hostname: 7, linux: null })).toStrictEqual({ sandbox: false });
    const names = { 'io.kubernetes.cri.container-name': 7, 'io.kubernetes.cri.sandbox-name': ['shop'], 'io.kubernetes.cri.sandbox-namespace': true };
    expect(taskSpecFrom({ annotations: names })).toStrictEqual({ sandbox: false });
    expect(taskSpecFrom({ hostname: 'web', linux: { cgroupsPath: '/a/b' } })).toEqual({ sandbox: false, hostname: 'web', cgroupsPath: '/a/b' });
  });

  it('gives Kubernetes names only when the pod namespace, pod and container are all there', () => {
    const all: Record<string, string> = { 'io.kubernetes.cri.container-name': 'app', 'io.kubernetes.cri.sandbox-name': 'shop', 'io.kubernetes.cri.sandbox-namespace': 'prod' };
    expect(kubernetesNamesOf(all)).toEqual({ namespace: 'prod', pod: 'shop', container: 'app' });
    for (const key of Object.keys(all)) {
      expect(kubernetesNamesOf({ ...all, [key]: '' })).toBeUndefined();
      const { [key]: _gone, ...rest } = all;
      expect(kubernetesNamesOf(rest)).toBeUndefined();
    }
  });
});

describe("cgroupHintFrom, as runc's systemd driver expands cgroupsPath", () => {
  it('takes a relative path without a colon as it is, and strips every leading slash', () => {
    expect(cgroupHintFrom('default/web')).toBe('default/web');
    expect(cgroupHintFrom('//default/web')).toBe('default/web');
    expect(cgroupHintFrom('/pods/a:b:c')).toBe('pods/a:b:c');
  });

  it('puts a unit in the root slice for "-.slice" or no slice', () => {
    expect(cgroupHintFrom('-.slice:docker:abc')).toBe('docker-abc.scope');
    expect(cgroupHintFrom(':docker:abc')).toBe('docker-abc.scope');
  });

  it('names the scope without a prefix when none is given, and keeps a name that is itself a slice', () => {
    expect(cgroupHintFrom('system.slice::abc')).toBe('system.slice/abc.scope');
    expect(cgroupHintFrom('machine.slice:x:machine-web.slice')).toBe('machine.slice/machine-web.slice');
  });
});
