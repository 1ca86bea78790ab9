/// <reference types="node" preserve="true" />
/** Public entry point of the LXC engine. */
export { lxcEngineModule } from './lxc-engine-module.js';
export { LxcEngine, LxcEngineOptions, LXC_ENGINE_ID, DEFAULT_LXC_DIR, DEFAULT_LXC_INFO, parseLxcInfo, cgroupMountPoints, findCommand } from './lxc-engine.js';
export type { LxcInfo } from './lxc-engine.js';
