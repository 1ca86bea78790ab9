/**
 * Logs every change of an engine's health while crootd runs: an engine whose
 * daemon goes away or comes back shows in the log when it happens, not only
 * at start.
 */
import type { EngineStatus } from './engine.js';
import type { EngineRegistry } from './engine-registry.js';
import type { Logger } from './logger.js';

export interface EngineHealthWatch {
  /** Compares the engines' health with the last seen and logs what changed. */
  check(): Promise<void>;
  stop(): void;
}

/** Refreshes the engines every `intervalMs` (unref'd) and logs availability changes. */
export function watchEngineHealth(registry: EngineRegistry, logger: Logger, intervalMs = 5000): EngineHealthWatch {
  const last = new Map<string, boolean>(registry.statuses().map((s) => [s.engine, s.available]));
  let running = false;
  const check = async (): Promise<void> => {
    if (running) return;
    running = true;
    try {
      await registry.containers().catch(() => undefined);
      for (const status of registry.statuses()) report(status);
    } finally {
      running = false;
    }
  };
  const report = (status: EngineStatus): void => {
    const before = last.get(status.engine);
    if (before === status.available) return;
    last.set(status.engine, status.available);
    if (status.available) logger.info(`engine ${status.engine}: available`, { reason: status.reason });
    else logger.warn(`engine ${status.engine}: unavailable`, { reason: status.reason });
  };
  const timer = setInterval(() => void check(), intervalMs);
  timer.unref();
  return { check, stop: () => clearInterval(timer) };
}
