/**
 * croot's client of the root socket (PCP's pmdaroot or croot's own crootd):
 * a Promise API over a pluggable transport, one request in flight per
 * connection, every call bounded by a timeout or an AbortSignal.
 */
import { createWriteStream } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { defaultSocketPath } from '../config/croot-config.js';
import { closeFds } from '../host/close-fds.js';
import { CrootError, Errno, PM_ERR_NOCONTAINER, type ErrorCode } from '../errors/croot-error.js';
import {
  CONTAINER_HEADER_SIZE,
  IpcType,
  PDU_HEADER_SIZE,
  PduType,
  ROOT_PDU_VERSION,
  START_HEADER_SIZE,
  STOP_SIZE,
  decodeContainer,
  decodeHeader,
  decodeInfo,
  decodeStart,
  decodeStop,
  encodeContainer,
  encodeStart,
  encodeStop,
} from '../protocol/root-pdus.js';
import { nodeSocketTransport } from './node-socket-transport.js';
import type { ReceivedPdu, RootTransport, RootTransportFactory } from './root-transport.js';
import { errorText } from '../protocol/error-text.js';

export interface RootClientOptions {
  /** How to connect; default: pure Node (no fd passing). */
  readonly transport?: RootTransportFactory;
  /** Default bound of every call, connecting included. Default 10 s. */
  readonly timeoutMs?: number;
  /** Send container names with a trailing NUL counted in namelen, as PCP's clients do. Default true. */
  readonly trailingNul?: boolean;
}

export interface CallOptions {
  readonly signal?: AbortSignal;
  /** Overrides the client's timeout for this call. */
  readonly timeoutMs?: number;
}

/** A container answer with the init PID the server reported. */
export interface ContainerAnswer<T> {
  readonly value: T;
  readonly pid: number;
}

export interface StartedRootProcess {
  readonly pid: number;
  /** Pipe IPC: the child's stdin (write end). */
  readonly stdin: Writable | undefined;
  /** Pipe IPC: the child's stdout (read end). */
  readonly stdout: Readable | undefined;
  /** The fds received (now owned by `stdin`/`stdout`). */
  readonly fds: readonly number[];
}

export interface RootProcessStatus {
  /** Reaped or signalled pid; 0: nothing exited yet; -1: no children. */
  readonly pid: number;
  /** Raw wait status. */
  readonly code: number;
}

const DEFAULT_TIMEOUT_MS = 10000;

const STATUS_CODES: ReadonlyMap<number, ErrorCode> = new Map<number, ErrorCode>([
  [PM_ERR_NOCONTAINER, 'ERR_NO_CONTAINER'],
  [-Errno.ENOTUNIQ, 'ERR_AMBIGUOUS_NAME'],
  [-Errno.ESRCH, 'ERR_NOT_RUNNING'],
  [-Errno.ESTALE, 'ERR_PID_REUSED'],
]);

/** The CrootError for a negative status the server replied with. */
export function remoteError(status: number, what: string): CrootError {
  const code = STATUS_CODES.get(status) ?? 'ERR_REMOTE';
  // The wire carries only the status: say where the candidates are named.
  const hint = code === 'ERR_AMBIGUOUS_NAME' ? ' — the name fits several containers; the server log names them' : '';
  return new CrootError(code, `${what}: ${errorText(status)} (${status})${hint}`, { status });
}

type ContainerRequest = typeof PduType.HOSTNAME_REQ | typeof PduType.PROCESSID_REQ | typeof PduType.CGROUPNAME_REQ;

export class RootClient {
  private tail: Promise<unknown> = Promise.resolve();
  private closed = false;

  private constructor(
    private readonly transport: RootTransport,
    /** The socket this client is connected to. */
    readonly path: string,
    /** Feature bits of the server's INFO (1 hostname, 2 process id, 4 cgroup name). */
    readonly features: number,
    /** Root PDU version of the server's INFO. */
    readonly version: number,
    private readonly timeoutMs: number,
    private readonly trailingNul: boolean,
  ) {}

