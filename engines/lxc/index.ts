/// <reference types="node" preserve="true" />
/** Public entry point of the LXC engine. */
export { lxcEngineModule } from './lxc-engine-module.js';
export { LxcEngine, LxcEngineOptions, LXC_ENGINE_ID, DEFAULT_LXC_DIR, DEFAULT_LXC_INFO } from './lxc-engine.js';
export { parseLxcInfo, findCommand } from './lxc-info-runner.js';
export type { LxcInfo } from './lxc-info-runner.js';
export { cgroupMountPoints } from './lxc-cgroup-watch.js';
