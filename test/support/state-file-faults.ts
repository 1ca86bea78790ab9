/**
 * Faults put in place of an engine's state file, the way engines replace
 * their own files (something made beside it, then renamed over it), so
 * croot's watches see them as they would see the engine's writes; and a
 * probe that tells whether anyone opened a FIFO (the target of a symbolic
 * link that croot must not follow).
 *
 * "Unreadable" is made honestly for a reader running as root, whom file modes
 * do not stop: a FIFO (a read would wait for a writer for ever), a folder, or
 * a file larger than any state file.
 */
import { execFileSync } from 'node:child_process';
import { closeSync, constants, mkdirSync, openSync, readFileSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

export interface StateFault {
  /** What it is, for test names and messages. */
  readonly name: string;
  readonly path: string;
  /** Puts the fault in place of the file. */
  apply(): void;
  /** Puts the file back as it was (by rename too). */
  undo(): void;
}

/** A name beside `path` that no engine reads. */
function besides(path: string): string {
  return join(dirname(path), `.croot-t-${randomBytes(4).toString('hex')}`);
}

/**
 * Moves `made` over `path` in one step, as engines replace their files.
 * What rename(2) cannot replace (a folder by a file, a file by a folder) is
 * swapped with renameat2(RENAME_EXCHANGE) (through python3's ctypes; Node
 * has no binding), and the old one then removed from `made`'s place: the
 * path never names nothing, which a reader would rightly take as the file
 * being gone.
 */
function replace(path: string, made: string): void {
  try {
    renameSync(made, path);
    return;
  } catch (err) {
    if (!['EISDIR', 'ENOTDIR', 'ENOTEMPTY', 'EEXIST'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err;
  }
  const exchange = [
    'import ctypes, os, sys',
    'libc = ctypes.CDLL(None, use_errno=True)',
    'AT_FDCWD, RENAME_EXCHANGE = -100, 2',
    'if libc.renameat2(AT_FDCWD, sys.argv[1].encode(), AT_FDCWD, sys.argv[2].encode(), RENAME_EXCHANGE) != 0:',
    '    e = ctypes.get_errno(); sys.exit("renameat2: " + os.strerror(e))',
  ].join('\n');
  execFileSync('python3', ['-c', exchange, made, path]);
  rmSync(made, { recursive: true, force: true });
}

/** A fault that replaces the file with what `make(at)` makes, and restores the content and mode it had. */
function fault(name: string, path: string, make: (at: string, original: Buffer) => void): StateFault {
  let original: { content: Buffer; mode: number } | undefined;
  return {
    name,
    path,
    apply: () => {
      original ??= { content: readFileSync(path), mode: statSync(path).mode & 0o7777 };
      const at = besides(path);
      make(at, original.content);
      replace(path, at);
    },
    undo: () => {
      if (original === undefined) return;
      const at = besides(path);
      writeFileSync(at, original.content, { mode: original.mode });
      replace(path, at);
    },
  };
}

/** The first half of the file, as a writer that died half-way leaves it. */
export function halfWritten(path: string): StateFault {
  return fault(`${basename(path)} half-written`, path, (at, content) => writeFileSync(at, content.subarray(0, Math.floor(content.length / 2))));
}

/** An empty file. */
export function truncated(path: string): StateFault {
  return fault(`${basename(path)} truncated to nothing`, path, (at) => writeFileSync(at, ''));
}

/** A symbolic link to `target`. */
export function symlinkTo(path: string, target: string, what = target): StateFault {
  return fault(`${basename(path)} a symbolic link to ${what}`, path, (at) => symlinkSync(target, at));
}

/** A FIFO no one writes to. */
export function fifoInPlace(path: string): StateFault {
  return fault(`${basename(path)} a FIFO`, path, (at) => execFileSync('mkfifo', [at]));
}

/** An empty folder. */
export function folderInPlace(path: string): StateFault {
  return fault(`${basename(path)} a folder`, path, (at) => mkdirSync(at));
}

/** The file grown to `bytes` bytes of spaces after its content (still valid JSON, or a pid, when it was). */
export function oversized(path: string, bytes: number): StateFault {
  return fault(`${basename(path)} grown to ${bytes} bytes`, path, (at, content) => writeFileSync(at, Buffer.concat([content, Buffer.alloc(Math.max(0, bytes - content.length), 0x20)])));
}

/** A folder of the engine's tree replaced by a symbolic link to `target` (the folder is kept aside and put back). */
export function folderLinkedTo(path: string, target: string, what = target): StateFault {
  const aside = besides(path);
  return {
    name: `${basename(path)}/ a symbolic link to ${what}`,
    path,
    apply: () => {
      renameSync(path, aside);
      symlinkSync(target, path);
    },
    undo: () => {
      rmSync(path, { force: true });
      renameSync(aside, path);
    },
  };
}

/**
 * A FIFO outside every engine's tree, and whether anyone opened it for
 * reading: every few milliseconds it is opened for writing without blocking,
 * which the kernel allows only while a reader has it open (or waits in
 * open()); a writer coming and going also lets such a reader go on.
 */
export class FifoProbe {
  readonly path: string;
  /** Times a reader was found. */
  opened = 0;
  private timer: NodeJS.Timeout | undefined;

  constructor(dir: string) {
    this.path = join(dir, 'outside.fifo');
    execFileSync('mkfifo', [this.path]);
  }

  start(intervalMs = 5): this {
    this.timer = setInterval(() => this.probe(), intervalMs);
    return this;
  }

  stop(): void {
    clearInterval(this.timer);
    this.timer = undefined;
  }

  probe(): void {
    let fd: number;
    try {
      fd = openSync(this.path, constants.O_WRONLY | constants.O_NONBLOCK);
    } catch {
      return; // ENXIO: no reader
    }
    this.opened++;
    closeSync(fd);
  }
}
