/**
 * What a root-socket client needs of its connection: whole PDUs sent and
 * received, with any file descriptors that came along. The pure-Node
 * transport (node-socket-transport.ts) cannot receive fds; the native
 * module's can.
 */

/** One PDU as received, with any file descriptors that came with it (the receiver owns them). */
export interface ReceivedPdu {
  readonly data: Buffer;
  readonly fds: number[];
}

/** A connection to a root socket that moves whole PDUs. */
export interface RootTransport {
  /** True when `receive` can return fds passed with SCM_RIGHTS. */
  readonly passesFds?: boolean;
  /** Sends one PDU in one write. */
  send(pdu: Buffer): Promise<void>;
  /**
   * Resolves with one whole PDU. Empty `data` means the peer closed the
   * connection (like recv() returning 0). Rejects with ERR_TIMEOUT after
   * `timeoutMs` (Infinity: wait forever), or with the socket's error.
   */
  receive(timeoutMs: number): Promise<ReceivedPdu>;
  /** Closes the connection; a pending receive is rejected or its fds closed. */
  close(): void;
}

/** Opens a transport to the socket at `path`. */
export type RootTransportFactory = (path: string, timeoutMs: number) => Promise<RootTransport>;
