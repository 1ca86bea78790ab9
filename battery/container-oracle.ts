/**
 * What a right answer is, from outside croot: the containers the battery
 * declared (each a real process in a UTS namespace of its own, with the
 * hostname the battery gave it), the naming rule as docs/engines.md states
 * it, and the kernel's /proc for cgroups.
 */
import { HOSTNAME_REQ, PROCESSID_REQ, containerAnswer, type Reply } from './root-wire.js';

export interface KnownContainer {
  readonly name: string;
  /** Declared id: a 64-hex digest, so id prefixes find it. */
  readonly id: string;
  /** Host pid of its init process. */
  readonly pid: number;
  readonly hostname: string;
  /** The paths of its /proc/PID/cgroup lines, leading `/` dropped. */
  readonly cgroups: readonly string[];
}

/** Processes whose hostname the battery knows (the containers' inits, crootd, the host's init). */
export interface KnownProcess {
  readonly pid: number;
  readonly hostname: string;
  readonly cgroups: readonly string[];
}

export interface Truth {
  readonly containers: readonly KnownContainer[];
  readonly processes: readonly KnownProcess[];
  /** Engine ids a name may be qualified with (`static:web`). */
  readonly engines: readonly string[];
}

const HEX = /^[0-9a-f]+$/;
const DIGEST = /^[0-9a-f]{12,}$/;

/**
 * The container a reference names under the rule: exact id, else exact name
 * (`/name` too), else the only container whose digest id starts with a hex
 * reference. Undefined: no container, or more than one (ambiguous).
 */
export function namedContainer(truth: Truth, ref: string): KnownContainer | undefined {
  let name = ref;
  const colon = ref.indexOf(':');
  if (colon > 0 && truth.engines.includes(ref.slice(0, colon))) name = ref.slice(colon + 1);
  if (name === '' || name === '/') return undefined;
  const single = (found: readonly KnownContainer[]): KnownContainer | undefined => (found.length === 1 ? found[0] : undefined);
  const byId = truth.containers.filter((c) => c.id === name);
  if (byId.length > 0) return single(byId);
  const bare = name.startsWith('/') ? name.slice(1) : name;
  const byName = truth.containers.filter((c) => c.name === bare);
  if (byName.length > 0) return single(byName);
  if (HEX.test(name)) return single(truth.containers.filter((c) => DIGEST.test(c.id) && c.id.startsWith(name)));
  return undefined;
}

/**
 * Why a status-0 answer to a container request is wrong, or undefined when
 * it is right or cannot be judged (a pid the battery knows nothing about).
 */
export function wrongAnswer(truth: Truth, type: number, request: { pid: number; name: string }, reply: Reply): string | undefined {
  if (reply.status !== 0) return undefined;
  const answer = containerAnswer(reply);
  let expected: { pid: number; hostname: string; cgroups: readonly string[] } | undefined;
  if (request.name === '') {
    if (request.pid <= 0) return `answered a request with neither a name nor a pid (pid ${request.pid})`;
    expected = truth.processes.find((p) => p.pid === request.pid);
    if (expected === undefined) return undefined;
  } else {
    expected = namedContainer(truth, request.name);
    if (expected === undefined) return `answered "${request.name}", which names no single container, with pid ${answer.pid} "${answer.value}"`;
  }
  if (answer.pid !== expected.pid) return `"${request.name}" (pid ${request.pid}) answered with pid ${answer.pid}, expected ${expected.pid}`;
  if (type === HOSTNAME_REQ && answer.value !== expected.hostname) return `"${request.name}" answered hostname "${answer.value}", expected "${expected.hostname}"`;
  if (type === PROCESSID_REQ) return undefined;
  if (type !== HOSTNAME_REQ && !expected.cgroups.includes(answer.value.replace(/^\/+/, ''))) {
    return `"${request.name}" answered cgroup "${answer.value}", not one of ${expected.cgroups.join(', ')}`;
  }
  return undefined;
}
