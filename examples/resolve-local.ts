/**
 * Resolve a container in-process with every built-in engine, the way
 * `croot hostname|pid|cgroup NAME` does without --socket. As root:
 *   node dist/examples/resolve-local.js web1
 */
import 'reflect-metadata';
import {
  ContainerCGroupResolver,
  ContainerHostnameResolver,
  EngineRegistry,
  createCrootContainer,
  errorText,
  statusOf,
} from '../core/index.js';
import { dockerEngineModule } from '../engines/docker/index.js';
import { podmanEngineModule } from '../engines/podman/index.js';
import { containerdEngineModule } from '../engines/containerd/index.js';
import { nativeModule } from '../native/index.js';

async function main(name: string): Promise<void> {
  const container = createCrootContainer({
    modules: [nativeModule, dockerEngineModule, podmanEngineModule, containerdEngineModule],
  });
  const registry = container.get<EngineRegistry>(EngineRegistry);
  await registry.start();
  try {
    const host = await container.get<ContainerHostnameResolver>(ContainerHostnameResolver).resolveHostname(name);
    const cgroup = await container.get<ContainerCGroupResolver>(ContainerCGroupResolver).resolveCGroupName(name);
    process.stdout.write(`${host.container.engine}:${host.container.id} pid ${host.pid} hostname ${host.value} cgroup ${cgroup.value}\n`);
  } finally {
    await registry.stop();
  }
}

main(process.argv[2] ?? '').catch((err: unknown) => {
  const status = statusOf(err);
  process.stderr.write(`${(err as Error).message} (${status}: ${errorText(status)})\n`);
  process.exit(1);
});
