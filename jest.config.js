/** @type {import('jest').Config} */
const common = {
  preset: 'ts-jest',
  testEnvironment: 'node',
  setupFiles: ['reflect-metadata'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.json' }] },
};
module.exports = {
  testTimeout: 60000,
  reporters: ['default', '<rootDir>/test/support/summary-reporter.js'],
  projects: [
    { ...common, displayName: 'unit', testMatch: ['<rootDir>/{core,engines,native,pmda,bin}/**/*.test.ts'], testPathIgnorePatterns: ['\\.int\\.test\\.ts$', '/dist/'] },
    { ...common, displayName: 'integration', testMatch: ['<rootDir>/test/**/*.test.ts', '<rootDir>/{core,engines,native,pmda}/**/*.int.test.ts'] },
  ],
};
