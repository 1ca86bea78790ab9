/** The folders say the architecture; this keeps them honest. */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative, resolve, dirname } from 'node:path';

const root = resolve(__dirname, '..');

function sources(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(dir)) {
    const path = join(dir, name);
    if (name === 'node_modules' || name === 'build' || name === '__golden__') continue;
    if (statSync(path).isDirectory()) out.push(...sources(path));
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) out.push(path);
  }
  return out;
}

function importsOf(file: string): string[] {
  const text = readFileSync(file, 'utf8');
  const found: string[] = [];
  const re = /(?:from\s+|import\s*\(\s*|require\s*\(\s*|import\s+)['"](\.{1,2}\/[^'"]+)['"]/g;
  for (let m = re.exec(text); m !== null; m = re.exec(text)) {
    found.push(relative(root, resolve(dirname(file), m[1] as string)));
  }
  return found;
}

describe('architecture', () => {
  it('core/ imports neither engines/ nor native/', () => {
    const offenders = sources(join(root, 'core')).flatMap((f) =>
      importsOf(f)
        .filter((target) => target.startsWith('engines/') || target.startsWith('native/') || target === 'engines' || target === 'native')
        .map((target) => `${relative(root, f)} -> ${target}`),
    );
    expect(offenders).toEqual([]);
  });

  it('engines never import each other', () => {
    const offenders: string[] = [];
    for (const engine of readdirSync(join(root, 'engines'))) {
      for (const f of sources(join(root, 'engines', engine))) {
        for (const target of importsOf(f)) {
          if (target.startsWith('engines/') && !target.startsWith(`engines/${engine}/`)) offenders.push(`${relative(root, f)} -> ${target}`);
          if (target.startsWith('native/')) offenders.push(`${relative(root, f)} -> ${target}`);
        }
      }
    }
    expect(offenders).toEqual([]);
  });

  it('every engine folder has its <id>-engine-module.ts and an index', () => {
    for (const engine of readdirSync(join(root, 'engines'))) {
      expect(readdirSync(join(root, 'engines', engine))).toEqual(expect.arrayContaining([`${engine}-engine-module.ts`, 'index.ts']));
    }
  });
});
