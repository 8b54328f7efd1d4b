import { configDefaults, defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // `*.slow.test.ts` (real agents through every fault; the SDK packed into a fresh app) run
    // with `npm run test:agents` and `npm run test:package`.
    exclude: process.env.TURNQUEUE_SLOW_TESTS ? configDefaults.exclude : [...configDefaults.exclude, "test/**/*.slow.test.ts"],
    // Limits against hangs, not measurements: the CI check (two cores, every suite) saw
    // PGlite start-ups alone take over a minute while other workers ran crash tests.
    testTimeout: 120_000,
    hookTimeout: 240_000,
    // Integration suites each start real servers and databases; two cores are all we have.
    maxWorkers: 2,
    globalSetup: ["test/support/global-setup.ts"],
    setupFiles: ["test/support/heap-watch.ts"],
  },
});
