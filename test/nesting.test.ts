/**
 * Fan-outs nested in fan-outs: every combinator answers the depth of its nest, whatever the depth — 10,000 deep is
 * well past where one stack would run out (Effect 4's own `Effect.all` runs out at about 1,500 on Node 24's default
 * stack), but a fan-out started that deep in a nest starts its task from the scheduler, on a fresh stack. Never a
 * stack overflow, never a success with a wrong value in a slot, never a hang. Each deep nest runs in a process of its
 * own (`scripts/nesting.ts --one`), with a fresh stack and heap and a time limit that a hang would run into.
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
      it.effect("answers the depth of its nest", () =>
        Effect.gen(function*() {
          for (const depth of [1, 10, 100, 500, 3_000]) expect(yield* nest(level, depth)).toBe(depth)
        }))

      it("10,000 deep answers 10,000, in a process with a fresh stack", async () => {
        expect(await nestInAProcess(name, 10_000)).toEqual({
          code: 0,
          stdout: `${JSON.stringify({ value: 10_000 })}\n`
        })
      }, 90_000)
    })
  }
})