  /** Connects and checks the server's INFO as PCP's C client does. */
  static async connect(path: string = defaultSocketPath(), options: RootClientOptions = {}): Promise<RootClient> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const factory = options.transport ?? nodeSocketTransport;
    const transport = await factory(path, timeoutMs);
    try {
      const { data, fds } = await transport.receive(timeoutMs);
      closeFds(fds);
      if (data.length === 0) throw new CrootError('ERR_NOT_CONNECTED', `${path} closed the connection before sending INFO`);
      const info = decodeInfo(data);
      return new RootClient(transport, path, info.features, info.version, timeoutMs, options.trailingNul ?? true);
    } catch (err) {
      transport.close();
      throw err;
    }
  }

  /** True until `close()` or a failure that left the connection unusable. */
  get connected(): boolean {
    return !this.closed;
  }

  /** The container's hostname (seen from its UTS namespace). */
  async hostname(name: string, options: CallOptions = {}): Promise<string> {
    return (await this.containerQuery(PduType.HOSTNAME_REQ, name, options)).value;
  }

  /** The container's init PID. */
  async processId(name: string, options: CallOptions = {}): Promise<number> {
    return (await this.containerQuery(PduType.PROCESSID_REQ, name, options)).pid;
  }

  /** The container's cgroup path, without its leading `/`. */
  async cgroupName(name: string, options: CallOptions = {}): Promise<string> {
    return (await this.containerQuery(PduType.CGROUPNAME_REQ, name, options)).value;
  }

  /** One HOSTNAME, PROCESSID or CGROUPNAME request; the reply's name and pid. */
  containerQuery(type: ContainerRequest, name: string, options: CallOptions = {}): Promise<ContainerAnswer<string>> {
    const request = encodeContainer(type, name, { trailingNul: this.trailingNul });
    return this.exchange(request, options, ({ data, fds }) => {
      closeFds(fds);
      checkReply(data, type + 1, CONTAINER_HEADER_SIZE, `${describe(type)} of "${name}"`);
      const reply = decodeContainer(data);
      return { value: reply.name, pid: reply.pid };
    });
  }

  /**
   * Starts a process as root. Pipe IPC (2) needs a transport that passes
   * fds; the child's stdin and stdout come back as streams. Socket IPC (1)
   * gives the pid only.
   */
  processStart(ipctype: number, label: string, args: string, options: CallOptions = {}): Promise<StartedRootProcess> {
    if (ipctype === IpcType.PIPE && this.transport.passesFds !== true) {
      return Promise.reject(new CrootError('ERR_NOT_SUPPORTED', 'pipe IPC needs a transport that receives fds (the native transport)'));
    }
    const request = encodeStart(PduType.STARTPMDA_REQ, { ipctype, label, args });
    return this.exchange(request, options, ({ data, fds }) => {
      try {
        checkReply(data, PduType.STARTPMDA, START_HEADER_SIZE, `start of "${label}"`);
        const reply = decodeStart(data);
        if (ipctype !== IpcType.PIPE) {
          closeFds(fds);
          return { pid: reply.pid, stdin: undefined, stdout: undefined, fds: [] };
        }
        if (fds.length !== 2) {
          throw new CrootError('ERR_PROTOCOL', `pipe IPC reply carried ${fds.length} fds, expected 2`, { details: { pid: reply.pid } });
        }
        const [infd, outfd] = fds as [number, number];
        const stdin = createWriteStream('', { fd: infd });
        const stdout = new Socket({ fd: outfd, readable: true, writable: false });
        return { pid: reply.pid, stdin, stdout, fds: [infd, outfd] };
      } catch (err) {
        closeFds(fds);
        throw err;
      }
    });
  }

  /** Reaps a child the server started, without blocking (`pid <= 0`: any). */
  processWait(pid: number, options: CallOptions = {}): Promise<RootProcessStatus> {
    return this.stop(pid, 0, options);
  }

  /** Kills (SIGKILL) a child the server started. */
  processTerminate(pid: number, options: CallOptions = {}): Promise<RootProcessStatus> {
    return this.stop(pid, 1, options);
  }

  /** Closes the connection; queued calls fail with ERR_NOT_CONNECTED. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.transport.close();
  }

  private stop(pid: number, force: number, options: CallOptions): Promise<RootProcessStatus> {
    const request = encodeStop(PduType.STOPPMDA_REQ, { pid, force });
    return this.exchange(request, options, ({ data, fds }) => {
      closeFds(fds);
      checkReply(data, PduType.STOPPMDA, STOP_SIZE, `${force ? 'terminate' : 'wait'} of pid ${pid}`);
      const reply = decodeStop(data);
      return { pid: reply.pid, code: reply.code };
    });
  }

  /** Queues one request/reply exchange behind the ones before it. */
  private exchange<T>(request: Buffer, options: CallOptions, decode: (pdu: ReceivedPdu) => T): Promise<T> {
    const run = this.tail.then(() => this.exchangeNow(request, options, decode));
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async exchangeNow<T>(request: Buffer, options: CallOptions, decode: (pdu: ReceivedPdu) => T): Promise<T> {
    const signal = options.signal;
    if (this.closed) throw new CrootError('ERR_NOT_CONNECTED', `connection to ${this.path} is closed`);
    if (signal?.aborted) throw aborted(signal);
    const timeoutMs = options.timeoutMs ?? this.timeoutMs;
    let pdu: ReceivedPdu;
    try {
      await this.transport.send(request);
      pdu = await withAbort(this.transport.receive(timeoutMs), signal);
    } catch (err) {
      // The reply may still come: the stream is out of step, so it cannot be used again.
      this.close();
      throw err;
    }
    if (pdu.data.length === 0) {
      closeFds(pdu.fds);
      this.close();
      throw new CrootError('ERR_NOT_CONNECTED', `${this.path} closed the connection`);
    }
    try {
      return decode(pdu);
    } catch (err) {
      if (CrootError.is(err) && (err.code === 'ERR_PROTOCOL' || err.code === 'ERR_UNEXPECTED_PDU')) this.close();
      throw err;
    }
  }
}

