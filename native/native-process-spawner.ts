/**
 * The core's ProcessSpawner on the addon: pipe2(O_CLOEXEC), a vfork-like
 * spawn with exact stdio wiring (every other fd closed, every signal at its
 * default and unblocked), waitpid(WNOHANG)
 * on one child, kill. Errors are the addon's NativeErrors, passed on as they
 * are (`errno`, `code`, `syscall`): the process service turns them into the
 * reply's -errno.
 */
import { inject, injectable } from 'inversify';
import type { ProcessSpawner, ReapedProcess, SpawnStdio } from '../core/host/host-services.js';
import { CrootNative } from './croot-native.js';

@injectable()
export class NativeProcessSpawner implements ProcessSpawner {
  constructor(@inject(CrootNative) private readonly native: CrootNative) {}

  pipe(): [number, number] {
    return this.native.pipe();
  }

  spawn(file: string, argv: readonly string[], env: readonly string[], stdio: SpawnStdio): number {
    return this.native.spawn(file, argv, env, { stdin: stdio.stdin, stdout: stdio.stdout, stderr: stdio.stderr });
  }

  reap(pid: number): ReapedProcess {
    const result = this.native.waitpid(pid, this.native.WNOHANG);
    return { pid: result.pid, status: result.status };
  }

  kill(pid: number, signal: number): void {
    this.native.kill(pid, signal);
  }
}
