/**
 * core/host/proc-files.ts against the /proc/PID/cgroup layouts of every engine and
 * cgroup mode (test/fixtures/cgroup/README.md says where each comes from),
 * and the captured layouts captured again, live, to show they are real.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { chooseCGroupPath, parseCGroupFile, readCGroupName } from '../core/host/proc-files.js';
import { describeWith, probes } from './support/components.js';

const FIXTURES = join(__dirname, 'fixtures', 'cgroup');
const ID = '3f5c2d0c9b8e4a7f6e5d4c3b2a1908f7e6d5c4b3a29180f7e6d5c4b3a2918070';

/** What the rules (unified unless `/`, else memory, else name=systemd) choose for each layout. */
const expected: Record<string, string> = {
  'hybrid-podman-cgroupfs': 'libpod_parent/libpod-be36a965cb4803f38194ce0ee329956f4c53254d81f5cdd5f9ef5a8722fe788b',
  'hybrid-containerd-ctr': 'k8s.io/croot-fx-kapp',
  'hybrid-host-process': 'process_api/d7de72bd0dc4d3563edb31feef6a97ac',
  'hybrid-docker-systemd': `system.slice/docker-${ID}.scope`,
  'v2-docker-systemd': `system.slice/docker-${ID}.scope`,
  'hybrid-podman-rootless': `user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${ID}.scope/container`,
  'v2-podman-rootless': `user.slice/user-1000.slice/user@1000.service/user.slice/libpod-${ID}.scope/container`,
  'hybrid-k8s-systemd': `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod5f1c7e2a_3b4d_4e6f_8a9b_0c1d2e3f4a5b.slice/cri-containerd-${ID}.scope`,
  'v2-k8s-systemd': `kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod5f1c7e2a_3b4d_4e6f_8a9b_0c1d2e3f4a5b.slice/cri-containerd-${ID}.scope`,
  'hybrid-docker-cgroupfs': `docker/${ID}`,
  'v1-docker-cgroupfs': `docker/${ID}`,
  'v1-memory-at-root': 'system.slice/pmcd.service',
  'hybrid-host-root': '',
  'v2-host-root': '',
};

/** The layouts scripts/capture-cgroup-layouts.sh writes (the others were captured from real engines with their own ids). */
const SCRIPTED = Object.keys(expected).filter((l) => !['hybrid-podman-cgroupfs', 'hybrid-containerd-ctr', 'hybrid-host-process'].includes(l));

describe('cgroup layouts', () => {
  let procRoot: string;
  const pids = new Map<string, number>();

  beforeAll(() => {
    procRoot = mkdtempSync(join(tmpdir(), 'croot-cgroup-'));
    let pid = 100;
    for (const layout of readdirSync(FIXTURES, { withFileTypes: true }).filter((e) => e.isDirectory())) {
      pids.set(layout.name, ++pid);
      cpSync(join(FIXTURES, layout.name, 'cgroup'), join(procRoot, String(pid), 'cgroup'));
    }
  });
  afterAll(() => rmSync(procRoot, { recursive: true, force: true }));

  it('has an expected answer for every fixture layout and a fixture for every expected answer', () => {
    expect([...pids.keys()].sort()).toEqual(Object.keys(expected).sort());
  });

  describe.each(Object.entries(expected))('%s', (layout, answer) => {
    it('readCGroupName gives the chosen path without its leading slash', async () => {
      await expect(readCGroupName(procRoot, pids.get(layout) as number)).resolves.toBe(answer);
    });
  });

  it('prefers the unified line over memory when the unified path is not the root', () => {
    const lines = parseCGroupFile('4:memory:/docker/a\n1:name=systemd:/docker/a\n0::/system.slice/docker-b.scope\n');
    expect(chooseCGroupPath(lines)).toBe('system.slice/docker-b.scope');
  });

  it('keeps a path longer than the 128 bytes PCP truncates to', async () => {
    const answer = await readCGroupName(procRoot, pids.get('v2-k8s-systemd') as number);
    expect(answer.length).toBeGreaterThan(128);
    expect(answer.endsWith(`cri-containerd-${ID}.scope`)).toBe(true);
  });

  it('says a process whose cgroup file is missing is not running', async () => {
    await expect(readCGroupName(procRoot, 99999)).rejects.toMatchObject({ code: 'ERR_NOT_RUNNING' });
  });
});

describeWith('root and containerd (ctr, runc)', () => probes.root() ?? probes.containerd(), 'the captured cgroup layouts', () => {
  let fresh: string;
  beforeAll(() => {
    fresh = mkdtempSync(join(tmpdir(), 'croot-cgroup-capture-'));
    execFileSync('bash', [resolve(__dirname, '..', 'scripts', 'capture-cgroup-layouts.sh'), fresh], { stdio: 'pipe', timeout: 240000 });
  }, 300000);
  afterAll(() => rmSync(fresh, { recursive: true, force: true }));

  it.each(SCRIPTED)('%s is what the kernel shows for it here, captured again now', (layout) => {
    expect(readFileSync(join(fresh, layout, 'cgroup'), 'utf8')).toBe(readFileSync(join(FIXTURES, layout, 'cgroup'), 'utf8'));
  });
});
