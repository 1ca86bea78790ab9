/// <reference types="node" preserve="true" />
/** Public entry point of the static engine (containers declared in croot's config). */
export { staticEngineModule } from './static-engine-module.js';
export { StaticEngine, STATIC_ENGINE_ID, parsePidfile } from './static-engine.js';
