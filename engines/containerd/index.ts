/// <reference types="node" preserve="true" />
/** Public entry point of the containerd engine (task bundles on disk, every namespace but `moby`). */
export { containerdEngineModule } from './containerd-engine-module.js';
export {
  ContainerdEngine,
  ContainerdEngineOptions,
  CONTAINERD_ENGINE_ID,
  DEFAULT_CONTAINERD_TASK_DIR,
  DEFAULT_CONTAINERD_RUNC_ROOT,
} from './containerd-engine.js';
export { CriAnnotation, MOBY_NAMESPACE, cgroupHintFrom, kubernetesNamesOf, readTaskRuntime, readTaskSpec, taskSpecFrom } from './containerd-tasks.js';
export type { TaskRuntime, TaskSpec } from './containerd-tasks.js';
