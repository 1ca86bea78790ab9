/** The command line's documentation against the code: exit statuses, environment variables. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { EXIT_CODE_TEXT, ExitCode } from './exit-codes.js';

const root = resolve(__dirname, '..');
const read = (path: string): string => readFileSync(join(root, path), 'utf8');

function sources(dir: string): string[] {
  return readdirSync(join(root, dir)).flatMap((name) => {
    const path = join(dir, name);
    if (name === 'build' || name === 'node_modules') return [];
    if (statSync(join(root, path)).isDirectory()) return sources(path);
    return /\.(ts|js)$/.test(name) && !name.endsWith('.test.ts') && !name.endsWith('.d.ts') ? [path] : [];
  });
}

describe('exit statuses', () => {
  const codes = Object.values(ExitCode).sort((a, b) => a - b);

  it('are each described once for --help', () => {
    expect(EXIT_CODE_TEXT.map(([code]) => code)).toEqual(codes);
  });

  it('are the ones docs/cli.md lists', () => {
    const section = read('docs/cli.md').split('## Exit statuses')[1]?.split('\n## ')[0] ?? '';
    const listed = [...section.matchAll(/^\| (\d+) \|/gm)].map((m) => Number(m[1]));
    expect(listed).toEqual(codes);
  });

  it('are the ones croot(1) lists', () => {
    const section = read('man/croot.1').split('.SH EXIT STATUS')[1]?.split('.SH ')[0] ?? '';
    const listed = [...section.matchAll(/^\.B (\d+)$/gm)].map((m) => Number(m[1]));
    expect(listed).toEqual(codes);
  });
});

describe('docs/configuration.md', () => {
  it('lists every CROOT_*, PCP_* and DOCKER_* variable the code reads', () => {
    const names = new Set<string>();
    for (const file of [...sources('core'), ...sources('engines'), ...sources('native'), ...sources('bin')]) {
      for (const m of readFileSync(join(root, file), 'utf8').matchAll(/env(?:\?)?(?:\.|\[['"])((?:CROOT|PCP|DOCKER)_[A-Z0-9_]+)/g)) names.add(m[1] as string);
    }
    expect(names.size).toBeGreaterThan(15);
    const doc = read('docs/configuration.md');
    expect([...names].filter((v) => !doc.includes(`\`${v}\``)).sort()).toEqual([]);
  });
});
