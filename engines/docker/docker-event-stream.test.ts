/**
 * followDockerEvents on dockerd's own event stream: a container the test
 * runs through its life (run, exec, update, restart, pause, unpause, rename,
 * stop, rm), one the kernel kills for want of memory, and a network it makes
 * and removes, read back from `GET /events` with a time
 * window, so the stream is the daemon's bytes and ends on its own. The truth
 * is what dockerd sent, read by the test itself.
 */
import { execFileSync } from 'node:child_process';
import { get, type IncomingMessage } from 'node:http';
import { PassThrough } from 'node:stream';
import { describeWith, probes } from '../../test/support/components.js';
import { dockerRun, removeDockerContainers, uniqueName } from '../../test/support/testbed.js';
import type { ContainerWork } from './container-work-queue.js';
import { followDockerEvents } from './docker-event-stream.js';

/** Container events that change what `docker inspect` says of the container (Docker's event list, less exec_*, attach, top, ...). */
const STATE_ACTIONS = ['create', 'start', 'restart', 'die', 'stop', 'kill', 'oom', 'pause', 'unpause', 'rename', 'update', 'destroy'];

interface RawEvent {
  readonly Type: string;
  readonly Action: string;
  readonly Actor: { readonly ID: string };
}

/** dockerd's event stream between two times (seconds since the epoch), as the daemon sends it. */
function events(since: string, until: string): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    get({ socketPath: '/var/run/docker.sock', path: `/events?since=${since}&until=${until}` }, resolve).on('error', reject);
  });
}

async function bytesOf(stream: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** What followDockerEvents hands on from `stream`, and why it says the stream is over, once it is closed. */
function follow(stream: NodeJS.ReadableStream): Promise<{ works: string[]; ends: string[] }> {
  const works: string[] = [];
  const ends: string[] = [];
  return new Promise((resolve) => {
    followDockerEvents(
      stream,
      (id: string, work: ContainerWork) => works.push(`${id} ${work}`),
      (reason) => {
        ends.push(reason);
        if (reason === 'event stream closed') resolve({ works, ends });
      },
    );
  });
}

const now = (): string => (Date.now() / 1000).toFixed(3);

describeWith('docker', probes.docker, 'followDockerEvents on dockerd\'s event stream', () => {
  const created: string[] = [];
  let since: string;
  let until: string;
  let containerId: string;
  let oomId: string;
  let networkId: string;
  let raw: Buffer;
  let rawEvents: RawEvent[];

  beforeAll(async () => {
    since = now();
    const name = uniqueName();
    containerId = dockerRun(name, {}, created).id;
    execFileSync('docker', ['exec', name, 'true']);
    execFileSync('docker', ['update', '--cpu-shares', '512', name]);
    execFileSync('docker', ['restart', '-t', '0', name]);
    execFileSync('docker', ['pause', name]);
    execFileSync('docker', ['unpause', name]);
    const renamed = uniqueName();
    created.push(renamed);
    execFileSync('docker', ['rename', name, renamed]);
    const network = uniqueName();
    networkId = execFileSync('docker', ['network', 'create', network], { encoding: 'utf8' }).trim();
    execFileSync('docker', ['network', 'rm', network]);
    execFileSync('docker', ['stop', '-t', '0', renamed]);
    execFileSync('docker', ['rm', renamed]);
    // Doubles a string until the cgroup's 8 MiB run out: the kernel's OOM killer ends it.
    const starved = uniqueName();
    oomId = dockerRun(starved, { createOnly: true, args: ['--memory', '8m', '--memory-swap', '8m'], command: ['sh', '-c', 'x=aaaaaaaa; while true; do x="$x$x"; done'] }, created).id;
    execFileSync('docker', ['start', starved]);
    expect(execFileSync('docker', ['wait', starved], { encoding: 'utf8' }).trim()).toBe('137');
    execFileSync('docker', ['rm', starved]);
    until = now();
    raw = await bytesOf(await events(since, until));
    rawEvents = raw.toString('utf8').split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as RawEvent);
  }, 120000);
  afterAll(() => removeDockerContainers(created));

  /** The work the container's own events ask for, read from dockerd's bytes by the test. */
  const expectedWorks = (id = containerId): string[] =>
    rawEvents
      .filter((e) => e.Type === 'container' && e.Actor.ID === id && STATE_ACTIONS.includes(e.Action))
      .map((e) => `${id} ${e.Action === 'destroy' ? 'destroy' : 'inspect'}`);
  const worksOf = (works: string[], id: string): string[] => works.filter((w) => w.startsWith(`${id} `));

  it('has a stream holding the containers\' lives, an exec, an OOM kill and another object\'s create and destroy', () => {
    const ofContainer = rawEvents.filter((e) => e.Actor.ID === containerId).map((e) => e.Action.split(':')[0]);
    expect(ofContainer).toEqual(expect.arrayContaining(['create', 'start', 'exec_start', 'update', 'restart', 'pause', 'unpause', 'rename', 'kill', 'die', 'stop', 'destroy']));
    expect(rawEvents.filter((e) => e.Actor.ID === oomId).map((e) => e.Action)).toEqual(expect.arrayContaining(['oom', 'die']));
    expect(rawEvents.filter((e) => e.Actor.ID === networkId).map((e) => `${e.Type} ${e.Action}`)).toEqual(['network create', 'network destroy']);
  });

  it('asks for an inspect at each change of the container\'s state and a destroy at its removal, nothing for its execs nor for a network', async () => {
    const { works, ends } = await follow(await events(since, until));
    const mine = worksOf(works, containerId);
    expect(mine).toEqual(expectedWorks());
    expect(worksOf(works, oomId)).toEqual(expectedWorks(oomId));
    expect(mine.at(-1)).toBe(`${containerId} destroy`);
    expect(mine.filter((w) => w.endsWith(' destroy'))).toHaveLength(1);
    expect(worksOf(works, networkId)).toEqual([]);
    expect(ends).toEqual(['event stream ended', 'event stream closed']);
  });

  it('reads lines cut anywhere across chunks, skipping a blank line and one that is not JSON', async () => {
    const stream = new PassThrough();
    const following = follow(stream);
    const bytes = Buffer.concat([Buffer.from('\n  \nnot json\n'), raw]);
    for (let i = 0; i < bytes.length; i += 7) stream.write(bytes.subarray(i, i + 7));
    stream.end();
    const { works } = await following;
    expect(worksOf(works, containerId)).toEqual(expectedWorks());
    expect(worksOf(works, oomId)).toEqual(expectedWorks(oomId));
    expect(worksOf(works, networkId)).toEqual([]);
  });

  it('skips JSON lines that are no container event it can act on (not an object, no container id) and reads on', async () => {
    const stream = new PassThrough();
    const following = follow(stream);
    const odd = ['null', '42', '"start"', '[]', '{}', '{"Type":"container","Action":"start"}', '{"Type":"container","Action":"start","Actor":{}}', '{"Type":"container","Action":"start","Actor":null}'];
    stream.end(Buffer.concat([Buffer.from(`${odd.join('\n')}\n`), raw]));
    const { works, ends } = await following;
    expect(works.filter((w) => !/^[0-9a-f]{64} (inspect|destroy)$/.test(w))).toEqual([]);
    expect(worksOf(works, containerId)).toEqual(expectedWorks());
    expect(ends).toEqual(['event stream ended', 'event stream closed']);
  });

  it('says why when the stream fails', async () => {
    const stream = await events(since, until);
    const following = follow(stream);
    stream.destroy(new Error('cut by the test'));
    expect((await following).ends).toEqual(['event stream failed: cut by the test', 'event stream closed']);
  });
});
