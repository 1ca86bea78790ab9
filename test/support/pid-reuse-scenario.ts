/**
 * Run by native/native-process-anchor.test.ts as PID 1 of a private PID
 * namespace (`unshare --pid --fork --mount-proc node -r
 * test/support/ts-register.js test/support/pid-reuse-scenario.ts`), where
 * nothing else takes PIDs: a process exits, and /proc/sys/kernel/ns_last_pid
 * makes the next real process get its PID. Prints one JSON line: what the old
 * handles say, and what the kernel says.
 */
import { comm, sleep, startUtsSleeper, until } from './uts-sleeper.js';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { ProcProcessHandle } from '../../core/host/proc-process-handle.js';
import { loadNative } from '../../native/load-native.js';
import { NativeNamespaceHostnameReader } from '../../native/native-host-services.js';
import { NativeProcessAnchor } from '../../native/native-process-anchor.js';
import { statFields } from './processes.js';


function errorCode(err: unknown): string {
  return String((err as { code?: unknown }).code);
}

async function main(): Promise<void> {
  const native = loadNative();
  const anchor = new NativeProcessAnchor(native);
  const reader = new NativeNamespaceHostnameReader(native);
  // Start the namespace thread now: a thread takes a PID too, and must not take the one reused below.
  await reader.readHostname(process.pid);

  const first = await startUtsSleeper('first-host');
  const pid = first.pid;
  let exits = 0;
  const handle = anchor.open(pid, () => exits++);
  const procHandle = ProcProcessHandle.open(pid);
  if (handle === undefined || procHandle === undefined) throw new Error(`no handle on ${pid}`);
  const oldPidfd = handle.pidfd;
  const firstStart = statFields(pid)?.[19];
  const before = { alive: handle.isAlive(), procAlive: procHandle.isAlive(), hostname: await reader.readHostname(handle) };

  first.child.kill('SIGKILL');
  await once(first.child, 'exit');
  await until('onExit', () => exits > 0);
  // Start times count in clock ticks (1/100 s): let one pass, so the /proc handle can tell the two apart.
  await sleep(50);

  writeFileSync('/proc/sys/kernel/ns_last_pid', String(pid - 1));
  const second = await startUtsSleeper('second-host');
  const newHandle = anchor.open(second.pid, () => undefined);

  const after = {
    alive: handle.isAlive(),
    procAlive: procHandle.isAlive(),
    hostnameThroughHandle: await reader.readHostname(handle).then(
      (h) => `answered ${h}`,
      (e: unknown) => errorCode(e),
    ),
    hostnameThroughOldPidfd: await native.readHostname(pid, oldPidfd).then(
      (h) => `answered ${h}`,
      (e: unknown) => errorCode(e),
    ),
    hostnameByPid: await reader.readHostname(pid),
    newHandleAlive: newHandle?.isAlive(),
    hostnameThroughNewHandle: newHandle === undefined ? undefined : await reader.readHostname(newHandle),
  };
  const kernel = { secondPid: second.pid, state: statFields(pid)?.[0], comm: comm(pid), firstStart, secondStart: statFields(pid)?.[19] };

  second.child.kill('SIGKILL');
  await once(second.child, 'exit');
  handle.close();
  procHandle.close();
  newHandle?.close();
  anchor.close();
  process.stdout.write(`${JSON.stringify({ pid, before, after, exits, kernel })}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
