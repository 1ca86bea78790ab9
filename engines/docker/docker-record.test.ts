import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { bootTimeTruth, clockTicksTruth } from '../../test/support/truth.js';
import { dockerPidStartTime, dockerRecordFrom, dockerStateOf, readBootTime } from './docker-record.js';

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

  it('goes into the record with a tolerance of 30 s of clock ticks, for a running container only, and no tolerance without it', () => {
    const json = { Id: 'c'.repeat(64), Name: '/t', State: { Running: true, Pid: 4242, StartedAt: '2024-01-02T03:04:05Z' } };
    expect(dockerRecordFrom(json, 'disk', { pidStartTime: 5000 })).toMatchObject({ pid: 4242, pidStartTime: 5000, pidStartTolerance: 30 * ticks });
    const stopped = dockerRecordFrom({ ...json, State: { ...json.State, Running: false } }, 'disk', { pidStartTime: 5000 });
    expect(stopped?.pidStartTime).toBeUndefined();
    expect(stopped?.pidStartTolerance).toBeUndefined();
    const unknown = dockerRecordFrom(json, 'disk');
    expect([unknown?.pid, unknown?.pidStartTime, unknown?.pidStartTolerance]).toEqual([4242, undefined, undefined]);
  });
});

/** `/proc/PID/cgroup` lines of real processes placed where Docker's two drivers put a container (test/fixtures/cgroup/README.md). */
function capturedDockerCgroup(layout: 'hybrid-docker-cgroupfs' | 'hybrid-docker-systemd'): { id: string; path: string } {
  const line = readFileSync(resolve(__dirname, '../../test/fixtures/cgroup', layout, 'cgroup'), 'utf8')
    .split('\n')
    .find((l) => l.startsWith('0::')) as string;
  const path = line.slice('0::/'.length);
  return { id: /([0-9a-f]{64})/.exec(path)?.[1] as string, path };
}

