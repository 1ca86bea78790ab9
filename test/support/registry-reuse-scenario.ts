/**
 * Run by test/registry-anchoring.int.test.ts as PID 1 of a private PID
 * namespace (`unshare --pid --fork --mount-proc node -r
 * test/support/ts-register.js test/support/registry-reuse-scenario.ts`),
 * where /proc/sys/kernel/ns_last_pid makes a new process get the PID of one
 * that exited. A registry with the native module holds a declared container
 * `old` by its init process; the process exits, another takes its PID, and
 * the scenario records what the registry's listeners saw and what every
 * question about `old` is answered. Prints one JSON line.
 */
import 'reflect-metadata';
import { once } from 'node:events';
import { writeFileSync } from 'node:fs';
import { createCrootContainer } from '../../core/create-container.js';
import { EngineRegistry, type RegistryEvent } from '../../core/registry/engine-registry.js';
import { defaultConfig } from '../../core/config/croot-config.js';
import { ContainerCGroupResolver, ContainerHostnameResolver, ContainerProcessIdResolver } from '../../core/registry/container-resolvers.js';
import { staticEngineModule } from '../../engines/static/index.js';
import { nativeModule } from '../../native/index.js';
import { comm, sleep, startUtsSleeper, until } from './uts-sleeper.js';


async function outcome(ask: () => unknown): Promise<string> {
  try {
    return `answered ${String(await ask())}`;
  } catch (err) {
    return String((err as { code?: unknown }).code);
  }
}

async function main(): Promise<void> {
  const first = await startUtsSleeper('first-host');
  const pid = first.pid;
  const c = createCrootContainer({ config: { staticContainers: [{ name: 'old', pid }], env: {} }, modules: [nativeModule, staticEngineModule] });
  const registry = c.get<EngineRegistry>(EngineRegistry);
  const events: string[] = [];
  registry.subscribe((e: RegistryEvent) => {
    if (e.kind !== 'health') events.push(`${e.kind} ${e.container.liveness}`);
  });
  await registry.start();
  await registry.ready();
  const hostnames = c.get<ContainerHostnameResolver>(ContainerHostnameResolver);
  const pids = c.get<ContainerProcessIdResolver>(ContainerProcessIdResolver);
  const cgroups = c.get<ContainerCGroupResolver>(ContainerCGroupResolver);
  // Starts the namespace thread now: a thread takes a PID too, and must not take the one reused below.
  const before = { pid: await outcome(() => pids.resolveProcessId('old')), hostname: await outcome(async () => (await hostnames.resolveHostname('old')).value) };
  const anchor = registry.anchorMode().kind;

  first.child.kill('SIGKILL');
  await once(first.child, 'exit');
  // No request is made: the exit must reach the index through the pidfd alone.
  await until('the exit in the index', () => events.includes('updated exited'));
  await sleep(50);

  writeFileSync('/proc/sys/kernel/ns_last_pid', String(pid - 1));
  const second = await startUtsSleeper('second-host');
  // The engine says the same again (a stale declaration or pidfile): the container stays gone.
  await registry.reconfigure(defaultConfig({ staticContainers: [{ name: 'old', pid }], env: {} }));
  const after = {
    pid: await outcome(() => pids.resolveProcessId('old')),
    hostname: await outcome(async () => (await hostnames.resolveHostname('old')).value),
    cgroup: await outcome(async () => (await cgroups.resolveCGroupName('old')).value),
  };
  const kernel = { secondPid: second.pid, comm: comm(pid) };
  second.child.kill('SIGKILL');
  await once(second.child, 'exit');
  await registry.stop();
  process.stdout.write(`${JSON.stringify({ pid, anchor, before, events, after, kernel })}\n`);
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  },
);
