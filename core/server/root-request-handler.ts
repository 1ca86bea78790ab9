/**
 * Answers one framed request of PCP's root protocol: decode → index lookup →
 * identity check → encode. Synchronous whenever nothing has to be waited
 * for (PID and cgroup of a loaded engine's container, and a hostname the
 * namespace thread answered at once); a hostname handed over to a promise, a
 * process-service request, or a name whose engine is still loading gives a
 * promise. Never throws: every failure becomes an error reply.
 *
 * An answer given at once from the live index is remembered in the
 * ReplyCache (when one is bound) with the process it rests on, and the
 * connections give it again by themselves to the same request bytes; every
 * change of the index forgets them all (docs/native.md, "Replies answered
 * again").
 */
import { inject, injectable, optional } from 'inversify';
import { ExtensionPduType } from '../protocol/croot-extension.js';
import { CrootError, Errno, PM_ERR_NOCONTAINER, statusOf } from '../errors/croot-error.js';
import { ExtensionHandler, type ReplyStream, type ServerFacts } from './extension-handler.js';
import { FdSender, ReplyCache, type PeerCredentials } from '../host/host-services.js';
import { EngineRegistry } from '../registry/engine-registry.js';
import { Logger, SilentLogger } from '../logging/logger.js';
import { ProcessService } from '../process/process-service.js';
import type { Frame } from '../protocol/frame-decoder.js';
import {
  CONTAINER_HEADER_SIZE,
  IpcType,
  MAXPATHLEN,
  PduType,
  ROOT_PDU_VERSION,
  decodeContainer,
  decodeStart,
  decodeStop,
  encodeContainer,
  encodeErrorHeader,
  encodeStart,
  encodeStop,
  getInt,
  replyTypeOf,
} from '../protocol/root-pdus.js';
import {
  ContainerCGroupResolver,
  ContainerHostnameResolver,
  ContainerProcessIdResolver,
  type MaybePromise,
  type ResolvedAnswer,
} from '../registry/container-resolvers.js';

/** One reply, sent with one write (or one sendmsg when fds travel with it). */
export interface Reply {
  readonly bytes: Buffer;
  /** fds to pass with SCM_RIGHTS, closed after sending. */
  readonly fds?: readonly number[];
  /** Close the connection after this reply (the stream cannot be re-synchronised). */
  readonly close?: boolean;
  /** After `bytes`, the connection carries this stream and nothing else (croot's `events`). */
  readonly stream?: ReplyStream;
}

@injectable()
export class RootRequestHandler {
  private readonly logger: Logger;
  /** Forgotten at every change of the registry's index (the constructor subscribes). */
  private readonly replies: ReplyCache | undefined;
  /** What the server knows of itself, for croot's extension requests (set by RootServer). */
  serverFacts: () => ServerFacts = () => ({ socket: undefined, allowUids: [], peers: [] });

  constructor(
    @inject(ContainerHostnameResolver) private readonly hostnames: ContainerHostnameResolver,
    @inject(ContainerProcessIdResolver) private readonly pids: ContainerProcessIdResolver,
    @inject(ContainerCGroupResolver) private readonly cgroups: ContainerCGroupResolver,
    @inject(Logger) @optional() logger: Logger | undefined,
    @inject(FdSender) @optional() readonly fdSender: FdSender | undefined,
    @inject(ProcessService) @optional() private readonly processes: ProcessService | undefined,
    @inject(ExtensionHandler) @optional() private readonly extension: ExtensionHandler | undefined,
    @inject(ReplyCache) @optional() replies: ReplyCache | undefined,
    @inject(EngineRegistry) registry: EngineRegistry,
  ) {
    this.logger = logger ?? new SilentLogger();
    this.replies = replies;
    // Any change (a container added, renamed, restarted, gone; an engine's health) may change an answer.
    if (replies !== undefined) registry.subscribe(() => replies.forget());
  }

