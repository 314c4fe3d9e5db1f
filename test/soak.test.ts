/**
 * The CI version of `npm run soak`: 20 seconds of steady load with one service hanging and one crashing. The script
 * itself judges the run (no unexpected answer, nothing growing past its generous bound, the server closing cleanly);
 * this test checks that it ran, sampled and passed.
 */
import { describe, expect, it } from "@effect/vitest"
import { runScript } from "./support.js"

describe("npm run soak -- --seconds=20", () => {
  it("answers every request with a 200 in partial mode and grows nothing without bound", async () => {
    const { code, last, stderr, stdout } = await runScript("scripts/soak.ts", ["--seconds=20", "--rate=20"])
    expect(last, `${stdout}\n${stderr}`).toMatch(/^soak: \{/)
    const result = JSON.parse(last.slice("soak: ".length)) as {
      ok: boolean
      problems: ReadonlyArray<string>
      statuses: Record<string, number>
      sent: number
      samples: ReadonlyArray<unknown>
      growth: ReadonlyArray<{ name: string; ok: boolean }>
    }
    expect(result.problems).toEqual([])
    expect(result.ok).toBe(true)
    expect(code).toBe(0)
    expect(result.samples.length).toBeGreaterThanOrEqual(9)
    expect(result.growth.map((figure) => figure.name)).toEqual(["rssMb", "heapMb", "fds", "sockets"])
    expect(Object.keys(result.statuses)).toEqual(["200"])
    expect(result.statuses["200"]).toBeGreaterThan(100)
  }, 120_000)
})
