/**
 * `croot pid|show NAME` in-process, spawned as a user runs it, with real
 * containers of several engines on the host: a lookup loads only the
 * engines that can hold some container, yet answers only once every engine
 * that could hold the name has read its state. A name in two engines is
 * ambiguous (exit 4, both candidates named) however late the second engine
 * loads; a name in one is answered with what that engine's own CLI says; an
 * engine whose folder holds nothing does not change any answer, and one
 * whose folder holds a container does. The truth comes from docker, podman,
 * ctr, lxc-ls/lxc-info and the kernel, never from croot.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describeWith, probes, run } from './support/components.js';
import { builtBinaries, runCroot, type CommandResult } from './support/crootd-process.js';
import { ctrRun, ctrTaskPid, podmanInspect, podmanRun, removeCtrContainers, removePodmanContainers, type CtrContainer } from './support/engine-containers.js';
import { makeTempDir } from './support/pcp-peer.js';
import { dockerInspect, dockerRun, removeDockerContainers } from './support/testbed.js';

function probe(): string | undefined {
  return probes.root() ?? probes.docker() ?? probes.podman() ?? probes.containerd() ?? commandMissing('lxc-ls') ?? builtBinaries() ?? probes.native();
}

function commandMissing(cmd: string): string | undefined {
  try {
    run('sh', ['-c', `command -v ${cmd}`]);
    return undefined;
  } catch {
    return `${cmd} is not installed`;
  }
}

/** croot's exit statuses, as docs/cli.md and croot(1) list them. */
const EXIT = { ok: 0, notFound: 3, ambiguous: 4, notRunning: 5 };

/** How croot ended, in one comparable shape (stderr when it failed, to show why). */
function outcome(r: CommandResult): { code: number | null; stdout: string; stderr?: string } {
  return r.code === 0 ? { code: r.code, stdout: r.stdout.trim() } : { code: r.code, stdout: r.stdout.trim(), stderr: r.stderr };
}

