import { bootTimeTruth, clockTicksTruth } from '../../test/support/truth.js';
import { dockerPidStartTime, dockerRecordFrom, dockerStateOf } from './docker-record.js';

const bootTime = bootTimeTruth();
const ticks = clockTicksTruth();

describe('dockerStateOf', () => {
  it('takes the API\'s State.Status as it is', () => {
    for (const status of ['created', 'running', 'paused', 'restarting', 'removing', 'exited', 'dead']) {
      expect(dockerStateOf({ State: { Status: status, Running: false } })).toBe(status);
    }
  });

  it('derives it from the flags the files hold, as Docker\'s StateString does', () => {
    const started = '2024-01-02T03:04:05.123Z';
    const never = '0001-01-01T00:00:00Z';
    const cases: [Record<string, unknown>, string][] = [
      [{ Running: true, StartedAt: started }, 'running'],
      [{ Running: true, Paused: true, Restarting: true, StartedAt: started }, 'paused'],
      [{ Running: true, Restarting: true, StartedAt: started }, 'restarting'],
      [{ Running: false, RemovalInProgress: true, Dead: true, StartedAt: started }, 'removing'],
      [{ Running: false, Dead: true, StartedAt: started }, 'dead'],
      [{ Running: false, StartedAt: never }, 'created'],
      [{ Running: false }, 'created'],
      [{ Running: false, StartedAt: started }, 'exited'],
    ];
    for (const [state, want] of cases) expect([state, dockerStateOf({ State: state })]).toEqual([state, want]);
  });

  it('is in the record beside running, paused and restarting', () => {
    const record = dockerRecordFrom({ Id: 'a'.repeat(64), Name: '/p', State: { Running: true, Paused: true, Pid: 1, StartedAt: '2024-01-02T03:04:05Z' } }, 'disk');
    expect(record).toMatchObject({ running: true, paused: true, state: 'paused', names: ['p'] });
  });
});

describe('dockerPidStartTime', () => {
  it('gives the clock ticks since boot that StartedAt implies, reading nothing of the process', () => {
    const startedAt = '2024-01-02T03:04:05.250Z';
    const implied = Math.round((Date.parse(startedAt) / 1000 - bootTime) * ticks);
    expect(dockerPidStartTime(startedAt, bootTime)).toBe(implied);
    const atBoot = new Date((bootTime + 1000) * 1000).toISOString();
    expect(dockerPidStartTime(atBoot, bootTime)).toBe(1000 * ticks);
  });

  it('gives nothing when StartedAt is no time or the boot time is unknown', () => {
    expect(dockerPidStartTime('not a time', bootTime)).toBeUndefined();
    expect(dockerPidStartTime(undefined, bootTime)).toBeUndefined();
    expect(dockerPidStartTime('2024-01-02T03:04:05Z', undefined)).toBeUndefined();
  });

  it('goes into the record with a tolerance of 30 s of clock ticks, for a running container only', () => {
    const json = { Id: 'c'.repeat(64), Name: '/t', State: { Running: true, Pid: 4242, StartedAt: '2024-01-02T03:04:05Z' } };
    expect(dockerRecordFrom(json, 'disk', { pidStartTime: 5000 })).toMatchObject({ pid: 4242, pidStartTime: 5000, pidStartTolerance: 30 * ticks });
    const stopped = dockerRecordFrom({ ...json, State: { ...json.State, Running: false } }, 'disk', { pidStartTime: 5000 });
    expect(stopped?.pidStartTime).toBeUndefined();
    expect(stopped?.pidStartTolerance).toBeUndefined();
  });
});
