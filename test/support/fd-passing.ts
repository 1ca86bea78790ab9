/**
 * File descriptors over a real unix socket, for core's client tests (which
 * may not import native/ themselves, .dependency-cruiser.cjs): the native
 * transport (one recvmsg per reply, SCM_RIGHTS fds kept), a server side that
 * sends a reply with fds attached in one sendmsg, real pipes, and what the
 * kernel says this process holds open (/proc/self/fd). Gate the tests with
 * `describeWith('croot native', probes.native, ...)`.
 */
import { readdirSync, readlinkSync } from 'node:fs';
import type { Socket } from 'node:net';
import type { RootTransportFactory } from '../../core/client/root-transport.js';
import { loadNative } from '../../native/load-native.js';
import { nativeTransport } from '../../native/native-transport.js';

/** The client transport that receives fds (SCM_RIGHTS). */
export const fdTransport: RootTransportFactory = nativeTransport;

/** Writes `data` on the accepted `socket` with `fds` in one SCM_RIGHTS message (one sendmsg). */
export function sendWithFds(socket: Socket, data: Buffer, fds: readonly number[]): void {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) throw new Error('the socket has no fd');
  const sent = loadNative().sendWithFds(fd, data, fds);
  if (sent !== data.length) throw new Error(`sent ${sent} of ${data.length} bytes`);
}

/** A pipe from the kernel: [read end, write end], close-on-exec. */
export function pipe(): [number, number] {
  return loadNative().pipe();
}

/** What fd `fd` of this process is, as the kernel names it (`pipe:[1234]`), or undefined when it is not open. */
export function fdTarget(fd: number): string | undefined {
  try {
    return readlinkSync(`/proc/self/fd/${fd}`);
  } catch {
    return undefined;
  }
}

/** The fds this process holds open on `target` (e.g. a `pipe:[1234]`), from /proc/self/fd. */
export function fdsOn(target: string): number[] {
  return readdirSync('/proc/self/fd')
    .map(Number)
    .filter((fd) => fdTarget(fd) === target);
}
