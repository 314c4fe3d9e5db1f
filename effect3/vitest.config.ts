import { defineConfig } from "vitest/config"

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    // The end-to-end suites start real loopback servers; keep the default timeout generous for a loaded CI machine.
    testTimeout: 30_000,
    hookTimeout: 30_000,
    // CI (`.ci/run`) asks for a JSON report beside the console's, to count every line's tests in one total.
    ...(process.env.FANOUT_TEST_REPORT ?
      {
        reporters: ["default", "json"],
        outputFile: { json: ".vitest-results.json" }
      } :
      {})
  }
})
