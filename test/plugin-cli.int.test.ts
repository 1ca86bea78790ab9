/** A third-party engine package, loaded by the built `croot` command through CROOT_PLUGINS. */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';

const CROOT = resolve(__dirname, '..', 'dist', 'bin', 'croot.js');
const PLUGIN = resolve(__dirname, 'fixtures', 'plugin-example');

function croot(args: string[], env: NodeJS.ProcessEnv): Promise<{ pid: number; code: number | null; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [CROOT, ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => done({ pid: child.pid ?? -1, code, stdout, stderr }));
  });
}

describe('croot with a plugin engine', () => {
  beforeAll(() => {
    if (!existsSync(CROOT)) throw new Error(`${CROOT} is missing: run npm run build (npm test does)`);
  });

  it('resolves a container that only the plugin knows', async () => {
    // The example engine's one container is the process that loaded it: croot itself.
    const env: NodeJS.ProcessEnv = { ...process.env, CROOT_PLUGINS: PLUGIN };
    const r = await croot(['pid', 'example:self'], env);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(Number(r.stdout.trim())).toBe(r.pid);
  });

  it('says why a plugin cannot be loaded, and still answers with the other engines', async () => {
    const r = await croot(['engines'], { ...process.env, CROOT_PLUGINS: 'croot-engine-that-does-not-exist' });
    expect(r.stderr).toContain('croot-engine-that-does-not-exist');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^engine static /m);
  });
});
