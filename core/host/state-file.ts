/**
 * Reading one of an engine's state files (a container's config, a pidfile, a
 * container list) from the engine's own tree, so that whatever lies there
 * can cost the container it describes but never make croot read another
 * file, or wait:
 *
 * - the file is opened with `O_NOFOLLOW` (a symbolic link in its place is
 *   refused) and `O_NONBLOCK` (a FIFO in its place cannot hold a thread);
 * - it must be a regular file of at most `maxBytes` bytes (a FIFO, socket,
 *   device or folder in its place is refused, as is a file grown past the
 *   limit while it is read);
 * - the file actually opened must be `<root>/<relPath>` with no symbolic link
 *   anywhere below `root` (checked on the open descriptor, through
 *   `/proc/self/fd`, so nothing can be swapped between the check and the
 *   read): a folder of the path replaced by a link, inside the tree or out of
 *   it, is refused. `root` itself may be a link (e.g. /var/lib/docker on
 *   another disk). Without /proc only the file's own name is checked.
 *
 * Engines decide what a refused file costs (docs/security.md says, per
 * engine); none of them follows it.
 */
import { closeSync, constants, fstatSync, openSync, readSync, readlinkSync, realpathSync } from 'node:fs';
import { open, readlink, realpath, type FileHandle } from 'node:fs/promises';

/** What reading a state file gave. */
export type StateFileRead =
  | {
      readonly kind: 'text';
      readonly text: string;
      /** `ino:size:mtimeMs` of the file read, from the open descriptor: changes whenever the file is replaced or written. */
      readonly signature: string;
    }
  /** Not there (or a folder of its path is not there): the engine's state says so. */
  | { readonly kind: 'missing' }
  /** There, but not a file croot reads: why, for the engine's health. */
  | { readonly kind: 'refused'; readonly reason: string };

/**
 * `ino:size:mtimeMs` of a file, as one flat string: an engine keeps one per
 * container, and a template literal would keep it as a tree of pieces (a
 * V8 cons string of numbers turned into strings), several times its size.
 */
export function fileSignature(stat: { readonly ino: number; readonly size: number; readonly mtimeMs: number }): string {
  return [stat.ino, stat.size, stat.mtimeMs].join(':');
}

const FLAGS = constants.O_RDONLY | constants.O_NONBLOCK | constants.O_NOFOLLOW;
const MISSING: StateFileRead = Object.freeze({ kind: 'missing' });

function refused(reason: string): StateFileRead {
  return { kind: 'refused', reason };
}

/** `relPath` as a list of plain names, or undefined when it could leave the tree (`..`, `.`, absolute, empty parts). */
function namesOf(relPath: string): string[] | undefined {
  const names = relPath.split('/');
  return names.every((n) => n !== '' && n !== '.' && n !== '..') ? names : undefined;
}

/** What an open() failure means for a state file. */
function openFailure(err: unknown): StateFileRead {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT' || code === 'ENOTDIR') return MISSING;
  if (code === 'ELOOP') return refused('a symbolic link');
  // A socket (or a FIFO opened for writing) cannot be opened: it is not a file either way.
  if (code === 'ENXIO') return refused('not a regular file');
  return refused(`unreadable (${code ?? (err as Error).message})`);
}

function kindOf(stat: { isDirectory(): boolean; isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): string {
  if (stat.isDirectory()) return 'a folder';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isSocket()) return 'a socket';
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'a device';
  return 'not a regular file';
}

/** Why the file opened is not `<realRoot>/<relPath>`, or undefined when it is. */
function placeProblem(opened: string | undefined, realRoot: string, relPath: string): string | undefined {
  if (opened === undefined || opened === `${realRoot === '/' ? '' : realRoot}/${relPath}`) return undefined;
  if (opened.endsWith(' (deleted)')) return 'replaced while it was read';
  return `reached through a symbolic link (it is ${opened})`;
}

/** A buffer twice as long (at most `maxBytes + 1`) holding `buf`: the file grew while it was read. */
function grown(buf: Buffer, maxBytes: number): Buffer {
  const bigger = Buffer.alloc(Math.min(buf.length * 2, maxBytes + 1));
  buf.copy(bigger);
  return bigger;
}

