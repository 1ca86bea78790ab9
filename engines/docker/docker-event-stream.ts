/** Docker's event stream (`GET /events`, filtered to containers), read as the work it asks for. */
import type { ContainerWork } from './container-work-queue.js';

/** Container events that can change what croot records; exec_*, attach, top... cannot. */
const STATE_EVENTS = new Set(['create', 'start', 'restart', 'die', 'stop', 'kill', 'oom', 'pause', 'unpause', 'rename', 'update', 'destroy']);

interface DockerEvent {
  readonly Type?: string;
  readonly Action?: string;
  readonly status?: string;
  readonly id?: string;
  readonly Actor?: { readonly ID?: string };
}

/**
 * Reads `stream`, one JSON event a line: `onWork` gets each container event
 * that can change a record (a line that is not JSON is skipped), `onEnd`
 * why the stream is over (it may be called more than once: end, then close).
 */
export function followDockerEvents(stream: NodeJS.ReadableStream, onWork: (id: string, work: ContainerWork) => void, onEnd: (reason: string) => void): void {
  let buffered = '';
  stream.setEncoding?.('utf8');
  stream.on('data', (chunk: string | Buffer) => {
    buffered += chunk.toString();
    let nl: number;
    while ((nl = buffered.indexOf('\n')) >= 0) {
      const line = buffered.slice(0, nl).trim();
      buffered = buffered.slice(nl + 1);
      if (line.length > 0) onEventLine(line, onWork);
    }
  });
  stream.on('end', () => onEnd('event stream ended'));
  stream.on('close', () => onEnd('event stream closed'));
  stream.on('error', (err: Error) => onEnd(`event stream failed: ${err.message}`));
}

function onEventLine(line: string, onWork: (id: string, work: ContainerWork) => void): void {
  let event: DockerEvent | null;
  try {
    event = JSON.parse(line) as DockerEvent | null;
  } catch {
    return;
  }
  // `null` is JSON too; any other non-object has no Type, Action nor Actor and is skipped below.
  if (event === null) return;
  if ((event.Type ?? 'container') !== 'container') return;
  const action = (event.Action ?? event.status ?? '').split(':')[0] ?? '';
  const id = event.Actor?.ID ?? event.id;
  if (id === undefined || !STATE_EVENTS.has(action)) return;
  onWork(id, action === 'destroy' ? 'destroy' : 'inspect');
}
