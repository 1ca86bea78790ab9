/**
 * The registry holds each running container's init process by a pidfd: an
 * exit reaches the index without any request, and a PID that another real
 * process takes later is never answered for the old container, even when
 * the engine keeps naming that PID. Run as PID 1 of a private PID namespace,
 * where the PID can be reused on purpose.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { describeWith, probes } from './support/components.js';

const repo = resolve(__dirname, '..');

describeWith('root', () => probes.root() ?? probes.native(), 'the registry with pidfds', () => {
  it('drops an exited init process from the answers without a request, and never answers for a process that took its PID', async () => {
    const { stdout } = await promisify(execFile)(
      'unshare',
      ['--pid', '--fork', '--mount-proc', process.execPath, '-r', './test/support/ts-register.js', './test/support/registry-reuse-scenario.ts'],
      { cwd: repo, timeout: 60000 },
    );
    const result = JSON.parse(stdout.trim().split('\n').pop() as string) as {
      pid: number;
      anchor: string;
      before: { pid: string; hostname: string };
      events: string[];
      after: { pid: string; hostname: string; cgroup: string };
      kernel: { secondPid: number; comm: string };
    };
    // The kernel: another `sleep` holds the old PID now.
    expect(result.kernel).toEqual({ secondPid: result.pid, comm: 'sleep' });
    expect(result.anchor).toBe('pidfd');
    expect(result.before).toEqual({ pid: `answered ${result.pid}`, hostname: 'answered first-host' });
    expect(result.events).toEqual(['added running', 'updated exited']);
    expect(result.after).toEqual({ pid: 'ERR_NOT_RUNNING', hostname: 'ERR_NOT_RUNNING', cgroup: 'ERR_NOT_RUNNING' });
  });
});
