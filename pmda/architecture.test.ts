/** pmda/ is a library over core/: it never reaches into engines/, native/ or bin/. */
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(__dirname, '..');

describe('pmda/ architecture', () => {
  it('imports core/ and itself only (and node or npm packages)', () => {
    const offenders: string[] = [];
    for (const name of readdirSync(__dirname).filter((n) => n.endsWith('.ts') && !n.endsWith('.d.ts'))) {
      const file = join(__dirname, name);
      const re = /(?:from\s+|import\s*\(\s*|require\s*\(\s*|import\s+)['"](\.{1,2}\/[^'"]+)['"]/g;
      const text = readFileSync(file, 'utf8');
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        const target = relative(root, resolve(dirname(file), m[1] as string));
        const allowed = target.startsWith('core/') || target.startsWith('pmda/') || (name.endsWith('.test.ts') && target.startsWith('test/support/'));
        if (!allowed) offenders.push(`pmda/${name} -> ${target}`);
      }
    }
    expect(offenders).toEqual([]);
  });
});