/** Header checks in the C client's order: size, type, version, status, then length. */
function checkReply(data: Buffer, type: number, minSize: number, what: string): void {
  if (data.length < Math.max(minSize, PDU_HEADER_SIZE)) {
    const h = data.length >= PDU_HEADER_SIZE ? decodeHeader(data) : undefined;
    if (h !== undefined && h.type === type && h.status < 0) throw remoteError(h.status, what);
    throw new CrootError('ERR_PROTOCOL', `${what}: reply of ${data.length} bytes is shorter than ${minSize}`, { status: -Errno.EINVAL });
  }
  const h = decodeHeader(data);
  if (h.type !== type) {
    throw new CrootError('ERR_UNEXPECTED_PDU', `${what}: expected reply type 0x${type.toString(16)}, got 0x${(h.type >>> 0).toString(16)}`);
  }
  if (h.version > ROOT_PDU_VERSION) throw new CrootError('ERR_VERSION', `${what}: reply has PDU version ${h.version}`);
  if (h.status < 0) throw remoteError(h.status, what);
  if (h.status > 0) throw new CrootError('ERR_PROTOCOL', `${what}: reply has positive status ${h.status}`);
}

function describe(type: number): string {
  switch (type) {
    case PduType.HOSTNAME_REQ:
      return 'hostname';
    case PduType.PROCESSID_REQ:
      return 'process id';
    default:
      return 'cgroup name';
  }
}

function aborted(signal: AbortSignal): CrootError {
  return new CrootError('ERR_ABORTED', 'call aborted', { cause: signal.reason });
}

/** Rejects as soon as `signal` aborts; a reply that arrives later has its fds closed. */
function withAbort(promise: Promise<ReceivedPdu>, signal: AbortSignal | undefined): Promise<ReceivedPdu> {
  if (signal === undefined) return promise;
  return new Promise((resolve, reject) => {
    let done = false;
    const onAbort = (): void => {
      if (done) return;
      done = true;
      reject(aborted(signal));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (pdu) => {
        signal.removeEventListener('abort', onAbort);
        if (done) closeFds(pdu.fds);
        else {
          done = true;
          resolve(pdu);
        }
      },
      (err: unknown) => {
        signal.removeEventListener('abort', onAbort);
        if (!done) {
          done = true;
          reject(err);
        }
      },
    );
  });
}
