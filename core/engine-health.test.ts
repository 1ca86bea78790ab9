import type { ContainerRecord, EngineStatus } from './engine.js';
import type { EngineRegistry } from './engine-registry.js';
import { watchEngineHealth } from './engine-health.js';
import type { Logger } from './logger.js';

function fakeRegistry(states: Record<string, boolean>): EngineRegistry {
  return {
    ids: () => Object.keys(states),
    get: () => undefined,
    statuses: (): EngineStatus[] =>
      Object.entries(states).map(([engine, available]) => ({ engine, available, reason: available ? 'up' : 'daemon gone', checkedAt: 0 })),
    containers: async (): Promise<readonly ContainerRecord[]> => [],
    lookup: async () => {
      throw new Error('unused');
    },
    start: async () => undefined,
    stop: async () => undefined,
  };
}

function recordingLogger(lines: string[]): Logger {
  const log = (level: string) => (message: string, fields?: Record<string, unknown>) => void lines.push(`${level} ${message} ${fields?.reason ?? ''}`.trim());
  return { debug: log('debug'), info: log('info'), warn: log('warn'), error: log('error') };
}

describe('watchEngineHealth', () => {
  it('logs an engine going away and coming back, once each', async () => {
    const states = { docker: true, podman: true };
    const lines: string[] = [];
    const watch = watchEngineHealth(fakeRegistry(states), recordingLogger(lines), 60000);
    try {
      await watch.check();
      expect(lines).toEqual([]);
      states.docker = false;
      await watch.check();
      await watch.check();
      expect(lines).toEqual(['warn engine docker: unavailable daemon gone']);
      states.docker = true;
      await watch.check();
      expect(lines).toEqual(['warn engine docker: unavailable daemon gone', 'info engine docker: available up']);
    } finally {
      watch.stop();
    }
  });
});
