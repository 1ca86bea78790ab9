/**
 * Real-component gates for integration tests. Locally, a test whose engine or
 * PCP is missing is skipped with the reason; in CI it fails, because .ci/run
 * is meant to have installed and started everything.
 */
import { execFileSync } from 'node:child_process';
import { loadNative } from '../../native/load-native.js';

/**
 * Whether this is a CI run: `CI` set to anything but empty, `false` or `0`
 * (`.ci/run` sets `CI=true` itself, so an inherited value cannot turn it off).
 */
export function isCI(env: NodeJS.ProcessEnv = process.env): boolean {
  const value = (env.CI ?? '').trim().toLowerCase();
  return value !== '' && value !== 'false' && value !== '0';
}

export const inCI = isCI();

/** `describe` when `probe()` returns undefined (available), else skip (locally) or fail (in CI). */
export function describeWith(component: string, probe: () => string | undefined, name: string, body: () => void): void {
  const missing = safeProbe(probe);
  if (missing === undefined) {
    describe(name, body);
  } else if (inCI) {
    describe(name, () => {
      it(`needs ${component}`, () => {
        throw new Error(`${component} is required in CI but missing: ${missing}`);
      });
    });
  } else {
    describe.skip(`${name} (skipped: ${component} missing: ${missing})`, body);
  }
}

function safeProbe(probe: () => string | undefined): string | undefined {
  try {
    return probe();
  } catch (err) {
    return (err as Error).message;
  }
}

/** Undefined when `cmd args` exits 0, else its complaint. */
export function commandWorks(cmd: string, args: readonly string[]): string | undefined {
  try {
    execFileSync(cmd, args, { stdio: ['ignore', 'ignore', 'pipe'], timeout: 20000 });
    return undefined;
  } catch (err) {
    const e = err as { stderr?: Buffer; message: string };
    return `${cmd} ${args.join(' ')}: ${e.stderr?.toString().trim() || e.message}`;
  }
}

/** The user whose rootless podman store the tests use (scripts/testbed-start.sh adds it). */
export const ROOTLESS_USER = 'croot-rootless';

/** Rootless podman as ROOTLESS_USER: root (for runuser), the user, and the test image in its store. */
function podmanRootlessProbe(): string | undefined {
  const missing =
    probes.root() ??
    probes.podman() ??
    commandWorks('id', ['-u', ROOTLESS_USER]) ??
    commandWorks('sh', [
      '-c',
      `cd / && runuser -u ${ROOTLESS_USER} -- env XDG_RUNTIME_DIR=/run/user/$(id -u ${ROOTLESS_USER}) podman image exists localhost/croot-test:latest`,
    ]);
  return missing === undefined ? undefined : `${missing} (scripts/testbed-start.sh sets up ${ROOTLESS_USER})`;
}

export const probes = {
  root: (): string | undefined => (process.getuid?.() === 0 ? undefined : 'tests need root'),
  docker: (): string | undefined => commandWorks('docker', ['info', '--format', '{{.ID}}']),
  podman: (): string | undefined => commandWorks('podman', ['info', '--format', '{{.Host.Arch}}']),
  /** Rootless podman as the test user `croot-rootless`, with `localhost/croot-test:latest` in its store. */
  podmanRootless: (): string | undefined => podmanRootlessProbe(),
  containerd: (): string | undefined => commandWorks('ctr', ['version']),
  /** LXC's tools and the busybox template (lxc, lxc-templates, busybox-static): containers without downloads. */
  lxc: (): string | undefined =>
    commandWorks('lxc-create', ['--version']) ??
    commandWorks('test', ['-x', '/usr/share/lxc/templates/lxc-busybox']) ??
    commandWorks('test', ['-x', '/bin/busybox']),
  pcp: (): string | undefined => commandWorks('test', ['-x', '/var/lib/pcp/pmdas/root/pmdaroot']),
  /** PCP's `pcp` user, which PCP's packages create (the config file's user names are checked against it). */
  pcpUser: (): string | undefined => commandWorks('id', ['-u', 'pcp']),
  pcpClientLib: (): string | undefined => commandWorks('test', ['-e', '/usr/include/pcp/pmdaroot.h']),
  /** croot's addon: undefined when it loads, else the first line of the loader's complaint. */
  native: (): string | undefined => {
    try {
      loadNative();
      return undefined;
    } catch (err) {
      return (err as Error).message.split('\n')[0];
    }
  },
};

/** Runs a command and returns its trimmed stdout. */
export function run(cmd: string, args: readonly string[], timeout = 60000): string {
  return execFileSync(cmd, args, { encoding: 'utf8', timeout, stdio: ['ignore', 'pipe', 'pipe'] }).trim();
}
