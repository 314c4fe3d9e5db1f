/**
 * The CI version of `npm run attack`: `--short` (smaller bursts and floods, about 20 seconds), the API in a child
 * process of the script. The script judges each case against its bound; this test checks that every case ran, that
 * each one held, and the figures the bounds are about.
 */
import { describe, expect, it } from "@effect/vitest"
import type { Row } from "../../scripts/attack.js"
import { runScript } from "../support.js"

describe("npm run attack -- --short", () => {
  it("holds every bound", async () => {
    const { code, last, stderr, stdout } = await runScript("scripts/attack.ts", ["--short"])
    expect(last, `${stdout}\n${stderr}`).toMatch(/^attack: \{/)
    const { rows, short } = JSON.parse(last.slice("attack: ".length)) as { short: boolean; rows: ReadonlyArray<Row> }
    expect(short).toBe(true)
    expect(rows.map((row) => row.name)).toEqual([
      "pipelined-reset",
      "pipelined-burst",
      "idle-socket-flood",
      "huge-downstream-body",
      "oversized-query",
      "__proto__",
      "HEAD",
      "long-404",
      "malformed-deadline",
      "64KB-url",
      "100KB-headers",
      "malformed-http",
      "slowloris",
      "log-volume"
    ])
    expect(rows.filter((row) => row.broken.length > 0), stdout).toEqual([])
    expect(code, stdout).toBe(0)
    const byName = Object.fromEntries(rows.map((row) => [row.name, row]))
    // Every pipelined request answered, most of them refused at once, and the admitted ones by their deadline.
    const reset = byName["pipelined-reset"]!
    expect(Object.values(reset.statuses).reduce((a, b) => a + b, 0)).toBe(reset.requests)
    expect(reset.statuses["503"]).toBeGreaterThan(0)
    expect(reset.downstreamConnections).toBeLessThanOrEqual((reset.requests - reset.statuses["503"]!) * 72)
    expect(byName["pipelined-burst"]!.slowestMs).toBeLessThanOrEqual(2_500)
    // /health answered through the floods.
    for (const name of ["pipelined-reset", "pipelined-burst", "idle-socket-flood"]) {
      expect(byName[name]!.health.ok, name).toBeGreaterThan(0)
      expect(byName[name]!.health.failed, name).toBe(0)
    }
    expect(byName["idle-socket-flood"]!.peakFds).toBeLessThan(1_024)
    for (const name of ["oversized-query", "__proto__", "HEAD", "long-404", "malformed-deadline", "64KB-url"]) {
      expect(byName[name]!.downstreamRequests, name).toBe(0)
    }
    expect(byName["64KB-url"]!.statuses).toEqual({ "431": 1 })
    expect(byName["100KB-headers"]!.statuses).toEqual({ "431": 1 })
    expect(byName["malformed-http"]!.statuses).toEqual({ "400": 1 })
    expect(byName["slowloris"]!.statuses).toEqual({ "408": 1 })
  }, 120_000)
})
