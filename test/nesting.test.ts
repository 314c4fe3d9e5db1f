/**
 * Fan-outs nested in fan-outs: every combinator answers the depth of a nest that fits in the stack, and a nest
 * 10,000 deep — well past where the stack runs out (Effect 4's own `Effect.all` runs out at about 1,500 on Node 24's
 * default stack) — dies with the stack overflow, as a defect that reaches the caller: never a success with a wrong
 * value in a slot, never a hang. Each deep nest runs in a process of its own (`scripts/nesting.ts --one`), with a
 * fresh stack and heap and a time limit that a hang would run into.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { levels, nest } from "../scripts/nesting.js"

const script = fileURLToPath(new URL("../scripts/nesting.ts", import.meta.url))

const nestInAProcess = (combinator: string, depth: number) =>
  new Promise<{ readonly code: number | string | null; readonly stdout: string }>((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", script, "--one", combinator, String(depth)],
      { timeout: 60_000 },
      (error, stdout) => resolve({ code: error === null ? 0 : error.signal ?? error.code ?? null, stdout })
    )
  })

describe("nested fan-outs", () => {
  for (const [name, level] of Object.entries(levels)) {
    describe(name, () => {
      it.effect("answers the depth of a nest that fits in the stack", () =>
        Effect.gen(function*() {
          for (const depth of [1, 10, 100, 500]) expect(yield* nest(level, depth)).toBe(depth)
        }))

      it("10,000 deep dies with the stack overflow, promptly, never with a wrong value", async () => {
        expect(await nestInAProcess(name, 10_000)).toEqual({
          code: 0,
          stdout: `${JSON.stringify({ failure: "RangeError" })}\n`
        })
      }, 90_000)
    })
  }
})