  answer(frame: Frame, peer: PeerCredentials): MaybePromise<Reply> {
    if (frame.kind === 'broken') {
      this.logger.warn('unframeable request; closing', { pid: peer.pid, reason: frame.reason, type: hex(frame.header.type) });
      return { bytes: errorReply(frame.header.type, -Errno.EINVAL, 0), close: true };
    }
    const h = frame.header;
    this.extension?.countRequest(h.type);
    if (h.type === ExtensionPduType.REQUEST && this.extension !== undefined) {
      // croot's own extension (list, show, engines, status, events); PCP's clients never send it.
      // It checks the version itself, so even that refusal comes as an extension reply (0x9101).
      return this.extension.answer(frame.bytes, this.serverFacts(), peer);
    }
    if (h.version < 1 || h.version > ROOT_PDU_VERSION) {
      return { bytes: errorReply(h.type, -Errno.ENOTSUP, 0) };
    }
    try {
      let reply: MaybePromise<Reply>;
      switch (h.type) {
        case PduType.HOSTNAME_REQ:
        case PduType.PROCESSID_REQ:
        case PduType.CGROUPNAME_REQ:
          reply = this.answerContainer(frame.bytes);
          break;
        case PduType.STARTPMDA_REQ:
          reply = this.answerStart(frame.bytes, peer);
          break;
        case PduType.STOPPMDA_REQ:
          reply = this.answerStop(frame.bytes, peer);
          break;
        default:
          this.logger.warn('unknown request type', { pid: peer.pid, type: hex(h.type) });
          return { bytes: encodeErrorHeader(h.type, -Errno.ENOTSUP) };
      }
      return reply instanceof Promise ? reply.catch((err: unknown) => this.failed(frame.bytes, h.type, peer, err)) : reply;
    } catch (err) {
      return this.failed(frame.bytes, h.type, peer, err);
    }
  }

  private failed(bytes: Buffer, type: number, peer: PeerCredentials, err: unknown): Reply {
    this.extension?.countFailure();
    const status = statusOf(err);
    if (status === PM_ERR_NOCONTAINER) {
      this.logger.debug('request failed', { pid: peer.pid, type: hex(type), status, error: (err as Error).message });
    } else {
      this.logger.warn('request failed', { pid: peer.pid, type: hex(type), status, error: err instanceof Error ? err.message : String(err) });
    }
    return { bytes: errorReply(type, status, echoPid(bytes)) };
  }

  private answerContainer(bytes: Buffer): MaybePromise<Reply> {
    const req = decodeContainer(bytes);
    const replyType = req.type + 1;
    if (req.name.length === 0) return this.answerProcess(req.type, replyType, req.pid);
    switch (req.type) {
      case PduType.HOSTNAME_REQ: {
        const answer = this.hostnames.resolveHostname(req.name);
        return answer instanceof Promise ? answer.then((a) => named(replyType, a)) : this.remember(bytes, named(replyType, answer), answer);
      }
      case PduType.CGROUPNAME_REQ: {
        const answer = this.cgroups.resolveCGroupName(req.name);
        return answer instanceof Promise ? answer.then((a) => named(replyType, a)) : this.remember(bytes, named(replyType, answer), answer);
      }
      default: {
        if (this.pids.resolveProcess !== undefined) {
          const answer = this.pids.resolveProcess(req.name);
          return answer instanceof Promise ? answer.then((a) => pidOnly(replyType, a.pid)) : this.remember(bytes, pidOnly(replyType, answer.pid), answer);
        }
        const pid = this.pids.resolveProcessId(req.name);
        return pid instanceof Promise ? pid.then((p) => pidOnly(replyType, p)) : pidOnly(replyType, pid);
      }
    }
  }

  /** A reply given at once: kept for the same request while what it rests on holds. A promise's is never kept (the index may have changed meanwhile). */
  private remember(request: Buffer, reply: Reply, answer: ResolvedAnswer<unknown>): Reply {
    if (this.replies !== undefined && answer.holder !== undefined) this.replies.remember(request, reply.bytes, answer.holder);
    return reply;
  }

