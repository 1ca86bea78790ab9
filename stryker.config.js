/**
 * Stryker over core/ or engines/ with the Jest unit project
 * (jest.stryker.config.js). Run it through `npm run mutate -- <folder>`
 * (scripts/mutate.js), which sets CROOT_MUTATE_FOLDER; each folder keeps its
 * own incremental file, reports/mutation/<folder>.incremental.json, so a
 * rerun tests only the mutants whose code or covering tests changed.
 * See docs/testing.md, "Mutation testing".
 */
const folder = process.env.CROOT_MUTATE_FOLDER ?? 'core';
if (!/^[a-z][a-z0-9-]*(\/[a-z0-9-]+)*$/.test(folder)) {
  throw new Error(`CROOT_MUTATE_FOLDER must be a folder under the checkout, got ${JSON.stringify(folder)}`);
}
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
    `${folder}/**/*.ts`,
    `!${folder}/**/*.test.ts`,
    `!${folder}/**/__golden__/**`,
    `!${folder}/**/*.d.ts`,
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
  reporters: ['clear-text', 'progress-append-only', 'html', 'json'],
  htmlReporter: { fileName: `reports/mutation/${slug}.html` },
  jsonReporter: { fileName: `reports/mutation/${slug}.json` },
  clearTextReporter: { allowColor: false, logTests: false, maxTestsToLog: 0 },
  ignorePatterns: ['/dist', '/reports', '/coverage'],
  tempDirName: '.stryker-tmp',
  cleanTempDir: true,
};
