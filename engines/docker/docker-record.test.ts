import { startTimeOf } from '../../test/support/processes.js';
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
  const actual = startTimeOf(process.pid) as number;

  it('gives the process\'s real start time when it started when Docker says it did', () => {
    const startedAt = new Date((bootTime + actual / ticks) * 1000 + 300).toISOString();
    expect(dockerPidStartTime('/proc', process.pid, startedAt, bootTime)).toBe(actual);
  });

  it('gives the time StartedAt implies when the PID belongs to a process started at another time', () => {
    const startedAt = '2014-12-10T05:22:46.8807158Z';
    const implied = Math.round((Date.parse(startedAt) / 1000 - bootTime) * ticks);
    expect(dockerPidStartTime('/proc', process.pid, startedAt, bootTime)).toBe(implied);
    expect(implied).not.toBe(actual);
  });

  it('gives the real start time when StartedAt is unusable, and the implied one when the PID is gone', () => {
    expect(dockerPidStartTime('/proc', process.pid, 'not a time', bootTime)).toBe(actual);
    const startedAt = new Date((bootTime + 1000) * 1000).toISOString();
    expect(dockerPidStartTime('/proc', 0x3ffffff0, startedAt, bootTime)).toBe(1000 * ticks);
  });
});