  /** `namelen == 0` with a pid: answer for that host process directly. */
  private answerProcess(type: number, replyType: number, pid: number): MaybePromise<Reply> {
    if (pid <= 0) throw new CrootError('ERR_INVALID_NAME', 'neither a container name nor a pid');
    switch (type) {
      case PduType.HOSTNAME_REQ: {
        const name = this.hostnames.resolveHostnameOfProcess(pid);
        return name instanceof Promise ? name.then((n) => hostOnly(replyType, n, pid)) : hostOnly(replyType, name, pid);
      }
      case PduType.CGROUPNAME_REQ:
        return { bytes: encodeContainer(replyType, truncate(this.cgroups.resolveCGroupNameOfProcess(pid)), { pid }) };
      default:
        this.cgroups.resolveCGroupNameOfProcess(pid); // checks that it exists
        return pidOnly(replyType, pid);
    }
  }

  private async answerStart(bytes: Buffer, peer: PeerCredentials): Promise<Reply> {
    const req = decodeStart(bytes);
    if (this.processes === undefined) {
      throw new CrootError('ERR_NOT_SUPPORTED', 'process services are not enabled in this server');
    }
    // The ipctype, label and command line are checked once, by ProcessManager.start.
    if (req.ipctype === IpcType.PIPE && this.fdSender === undefined) {
      throw new CrootError('ERR_NOT_SUPPORTED', 'pipe IPC needs fd passing (native module not loaded)');
    }
    const started = await this.processes.start({ ipctype: req.ipctype, label: req.label, args: req.args }, peer);
    this.logger.info('started process', { label: req.label, pid: started.pid, by: peer.pid });
    return { bytes: encodeStart(PduType.STARTPMDA, { pid: started.pid, label: req.label }), fds: started.fds };
  }

  private async answerStop(bytes: Buffer, peer: PeerCredentials): Promise<Reply> {
    const req = decodeStop(bytes);
    if (this.processes === undefined) {
      throw new CrootError('ERR_NOT_SUPPORTED', 'process services are not enabled in this server');
    }
    const result = req.force ? await this.processes.terminate(req.pid, peer) : await this.processes.wait(req.pid, peer);
    return { bytes: encodeStop(PduType.STOPPMDA, { pid: result.pid, code: result.code, force: req.force }) };
  }
}

function named(replyType: number, answer: ResolvedAnswer<string>): Reply {
  return { bytes: encodeContainer(replyType, truncate(answer.value), { pid: answer.pid }) };
}

function hostOnly(replyType: number, name: string, pid: number): Reply {
  return { bytes: encodeContainer(replyType, truncate(name), { pid }) };
}

function pidOnly(replyType: number, pid: number): Reply {
  return { bytes: encodeContainer(replyType, '', { pid }) };
}

/** An error reply shaped like the request's reply type, so C clients decode it. */
export function errorReply(requestType: number, status: number, pid: number): Buffer {
  const replyType = replyTypeOf(requestType);
  switch (replyType) {
    case PduType.HOSTNAME:
    case PduType.PROCESSID:
    case PduType.CGROUPNAME:
      return encodeContainer(replyType, '', { pid, status });
    case PduType.STARTPMDA:
      return encodeStart(replyType, { pid: -1, label: '', status });
    case PduType.STOPPMDA:
      return encodeStop(replyType, { pid, status });
    default:
      return encodeErrorHeader(requestType, status);
  }
}

/** The pid field of a request, for echoing in an error reply (a STARTPMDA error reply carries pid -1 whatever this says). */
function echoPid(bytes: Buffer): number {
  if (bytes.length < CONTAINER_HEADER_SIZE) return 0;
  return getInt(bytes, 16);
}

/** A name as long as the C structs hold (MAXPATHLEN - 1 bytes). */
function truncate(value: string): string {
  if (value.length < MAXPATHLEN / 4) return value;
  const bytes = Buffer.from(value, 'utf8');
  return bytes.length < MAXPATHLEN ? value : bytes.subarray(0, MAXPATHLEN - 1).toString('utf8');
}

export function hex(type: number): string {
  return `0x${(type >>> 0).toString(16)}`;
}