/**
 * Reads `<root>/<relPath>` under the rules above. Never throws: a missing
 * file is `missing`, anything else that is not a readable regular file of at
 * most `maxBytes` bytes inside the tree is `refused`.
 */
export async function readStateFile(root: string, relPath: string, maxBytes: number): Promise<StateFileRead> {
  if (namesOf(relPath) === undefined) return refused(`not a path inside ${root}`);
  let handle: FileHandle;
  try {
    handle = await open(`${root}/${relPath}`, FLAGS);
  } catch (err) {
    return openFailure(err);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) return refused(kindOf(stat));
    if (stat.size > maxBytes) return refused(`larger than ${maxBytes} bytes`);
    const opened = await readlink(`/proc/self/fd/${handle.fd}`).catch(() => undefined);
    const problem = placeProblem(opened, await realpath(root), relPath);
    if (problem !== undefined) return refused(problem);
    let buf: Buffer = Buffer.alloc(Math.min(stat.size, maxBytes) + 1);
    let length = 0;
    for (;;) {
      if (length === buf.length) buf = grown(buf, maxBytes);
      const { bytesRead } = await handle.read(buf, length, buf.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > maxBytes) return refused(`larger than ${maxBytes} bytes`);
    }
    return { kind: 'text', text: buf.toString('utf8', 0, length), signature: fileSignature(stat) };
  } catch (err) {
    return refused(`unreadable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  } finally {
    await handle.close().catch(() => undefined);
  }
}

/**
 * The synchronous reads' buffer, reused from one read to the next (nothing
 * runs in between: they are synchronous): an engine loading thousands of
 * containers reads two files each, and a buffer of its own per read would be
 * that many allocations for the garbage collector. Files larger than this
 * are read into a buffer of their own, so no large buffer is kept.
 */
const SCRATCH_BYTES = 64 * 1024;
let scratch: Buffer | undefined;

/**
 * `readStateFile`, synchronously: for small local files (run state on tmpfs,
 * Docker's configs), where a read takes microseconds and a trip through the
 * thread pool would cost more. Blocks on nothing: a FIFO is opened
 * non-blocking and refused. `realRoot` is `root` resolved, when the caller
 * resolved it once for many reads (a root re-pointed since then makes the
 * files it reads refused, never followed).
 */
export function readStateFileSync(root: string, relPath: string, maxBytes: number, realRoot?: string): StateFileRead {
  if (namesOf(relPath) === undefined) return refused(`not a path inside ${root}`);
  let fd: number;
  try {
    fd = openSync(`${root}/${relPath}`, FLAGS);
  } catch (err) {
    return openFailure(err);
  }
  try {
    const stat = fstatSync(fd);
    if (!stat.isFile()) return refused(kindOf(stat));
    if (stat.size > maxBytes) return refused(`larger than ${maxBytes} bytes`);
    let opened: string | undefined;
    try {
      opened = readlinkSync(`/proc/self/fd/${fd}`);
    } catch {
      opened = undefined;
    }
    const problem = placeProblem(opened, realRoot ?? realpathSync.native(root), relPath);
    if (problem !== undefined) return refused(problem);
    const want = Math.min(stat.size, maxBytes) + 1;
    let buf: Buffer = want <= SCRATCH_BYTES ? (scratch ??= Buffer.allocUnsafeSlow(SCRATCH_BYTES)) : Buffer.allocUnsafe(want);
    let length = 0;
    for (;;) {
      if (length === buf.length) buf = grown(buf, maxBytes);
      const n = readSync(fd, buf, length, buf.length - length, null);
      if (n === 0) break;
      length += n;
      if (length > maxBytes) return refused(`larger than ${maxBytes} bytes`);
      // As many bytes as fstat gave and room for more: the file as it was when opened, without one more read to see its end.
      if (length === stat.size && length < buf.length) break;
    }
    return { kind: 'text', text: buf.toString('utf8', 0, length), signature: fileSignature(stat) };
  } catch (err) {
    return refused(`unreadable (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  } finally {
    closeSync(fd);
  }
}
