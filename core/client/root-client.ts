/**
 * croot's client of the root socket (PCP's pmdaroot or croot's own crootd):
 * a Promise API over the PCP client layer (root-channel.ts) and a pluggable
 * transport, one request in flight per connection, every call bounded by a
 * timeout or an AbortSignal, every failure a CrootError.
 */
import { createWriteStream } from 'node:fs';
import { Socket } from 'node:net';
import type { Readable, Writable } from 'node:stream';
import { defaultSocketPath } from '../config/croot-config.js';
import { CrootError } from '../errors/croot-error.js';
import { closeFds } from '../host/close-fds.js';
import {
  CONTAINER_HEADER_SIZE,
  IpcType,
  PDU_HEADER_SIZE,
  PduType,
  START_HEADER_SIZE,
  STOP_SIZE,
  decodeContainer,
  decodeHeader,
  decodeStart,
  decodeStop,
  encodeContainer,
  encodeStart,
  encodeStop,
} from '../protocol/root-pdus.js';
import { nodeSocketTransport } from './node-socket-transport.js';
import { DEFAULT_TIMEOUT_MS, RootChannel, checkReply, peerClosed, remoteError } from './root-channel.js';
import type { ReceivedPdu, RootTransportFactory } from './root-transport.js';

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

type ContainerRequest = typeof PduType.HOSTNAME_REQ | typeof PduType.PROCESSID_REQ | typeof PduType.CGROUPNAME_REQ;

export class RootClient {
  /** Feature bits of the server's INFO (1 hostname, 2 process id, 4 cgroup name). */
  readonly features: number;
  /** Root PDU version of the server's INFO. */
  readonly version: number;

  private constructor(
    private readonly channel: RootChannel,
    private readonly timeoutMs: number,
    private readonly trailingNul: boolean,
  ) {
    this.features = channel.info.features;
    this.version = channel.info.version;
  }

  /** Connects and checks the server's INFO as PCP's C client does. */
  static async connect(path: string = defaultSocketPath(), options: RootClientOptions = {}): Promise<RootClient> {
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const transport = await (options.transport ?? nodeSocketTransport)(path, timeoutMs);
    return new RootClient(await RootChannel.start(transport, path, timeoutMs), timeoutMs, options.trailingNul ?? true);
  }

  /** The socket this client is connected to. */
  get path(): string {
    return this.channel.path;
  }

  /** True until `close()` or a failure that left the connection unusable. */
  get connected(): boolean {
    return this.channel.open;
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
      checkRootReply(data, type + 1, CONTAINER_HEADER_SIZE, `${describe(type)} of "${name}"`);
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
    if (ipctype === IpcType.PIPE && !this.channel.passesFds) {
      return Promise.reject(new CrootError('ERR_NOT_SUPPORTED', 'pipe IPC needs a transport that receives fds (the native transport)'));
    }
    const request = encodeStart(PduType.STARTPMDA_REQ, { ipctype, label, args });
    return this.exchange(request, options, ({ data, fds }) => {
      try {
        checkRootReply(data, PduType.STARTPMDA, START_HEADER_SIZE, `start of "${label}"`);
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
    this.channel.close();
  }

  private stop(pid: number, force: number, options: CallOptions): Promise<RootProcessStatus> {
    const request = encodeStop(PduType.STOPPMDA_REQ, { pid, force });
    return this.exchange(request, options, ({ data, fds }) => {
      closeFds(fds);
      checkRootReply(data, PduType.STOPPMDA, STOP_SIZE, `${force ? 'terminate' : 'wait'} of pid ${pid}`);
      const reply = decodeStop(data);
      return { pid: reply.pid, code: reply.code };
    });
  }

  /** One request and its reply, queued behind the ones before it; a reply that breaks the stream closes the connection. */
  private async exchange<T>(request: Buffer, options: CallOptions, decode: (pdu: ReceivedPdu) => T): Promise<T> {
    const result = await this.channel.exchange(request, options.timeoutMs ?? this.timeoutMs, options.signal);
    if (!result.ok) throw result.error;
    const pdu = result.pdu;
    if (pdu.data.length === 0) {
      closeFds(pdu.fds);
      this.close();
      throw peerClosed(`${this.path} closed the connection`);
    }
    try {
      return decode(pdu);
    } catch (err) {
      if (CrootError.is(err) && (err.code === 'ERR_PROTOCOL' || err.code === 'ERR_UNEXPECTED_PDU')) this.close();
      throw err;
    }
  }
}

/**
 * The reply checks of the PCP client layer, after one of croot's own: a
 * short reply of the expected type that carries an error status (a server
 * answering an error with a bare header) is that error, not a short reply.
 */
function checkRootReply(data: Buffer, type: number, minSize: number, what: string): void {
  if (data.length < minSize && data.length >= PDU_HEADER_SIZE) {
    const h = decodeHeader(data);
    if (h.type === type && h.status < 0) throw remoteError(h.status, what);
  }
  checkReply(data, type, minSize, what);
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
