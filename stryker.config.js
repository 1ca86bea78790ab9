/**
 * Stryker over one part of core/ or engines/ with the Jest unit project
 * (jest.stryker.config.js). Run it through `npm run mutate` (scripts/mutate.js),
 * which runs one part at a time and sets CROOT_MUTATE_PART: a folder
 * (core/registry: every file below it) or a folder's own files (core/.:
 * core/*.ts only). Each part keeps its own incremental file,
 * reports/mutation/<part>.incremental.json, so a rerun tests only the
 * mutants whose code or covering tests changed, and an interrupted run
 * loses one part only. See docs/testing.md, "Mutation testing".
 */
const part = process.env.CROOT_MUTATE_PART ?? 'core/.';
if (!/^(core|engines)(\/[a-z0-9-]+)*(\/\.)?$/.test(part)) {
  throw new Error(`CROOT_MUTATE_PART must be core/... or engines/..., got ${JSON.stringify(part)}`);
}
const ownFilesOnly = part.endsWith('/.');
const folder = ownFilesOnly ? part.slice(0, -2) : part;
const files = ownFilesOnly ? `${folder}/*` : `${folder}/**/*`;
const slug = folder.replace(/\//g, '-');
const checker = process.env.CROOT_MUTATE_CHECKER === '1';

/** @type {import('@stryker-mutator/api/core').PartialStrykerOptions} */
module.exports = {
  packageManager: 'npm',
  testRunner: 'jest',
  jest: {
    projectType: 'custom',
    configFile: 'jest.stryker.config.js',
    enableFindRelatedTests: true,
  },
  mutate: [
    `${files}.ts`,
    `!${files}.test.ts`,
  ],
  coverageAnalysis: 'perTest',
  // Static mutants (module-level constants) are covered by every test that
  // loads the module, so each one re-runs most of the suite.
  ignoreStatic: true,
  incremental: true,
  incrementalFile: `reports/mutation/${slug}.incremental.json`,
  // Two CPUs shared with other work: never more than two test processes.
  concurrency: Number(process.env.CROOT_MUTATE_CONCURRENCY ?? 2),
  // Added to 1.5 × the covering tests' own time: a mutant that loops or never
  // settles a promise costs this much and a restarted test process.
  timeoutMS: 5000,
  checkers: checker ? ['typescript'] : [],
  tsconfigFile: 'tsconfig.json',
  typescriptChecker: { prioritizePerformanceOverAccuracy: true },
  reporters: ['clear-text', 'progress-append-only', 'html'],
  htmlReporter: { fileName: `reports/mutation/${slug}.html` },
  clearTextReporter: { allowColor: false, logTests: false, maxTestsToLog: 0 },
  ignorePatterns: ['/dist', '/reports', '/coverage', '/.stryker-tmp*'],
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};
