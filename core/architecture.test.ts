/**
 * The folders say the architecture: .dependency-cruiser.cjs declares its
 * rules (core sees engines and the native module only through tokens,
 * engines stand alone, pmda/ and native/ stand on core/, no import cycles);
 * this runs them over the whole source, and keeps the picture of the parts
 * in docs/architecture.md what the code's imports give.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';

const root = resolve(__dirname, '..');
const SOURCES = ['core', 'engines', 'native', 'pmda', 'bin', 'examples', 'bench', 'battery', 'test'];

interface Violation {
  readonly rule: { readonly name: string };
  readonly from: string;
  readonly to: string;
  readonly cycle?: readonly { readonly name: string }[];
}

interface CruiseResult {
  readonly summary: { readonly violations: readonly Violation[]; readonly totalCruised: number };
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const config = require('../.dependency-cruiser.cjs') as { forbidden: readonly { name: string }[] };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const archGraph = require('../scripts/arch-graph.js') as { graph(): string; withPicture(doc: string, picture: string): string; DOC: string };

function cruise(): CruiseResult {
  const cli = join(root, 'node_modules', 'dependency-cruiser', 'bin', 'dependency-cruise.mjs');
  const run = spawnSync(process.execPath, [cli, '--config', '.dependency-cruiser.cjs', '--output-type', 'json', ...SOURCES], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  if (run.stdout.length === 0) throw new Error(`dependency-cruiser gave nothing: ${run.stderr}`);
  return JSON.parse(run.stdout) as CruiseResult;
}

function describeViolation(v: Violation): string {
  return v.cycle !== undefined ? `${v.from} -> ${v.cycle.map((c) => c.name).join(' -> ')}` : `${v.from} -> ${v.to}`;
}

describe('architecture', () => {
  let result: CruiseResult;
  beforeAll(() => {
    result = cruise();
  });

  it('cruises every source folder', () => {
    const files = SOURCES.flatMap((dir) => readdirSync(join(root, dir), { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.ts') && !f.endsWith('.d.ts')));
    expect(result.summary.totalCruised).toBeGreaterThanOrEqual(files.length);
  });

  it.each(config.forbidden.map((rule) => rule.name))('keeps the rule %s', (name) => {
    expect(result.summary.violations.filter((v) => v.rule.name === name).map(describeViolation)).toEqual([]);
  });

  it('gives every engine folder its <id>-engine-module.ts and an index', () => {
    for (const engine of readdirSync(join(root, 'engines'))) {
      expect(readdirSync(join(root, 'engines', engine))).toEqual(expect.arrayContaining([`${engine}-engine-module.ts`, 'index.ts']));
    }
  });

  it("shows in docs/architecture.md the parts as the code's imports join them (npm run arch:graph redraws it)", () => {
    const doc = readFileSync(archGraph.DOC, 'utf8');
    expect(doc).toEqual(archGraph.withPicture(doc, archGraph.graph()));
  });
});
