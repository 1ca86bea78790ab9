/**
 * croot as npm hands it out: `npm pack` of this checkout (and of example
 * packages), installed with the real npm into fresh folders. Dependencies
 * come from npm's cache when it has them (`--prefer-offline`), else from the
 * registry.
 */
import { execFile } from 'node:child_process';
import { resolve } from 'node:path';

export const REPO = resolve(__dirname, '..', '..');

export interface NpmResult {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `command args` in `cwd` to completion (no shell), with a generous time limit. */
export function runIn(cwd: string, command: string, args: readonly string[], options: { env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<NpmResult> {
  return new Promise((done) => {
    execFile(
      command,
      [...args],
      { cwd, encoding: 'utf8', timeout: options.timeoutMs ?? 300000, maxBuffer: 16 * 1024 * 1024, env: options.env ?? process.env },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? (err as { code: number }).code : null;
        done({ code, stdout, stderr });
      },
    );
  });
}

/** `npm pack` of `folder` into `dest`; the tarball's path. Scripts are not run: croot's dist/ must be built. */
export async function npmPack(folder: string, dest: string): Promise<string> {
  const r = await runIn(folder, 'npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', dest]);
  if (r.code !== 0) throw new Error(`npm pack in ${folder} failed (${r.code}): ${r.stderr}`);
  const [info] = JSON.parse(r.stdout) as { filename: string }[];
  if (info === undefined) throw new Error(`npm pack in ${folder} printed no file: ${r.stdout}`);
  return resolve(dest, info.filename);
}

/** The files `npm pack` would put in croot's tarball. */
export async function packedFiles(): Promise<string[]> {
  const r = await runIn(REPO, 'npm', ['pack', '--dry-run', '--ignore-scripts', '--json']);
  if (r.code !== 0) throw new Error(`npm pack --dry-run failed (${r.code}): ${r.stderr}`);
  const [info] = JSON.parse(r.stdout) as { files: { path: string }[] }[];
  return (info?.files ?? []).map((f) => f.path);
}

/** `npm install ARGS` in `cwd` with the flags every test uses. */
export function npmInstall(cwd: string, args: readonly string[], env?: NodeJS.ProcessEnv): Promise<NpmResult> {
  return runIn(cwd, 'npm', ['install', '--prefer-offline', '--no-audit', '--no-fund', '--no-update-notifier', ...args], env === undefined ? {} : { env });
}
