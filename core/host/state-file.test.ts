import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, realpathSync, renameSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readStateFile, readStateFileSync, type StateFileRead } from './state-file.js';

describe('readStateFile and readStateFileSync', () => {
  let base: string;
  let root: string;
  let outside: string;
  let server: Server | undefined;

  beforeEach(() => {
    base = mkdtempSync(join(tmpdir(), 'croot-state-file-'));
    root = join(base, 'tree');
    outside = join(base, 'outside');
    mkdirSync(join(root, 'a', 'b'), { recursive: true });
    mkdirSync(outside);
    writeFileSync(join(root, 'a', 'b', 'state.json'), '{"pid":42}');
    writeFileSync(join(outside, 'secret'), 'root:x:0:0');
  });

  afterEach(async () => {
    await new Promise<void>((r) => (server === undefined ? r() : server.close(() => r())));
    server = undefined;
    rmSync(base, { recursive: true, force: true });
  });

  /** Both readers, which must agree. */
  async function both(rootDir: string, rel: string, max = 1024): Promise<StateFileRead> {
    const sync = readStateFileSync(rootDir, rel, max);
    const async = await readStateFile(rootDir, rel, max);
    expect(async).toEqual(sync);
    return sync;
  }

  /** ino:size:mtime of the file, as stat(2) gives it. */
  function statSignature(path: string): string {
    const st = statSync(path);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  }

  it('reads a regular file inside the tree, with the signature stat gives it', async () => {
    const path = join(root, 'a', 'b', 'state.json');
    await expect(both(root, 'a/b/state.json')).resolves.toEqual({ kind: 'text', text: '{"pid":42}', signature: statSignature(path) });
  });

  it('gives another signature once the file is replaced, as engines write their state (a temp file renamed over it)', async () => {
    const before = await both(root, 'a/b/state.json');
    writeFileSync(join(root, 'a', 'b', '.tmp'), '{"pid":43}');
    renameSync(join(root, 'a', 'b', '.tmp'), join(root, 'a', 'b', 'state.json'));
    const after = await both(root, 'a/b/state.json');
    expect(after).toEqual({ kind: 'text', text: '{"pid":43}', signature: statSignature(join(root, 'a', 'b', 'state.json')) });
    expect(after.kind === 'text' && before.kind === 'text' && after.signature !== before.signature).toBe(true);
  });

  it('says missing for a file or a folder that is not there', async () => {
    await expect(both(root, 'a/b/none.json')).resolves.toEqual({ kind: 'missing' });
    await expect(both(root, 'a/none/state.json')).resolves.toEqual({ kind: 'missing' });
    await expect(both(join(base, 'no-tree'), 'a/b/state.json')).resolves.toEqual({ kind: 'missing' });
  });

  it('refuses a symbolic link in the file’s place, pointing out of the tree or into it', async () => {
    symlinkSync(join(outside, 'secret'), join(root, 'a', 'b', 'out.json'));
    symlinkSync('state.json', join(root, 'a', 'b', 'in.json'));
    await expect(both(root, 'a/b/out.json')).resolves.toEqual({ kind: 'refused', reason: 'a symbolic link' });
    await expect(both(root, 'a/b/in.json')).resolves.toEqual({ kind: 'refused', reason: 'a symbolic link' });
  });

  it('refuses a file reached through a folder that is a symbolic link, out of the tree or inside it', async () => {
    symlinkSync(outside, join(root, 'a', 'evil'));
    symlinkSync('b', join(root, 'a', 'alias'));
    const out = await both(root, 'a/evil/secret');
    expect(out).toEqual({ kind: 'refused', reason: `reached through a symbolic link (it is ${join(outside, 'secret')})` });
    const inside = await both(root, 'a/alias/state.json');
    expect(inside).toEqual({ kind: 'refused', reason: `reached through a symbolic link (it is ${join(root, 'a', 'b', 'state.json')})` });
  });

  it('reads through a tree root that is itself a symbolic link', async () => {
    symlinkSync(root, join(base, 'link-to-tree'));
    await expect(both(join(base, 'link-to-tree'), 'a/b/state.json')).resolves.toEqual({ kind: 'text', text: '{"pid":42}', signature: statSignature(join(root, 'a', 'b', 'state.json')) });
  });

  it('refuses a FIFO at once, without waiting for a writer', async () => {
    execFileSync('mkfifo', [join(root, 'a', 'b', 'fifo')]);
    await expect(both(root, 'a/b/fifo')).resolves.toEqual({ kind: 'refused', reason: 'a FIFO' });
  });

  it('refuses a folder and a socket in the file’s place', async () => {
    mkdirSync(join(root, 'a', 'b', 'dir.json'));
    await expect(both(root, 'a/b/dir.json')).resolves.toEqual({ kind: 'refused', reason: 'a folder' });
    const socketPath = join(root, 'a', 'b', 'sock');
    server = createServer();
    await new Promise<void>((r) => server?.listen(socketPath, r));
    await expect(both(root, 'a/b/sock')).resolves.toEqual({ kind: 'refused', reason: 'not a regular file' });
  });

  it('refuses a file larger than the limit, and reads one exactly at it', async () => {
    writeFileSync(join(root, 'big'), 'x'.repeat(1025));
    writeFileSync(join(root, 'fits'), 'y'.repeat(1024));
    await expect(both(root, 'big')).resolves.toEqual({ kind: 'refused', reason: 'larger than 1024 bytes' });
    await expect(both(root, 'fits')).resolves.toEqual({ kind: 'text', text: 'y'.repeat(1024), signature: statSignature(join(root, 'fits')) });
  });

  it('refuses a path that could leave the tree, without opening it', async () => {
    for (const rel of ['../outside/secret', 'a/../../outside/secret', 'a/b/..', '/etc/passwd', 'a//b/state.json', './a/b/state.json', 'a/./b/state.json', '']) {
      expect([rel, await both(root, rel)]).toEqual([rel, { kind: 'refused', reason: `not a path inside ${root}` }]);
    }
  });

  it('says missing for a path through a file as if it were a folder (ENOTDIR)', async () => {
    await expect(both(root, 'a/b/state.json/more')).resolves.toEqual({ kind: 'missing' });
  });

  it('leaves no descriptor open, whatever it read or refused', async () => {
    // The kernel's list of this process's open descriptors.
    const fds = (): string[] => readdirSync('/proc/self/fd').sort();
    execFileSync('mkfifo', [join(root, 'a', 'b', 'fifo')]);
    mkdirSync(join(root, 'a', 'b', 'dir.json'));
    writeFileSync(join(root, 'big'), 'x'.repeat(2000));
    symlinkSync(outside, join(root, 'a', 'evil'));
    await both(root, 'a/b/state.json');
    const before = fds();
    for (const rel of ['a/b/state.json', 'a/b/fifo', 'a/b/dir.json', 'big', 'a/evil/secret']) await both(root, rel);
    await both('/proc/self', 'cmdline', 4096);
    expect(fds()).toEqual(before);
  });

  it('refuses a device in the file’s place', async () => {
    await expect(both('/dev', 'null')).resolves.toEqual({ kind: 'refused', reason: 'a device' });
  });

  it('reads a file whose size the kernel does not know beforehand (procfs says 0), past its first buffer', async () => {
    // /proc/self/cmdline is this process's argv, the same for every read; stat gives it size 0.
    const truth = readFileSync('/proc/self/cmdline', 'utf8');
    expect(truth.length).toBeGreaterThan(4);
    const signature = statSignature('/proc/self/cmdline');
    await expect(both('/proc/self', 'cmdline', 4096)).resolves.toEqual({ kind: 'text', text: truth, signature });
    await expect(both('/proc/self', 'cmdline', truth.length)).resolves.toEqual({ kind: 'text', text: truth, signature });
    await expect(both('/proc/self', 'cmdline', truth.length - 1)).resolves.toEqual({ kind: 'refused', reason: `larger than ${truth.length - 1} bytes` });
  });

  it('reads under the root folder /', async () => {
    await expect(both('/', `${root.slice(1)}/a/b/state.json`)).resolves.toEqual({ kind: 'text', text: '{"pid":42}', signature: statSignature(join(root, 'a', 'b', 'state.json')) });
  });

  it('says why an open that fails for another reason is refused', async () => {
    await expect(both(root, 'n'.repeat(300))).resolves.toEqual({ kind: 'refused', reason: 'unreadable (ENAMETOOLONG)' });
  });

  it('refuses, given the root as resolved earlier, a file once the root link points elsewhere', () => {
    const link = join(base, 'current');
    symlinkSync(root, link);
    const resolved = realpathSync(link);
    expect(readStateFileSync(link, 'a/b/state.json', 1024, resolved)).toEqual({ kind: 'text', text: '{"pid":42}', signature: statSignature(join(root, 'a', 'b', 'state.json')) });
    mkdirSync(join(outside, 'a', 'b'), { recursive: true });
    writeFileSync(join(outside, 'a', 'b', 'state.json'), '{"pid":1}');
    symlinkSync(outside, join(base, 'next'));
    renameSync(join(base, 'next'), link);
    expect(readStateFileSync(link, 'a/b/state.json', 1024, resolved)).toEqual({
      kind: 'refused',
      reason: `reached through a symbolic link (it is ${join(outside, 'a', 'b', 'state.json')})`,
    });
  });
});
