/**
 * CI cannot be talked into skipping: the CI rule of describeWith and of the
 * summary reporter agree, and a real Jest run over a file with a skipped
 * test exits non-zero in CI and zero outside it (the exit status `npm test`
 * and .ci/run pass on).
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { isCI } from './support/components.js';

// eslint-disable-next-line @typescript-eslint/no-require-imports
const reporter = require('./support/summary-reporter.js') as { isCI(env: NodeJS.ProcessEnv): boolean };

const ROOT = resolve(__dirname, '..');
const JEST = join(ROOT, 'node_modules', 'jest', 'bin', 'jest.js');
const REPORTER = resolve(__dirname, 'support', 'summary-reporter.js');

describe('the CI rule', () => {
  it.each<[string | undefined, boolean]>([
    [undefined, false],
    ['', false],
    ['false', false],
    ['FALSE', false],
    ['0', false],
    ['true', true],
    ['1', true],
    ['yes', true],
    ['True', true],
  ])('CI=%p is CI: %p, for describeWith and for the summary reporter alike', (value, expected) => {
    const env: NodeJS.ProcessEnv = value === undefined ? {} : { CI: value };
    expect([isCI(env), reporter.isCI(env)]).toEqual([expected, expected]);
  });
});

describe('a Jest run with a skipped test', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'croot-ci-gates-'));
    writeFileSync(join(dir, 'one.test.js'), "it('runs', () => {});\nit.skip('is skipped', () => {});\nit.todo('is a todo');\n");
    writeFileSync(join(dir, 'jest.config.js'), `module.exports = { testEnvironment: 'node', reporters: ['default', ${JSON.stringify(REPORTER)}] };\n`);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  function jest(env: NodeJS.ProcessEnv, ...args: string[]): { status: number | null; out: string } {
    const { CI: _ci, ...rest } = process.env;
    const r = spawnSync(process.execPath, [JEST, '--rootDir', dir, '--config', join(dir, 'jest.config.js'), ...args], {
      cwd: dir,
      env: { ...rest, ...env },
      encoding: 'utf8',
      timeout: 120000,
    });
    return { status: r.status, out: `${r.stdout}${r.stderr}` };
  }

  it('fails in CI, naming the skipped and the todo test', () => {
    const r = jest({ CI: 'true' });
    expect(r.status).toBe(1);
    expect(r.out).toContain('tests: 1 passed, 0 failed, 2 skipped');
    expect(r.out).toMatch(/one\.test\.js: is skipped \((pending|skipped)\)/);
    expect(r.out).toMatch(/one\.test\.js: is a todo \(todo\)/);
  });

  it('fails for an inherited CI=1 too', () => {
    expect(jest({ CI: '1' }).status).toBe(1);
  });

  it('passes outside CI (CI=false)', () => {
    const r = jest({ CI: 'false' });
    expect(r.status).toBe(0);
    expect(r.out).toContain('tests: 1 passed, 0 failed, 2 skipped');
  });

  it('passes in CI when the run is narrowed with -t, which skips by design', () => {
    expect(jest({ CI: 'true' }, '-t', 'runs').status).toBe(0);
  });
});
