import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    // Integration suites each start real servers and databases; two cores are all we have.
    maxWorkers: 2,
    globalSetup: ["test/support/global-setup.ts"],
  },
});
