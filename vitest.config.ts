import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The end-to-end suites start real loopback servers; keep the default timeout generous for a loaded CI machine.
    testTimeout: 30_000,
    hookTimeout: 30_000
  }
})
