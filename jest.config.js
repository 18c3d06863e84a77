/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {
    '^.+\\.ts$': ['ts-jest', { tsconfig: 'tsconfig.test.json' }],
  },
  // Properties run with a fixed seed unless RQCAST_FC_SEED says otherwise (test/support/fast-check.ts).
  moduleNameMapper: { '^fast-check$': '<rootDir>/test/support/fast-check.ts' },
  testTimeout: 120000,
};
