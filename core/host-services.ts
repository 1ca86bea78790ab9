/**
 * What the core needs from the host that Node cannot do alone. The native
 * module (native/) binds implementations to these tokens; the core never
 * imports it.
 */

export interface PeerCredentials {
  readonly pid: number;
  readonly uid: number;
  readonly gid: number;
}

/** Reads a container's hostname from inside its UTS namespace. */
export const NamespaceHostnameReader = Symbol.for('croot/NamespaceHostnameReader');
export interface NamespaceHostnameReader {
  /** Resolves the hostname seen by `pid`; runs on a thread of its own, never the event loop. */
  readHostname(pid: number, signal?: AbortSignal): Promise<string>;
}

/** SO_PEERCRED of a connected unix socket. */
export const PeerCredentialReader = Symbol.for('croot/PeerCredentialReader');
export interface PeerCredentialReader {
  /** Returns the credentials of the peer of socket `fd`; does not block. */
  peerCredentials(fd: number): PeerCredentials;
}

/** Writes on a unix socket with file descriptors attached (SCM_RIGHTS). */
export const FdSender = Symbol.for('croot/FdSender');
export interface FdSender {
  /** Sends `data` and `fds` in one sendmsg on the (blocking or not) socket `fd`. Returns bytes sent. */
  sendWithFds(fd: number, data: Buffer, fds: readonly number[]): number;
}
