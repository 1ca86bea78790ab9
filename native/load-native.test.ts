import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { CrootError } from '../core/errors/croot-error.js';
import { crootNativeFunctions } from './croot-native.js';
import { findPackageRoot, loadNative, loadNativeUncached, nativeCandidates } from './load-native.js';

describe('loadNativeUncached', () => {
  let dir: string;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'croot-t-'));
  });
  afterEach(() => {
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('lists every path it tried and why each failed', () => {
    const bogus = path.join(dir, 'bogus.node');
    fs.writeFileSync(bogus, 'not an ELF file');
    let err: unknown;
    try {
      loadNativeUncached({ env: { CROOT_NATIVE_PATH: bogus }, packageRoot: dir });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(CrootError);
    const e = err as CrootError;
    expect(e.code).toBe('ERR_NATIVE_LOAD');
    const release = path.join(dir, 'native', 'build', 'Release', 'croot_native.node');
    const debug = path.join(dir, 'native', 'build', 'Debug', 'croot_native.node');
    expect(e.message).toContain(`${bogus}: `);
    expect(e.message).toMatch(/invalid ELF header|too short/);
    expect(e.message).toContain(`${release}: no such file`);
    expect(e.message).toContain(`${debug}: no such file`);
    expect((e.details.tried as { path: string }[]).map((t) => t.path)).toEqual([bogus, release, debug]);
  });

  it('tries CROOT_NATIVE_PATH first and falls back to the build directory', () => {
    const candidates = nativeCandidates({ env: { CROOT_NATIVE_PATH: path.join(dir, 'missing.node') } });
    expect(candidates[0]).toBe(path.join(dir, 'missing.node'));
    const native = loadNativeUncached({ env: { CROOT_NATIVE_PATH: path.join(dir, 'missing.node') } });
    for (const name of crootNativeFunctions) expect(typeof native[name]).toBe('function');
  });

  it('rejects a loadable module that lacks the functions', () => {
    const wrong = path.join(dir, 'wrong.js');
    fs.writeFileSync(wrong, 'module.exports = { peerCredentials() {} };');
    expect(() => loadNativeUncached({ env: { CROOT_NATIVE_PATH: wrong }, packageRoot: dir })).toThrow(/lacks readHostname/);
  });
});

describe('findPackageRoot', () => {
  it('finds the directory holding native/binding.gyp from the source tree', () => {
    const root = findPackageRoot();
    expect(fs.existsSync(path.join(root, 'native', 'binding.gyp'))).toBe(true);
    expect(JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')).name).toBe('croot');
  });

  it('finds it from a dist/native-like directory too', () => {
    const root = findPackageRoot();
    expect(findPackageRoot(path.join(root, 'dist', 'native'))).toBe(root);
  });
});

/** What the kernel says fd `fd` of this process is (`pipe:[N]`), or its errno code once it is closed. */
function fdTarget(fd: number): string {
  try {
    return fs.readlinkSync(`/proc/self/fd/${fd}`);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
}

describe('loadNative', () => {
  let dir: string;
  const saved = process.env.CROOT_NATIVE_PATH;
  beforeEach(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'croot-t-'));
  });
  afterEach(() => {
    if (saved === undefined) delete process.env.CROOT_NATIVE_PATH;
    else process.env.CROOT_NATIVE_PATH = saved;
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('keeps the addon it loaded first, even once CROOT_NATIVE_PATH names a working copy', () => {
    delete process.env.CROOT_NATIVE_PATH;
    const first = loadNative();
    const copy = path.join(dir, 'croot_native.node');
    fs.copyFileSync(nativeCandidates({ env: {} })[0] as string, copy);
    process.env.CROOT_NATIVE_PATH = copy;
    // The uncached loader takes the copy: a second, separately dlopen'ed module...
    const second = loadNativeUncached();
    expect(second).not.toBe(first);
    // ...that works: the kernel sees the pipe it makes, and sees it closed after.
    const [r, w] = second.pipe();
    expect([fdTarget(r), fdTarget(w)]).toEqual([expect.stringMatching(/^pipe:\[\d+\]$/), fdTarget(r)]);
    second.close(r);
    second.close(w);
    expect([fdTarget(r), fdTarget(w)]).toEqual(['ENOENT', 'ENOENT']);
    // The cached one does not: loadNative still answers the first.
    expect(loadNative()).toBe(first);
  });
});