describeWith('root, docker, podman, containerd, LXC tools and the built bin/croot', probe, 'croot lookups in-process across engines', () => {
  const tag = randomBytes(4).toString('hex');
  /** Docker alone. */
  const dockerOnly = `croot-t-${tag}-d`;
  /** Podman alone. */
  const podmanOnly = `croot-t-${tag}-p`;
  /** Docker and podman, one container each. */
  const dockerPodman = `croot-t-${tag}-dp`;
  /** A docker container, and a containerd task of that id. */
  const dockerCtr = `croot-t-${tag}-dc`;
  /** A containerd task alone. */
  const ctrOnly: CtrContainer = { namespace: 'default', id: `croot-t-${tag}-c` };
  const ctrTwin: CtrContainer = { namespace: 'default', id: dockerCtr };
  const docker: string[] = [];
  const podman: string[] = [];
  const ctr: CtrContainer[] = [];
  let work: string;
  const ids = new Map<string, string>();

  beforeAll(() => {
    work = makeTempDir('croot-lookup-');
    for (const name of [dockerOnly, dockerPodman, dockerCtr]) ids.set(`docker:${name}`, dockerRun(name, {}, docker).id);
    for (const name of [podmanOnly, dockerPodman]) ids.set(`podman:${name}`, podmanRun(name, {}, podman));
    ctrRun(ctrOnly, {}, ctr);
    ctrRun(ctrTwin, {}, ctr);
  }, 180000);

  afterAll(() => {
    removeDockerContainers(docker);
    removePodmanContainers(podman);
    removeCtrContainers(ctr);
    if (work !== undefined) rmSync(work, { recursive: true, force: true });
  }, 180000);

  const dockerPid = (name: string): string => dockerInspect(name, '{{.State.Pid}}');
  const podmanPid = (name: string): string => podmanInspect(name, '{{.State.Pid}}');

  it('answers a name only one engine holds with that engine’s own PID for it, and exits 0', async () => {
    const ctrPid = ctrTaskPid(ctrOnly);
    expect(ctrPid).toBeGreaterThan(0);
    for (const [name, truth] of [
      [dockerOnly, dockerPid(dockerOnly)],
      [podmanOnly, podmanPid(podmanOnly)],
      [ctrOnly.id, String(ctrPid)],
    ] as const) {
      expect([name, outcome(await runCroot(['pid', name]))]).toEqual([name, { code: EXIT.ok, stdout: truth }]);
    }
  }, 60000);

  it('reports a name in Docker and Podman as ambiguous, naming both, every time (exit 4)', async () => {
    for (let i = 0; i < 3; i++) {
      const r = await runCroot(['pid', dockerPodman]);
      expect(r.code).toBe(EXIT.ambiguous);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain(`docker:${ids.get(`docker:${dockerPodman}`)}`);
      expect(r.stderr).toContain(`podman:${ids.get(`podman:${dockerPodman}`)}`);
    }
  }, 60000);

  it('reports a Docker name that is also a containerd task’s as ambiguous, naming both (exit 4)', async () => {
    const r = await runCroot(['show', dockerCtr]);
    expect(r.code).toBe(EXIT.ambiguous);
    expect(r.stderr).toContain(`docker:${ids.get(`docker:${dockerCtr}`)}`);
    expect(r.stderr).toContain(`containerd:${ctrTwin.namespace}/${ctrTwin.id}`);
  }, 60000);

  it('answers ENGINE:NAME with that engine’s container, the other engine’s twin aside', async () => {
    expect(outcome(await runCroot(['pid', `docker:${dockerPodman}`]))).toEqual({ code: EXIT.ok, stdout: dockerPid(dockerPodman) });
    expect(outcome(await runCroot(['pid', `podman:${dockerPodman}`]))).toEqual({ code: EXIT.ok, stdout: podmanPid(dockerPodman) });
    expect(outcome(await runCroot(['pid', `docker:${dockerCtr}`]))).toEqual({ code: EXIT.ok, stdout: dockerPid(dockerCtr) });
  }, 60000);

  it('exits 3 for a name no engine holds', async () => {
    const r = await runCroot(['pid', `croot-t-${tag}-nosuch`]);
    expect(r.code).toBe(EXIT.notFound);
    expect(r.stderr).toContain(`no container matches "croot-t-${tag}-nosuch"`);
  }, 60000);

  describe('an engine whose folder is empty, and the same folder holding a container', () => {
    let lxcDir: string;
    let taskDir: string;
    const lxcName = `croot-t-${tag}-lxc`;
    const env = (): NodeJS.ProcessEnv => ({ ...process.env, PCP_LXC_DIR: lxcDir, CROOT_CONTAINERD_TASK_DIR: taskDir });

    beforeAll(() => {
      lxcDir = join(work, 'lxc');
      taskDir = join(work, 'tasks');
      mkdirSync(lxcDir);
      // containerd's layout with its namespaces and no task in any of them.
      mkdirSync(join(taskDir, 'default'), { recursive: true });
      mkdirSync(join(taskDir, 'k8s.io'));
    });

    it('answers and refuses exactly as before while the LXC and containerd folders hold nothing', async () => {
      expect(run('lxc-ls', ['-P', lxcDir])).toBe('');
      expect(outcome(await runCroot(['pid', dockerOnly], { env: env() }))).toEqual({ code: EXIT.ok, stdout: dockerPid(dockerOnly) });
      expect((await runCroot(['pid', dockerPodman], { env: env() })).code).toBe(EXIT.ambiguous);
      expect((await runCroot(['pid', lxcName], { env: env() })).code).toBe(EXIT.notFound);
      // The containerd task is in the real task folder, not in this empty one.
      expect((await runCroot(['pid', ctrOnly.id], { env: env() })).code).toBe(EXIT.notFound);
    }, 60000);

    it('finds the LXC container once its folder is there, as lxc-ls and lxc-info see it (stopped: exit 5)', async () => {
      mkdirSync(join(lxcDir, lxcName));
      writeFileSync(join(lxcDir, lxcName, 'config'), `lxc.uts.name = ${lxcName}\n`);
      expect(run('lxc-ls', ['-P', lxcDir]).split(/\s+/)).toEqual([lxcName]);
      expect(run('lxc-info', ['-P', lxcDir, '-n', lxcName, '-s'])).toMatch(/^State:\s+STOPPED$/);
      const r = await runCroot(['pid', lxcName], { env: env() });
      expect(r.code).toBe(EXIT.notRunning);
      expect(r.stderr).toContain(`lxc:${lxcName}`);
      // The other engines' answers are unchanged.
      expect(outcome(await runCroot(['pid', podmanOnly], { env: env() }))).toEqual({ code: EXIT.ok, stdout: podmanPid(podmanOnly) });
    }, 60000);

    it('reports an LXC container named like a Docker one as ambiguous, naming both (its id is a name someone chose)', async () => {
      mkdirSync(join(lxcDir, dockerOnly));
      writeFileSync(join(lxcDir, dockerOnly, 'config'), `lxc.uts.name = ${dockerOnly}\n`);
      expect(run('lxc-ls', ['-P', lxcDir]).split(/\s+/)).toContain(dockerOnly);
      const r = await runCroot(['pid', dockerOnly], { env: env() });
      expect(r.code).toBe(EXIT.ambiguous);
      expect(r.stderr).toContain(`docker:${ids.get(`docker:${dockerOnly}`)}`);
      expect(r.stderr).toContain(`lxc:${dockerOnly}`);
      expect(outcome(await runCroot(['pid', `docker:${dockerOnly}`], { env: env() }))).toEqual({ code: EXIT.ok, stdout: dockerPid(dockerOnly) });
      rmSync(join(lxcDir, dockerOnly), { recursive: true, force: true });
    }, 60000);
  });

  it('reports a container declared in the config file under a Docker container’s name as ambiguous; static:NAME and docker:NAME pick one', async () => {
    const config = join(work, 'twin.json');
    // The declared container is this test's own process: the kernel's PID for it is process.pid.
    writeFileSync(config, JSON.stringify({ containers: [{ name: dockerOnly, pid: process.pid }] }));
    const r = await runCroot(['pid', dockerOnly, '--config', config]);
    expect(r.code).toBe(EXIT.ambiguous);
    expect(r.stderr).toContain(`docker:${ids.get(`docker:${dockerOnly}`)}`);
    expect(r.stderr).toContain(`static:${dockerOnly}`);
    expect(outcome(await runCroot(['pid', `static:${dockerOnly}`, '--config', config]))).toEqual({ code: EXIT.ok, stdout: String(process.pid) });
    expect(outcome(await runCroot(['pid', `docker:${dockerOnly}`, '--config', config]))).toEqual({ code: EXIT.ok, stdout: dockerPid(dockerOnly) });
  }, 60000);
});