describe('dockerRecordFrom', () => {
  const id = 'e'.repeat(64);

  it('takes the API\'s Id, the files\' ID, else the folder\'s name, and makes no record without any', () => {
    expect(dockerRecordFrom({ Id: id, ID: 'f'.repeat(64) }, 'api', { fallbackId: 'a'.repeat(64) })?.id).toBe(id);
    expect(dockerRecordFrom({ ID: id }, 'disk', { fallbackId: 'a'.repeat(64) })?.id).toBe(id);
    expect(dockerRecordFrom({ Name: '/x' }, 'disk', { fallbackId: id })?.id).toBe(id);
    expect(dockerRecordFrom({ Name: '/x' }, 'disk')).toBeUndefined();
    expect(dockerRecordFrom({ Id: '', Name: '/x' }, 'api')).toBeUndefined();
  });

  it('gives the name without Docker\'s leading slash, and no name for an empty one', () => {
    expect(dockerRecordFrom({ Id: id, Name: '/web1' }, 'api')?.names).toEqual(['web1']);
    expect(dockerRecordFrom({ Id: id, Name: '/' }, 'api')?.names).toEqual([]);
    expect(dockerRecordFrom({ Id: id, Name: 7 }, 'api')?.names).toEqual([]);
  });

  it('records the PID only of a running container, and only a positive whole number', () => {
    const pidOf = (state: Record<string, unknown>) => dockerRecordFrom({ Id: id, State: state }, 'api')?.pid;
    expect(pidOf({ Running: true, Pid: 4242 })).toBe(4242);
    expect(pidOf({ Running: false, Pid: 4242 })).toBeUndefined();
    expect(pidOf({ Running: 'true', Pid: 4242 })).toBeUndefined();
    for (const pid of [0, -1, 1.5, '4242', undefined]) expect([pid, pidOf({ Running: true, Pid: pid })]).toEqual([pid, undefined]);
  });

  it('records Config.Hostname when it is a non-empty string', () => {
    expect(dockerRecordFrom({ Id: id, Config: { Hostname: 'web' } }, 'api')?.hostname).toBe('web');
    expect(dockerRecordFrom({ Id: id, Config: { Hostname: '' } }, 'api')).not.toHaveProperty('hostname');
    expect(dockerRecordFrom({ Id: id, Config: { Hostname: 5 } }, 'api')).not.toHaveProperty('hostname');
  });

  it('names the cgroup where Docker\'s cgroupfs and systemd drivers put the container, as the kernel shows it', () => {
    const cgroupfs = capturedDockerCgroup('hybrid-docker-cgroupfs');
    expect(dockerRecordFrom({ Id: cgroupfs.id }, 'api', { cgroupDriver: 'cgroupfs' })?.cgroupHint).toBe(cgroupfs.path);
    expect(dockerRecordFrom({ Id: cgroupfs.id }, 'disk')?.cgroupHint).toBe(cgroupfs.path);
    const systemd = capturedDockerCgroup('hybrid-docker-systemd');
    expect(dockerRecordFrom({ Id: systemd.id }, 'api', { cgroupDriver: 'systemd' })?.cgroupHint).toBe(systemd.path);
  });

  it('puts the container under --cgroup-parent, from HostConfig or hostconfig.json, without its slashes', () => {
    expect(dockerRecordFrom({ Id: id, HostConfig: { CgroupParent: '/mine/' } }, 'api')?.cgroupHint).toBe(`mine/${id}`);
    expect(dockerRecordFrom({ Id: id, HostConfig: { CgroupParent: 'my.slice' } }, 'api', { cgroupDriver: 'systemd' })?.cgroupHint).toBe(`my.slice/docker-${id}.scope`);
    expect(dockerRecordFrom({ Id: id, HostConfig: { CgroupParent: 'api' } }, 'disk', { cgroupParent: '/disk' })?.cgroupHint).toBe(`disk/${id}`);
    expect(dockerRecordFrom({ Id: id, HostConfig: { CgroupParent: 3 } }, 'api')?.cgroupHint).toBe(`docker/${id}`);
  });

  it('keeps a nested --cgroup-parent whole, dropping only the slashes at its ends, as the cgroupfs driver joins it', () => {
    expect(dockerRecordFrom({ Id: id, HostConfig: { CgroupParent: '/croot/nested/' } }, 'api')?.cgroupHint).toBe(`croot/nested/${id}`);
    expect(dockerRecordFrom({ Id: id, HostConfig: { CgroupParent: '//croot/nested//' } }, 'api')?.cgroupHint).toBe(`croot/nested/${id}`);
  });

  it('says where it came from', () => {
    expect(dockerRecordFrom({ Id: id }, 'api')).toMatchObject({ engine: 'docker', source: 'api', running: false, paused: false, restarting: false, state: 'created' });
    expect(dockerRecordFrom({ Id: id, State: { Running: true, Restarting: true } }, 'disk')).toMatchObject({ source: 'disk', running: true, restarting: true });
  });
});

describe('dockerStateOf, edge cases', () => {
  it('derives the state when the API\'s Status is empty, and takes a StartedAt that is empty as never started', () => {
    expect(dockerStateOf({ State: { Status: '', Running: true } })).toBe('running');
    expect(dockerStateOf({ State: { Running: false, StartedAt: '' } })).toBe('created');
    expect(dockerStateOf({})).toBe('created');
  });
});

describe('dockerPidStartTime, edge cases', () => {
  it('gives nothing for Docker\'s zero time (a container never started) or a StartedAt that is no string', () => {
    expect(dockerPidStartTime('0001-01-01T00:00:00Z', bootTime)).toBeUndefined();
    expect(dockerPidStartTime(1704164645000, bootTime)).toBeUndefined();
  });
});

describe('readBootTime', () => {
  it('reads btime from the kernel\'s /proc/stat', async () => {
    expect(await readBootTime('/proc')).toBe(bootTime);
  });

  it('gives nothing for a proc root without a stat file, or one without a btime line', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'croot-docker-btime-'));
    try {
      expect(await readBootTime(dir)).toBeUndefined();
      writeFileSync(join(dir, 'stat'), 'cpu  1 2 3\nbtime x\nprocesses 9\n');
      expect(await readBootTime(dir)).toBeUndefined();
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
