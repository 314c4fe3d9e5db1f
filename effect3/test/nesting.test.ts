/**
 * Fan-outs nested in fan-outs: every combinator answers the depth of its nest, whatever the depth — 10,000 deep is
 * well past where one stack would run out, but a fan-out started that deep in a nest starts its fibers from the
 * scheduler, on a fresh stack, and its fibers keep a bounded part of the fiber refs' history (without which a
 * `stream` nest costs the square of its depth). Never a stack overflow, never a success with a wrong value in a slot,
 * never a hang. The deep nests run in a process of their own (`scripts/nesting.ts --every`), with a fresh stack and
 * heap and a time limit that a hang would run into; every combinator's nest runs there in turn.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, FiberRefs } from "effect"
import { execFile } from "node:child_process"
import { fileURLToPath } from "node:url"
import { levels, nest } from "../scripts/nesting.js"

/** The longest history of any fiber ref (one entry per fiber that set it) in the fiber that runs it. */
const longestHistory = Effect.withFiberRuntime<number>((fiber) => {
  let longest = 0
  for (const stack of (fiber.getFiberRefs() as FiberRefs.FiberRefs).locals.values()) {
    longest = Math.max(longest, stack.length)
  }
  return Effect.succeed(longest)
})

const script = fileURLToPath(new URL("../scripts/nesting.ts", import.meta.url))

const everyNestInAProcess = (depth: number) =>
  new Promise<{ readonly code: number | string | null; readonly lines: ReadonlyArray<unknown> }>((resolve) => {
    execFile(
      process.execPath,
      ["--import", "tsx", script, "--every", String(depth)],
      { timeout: 240_000, maxBuffer: 1 << 20 },
      (error, stdout) =>
        resolve({
          code: error === null ? 0 : error.signal ?? error.code ?? null,
          lines: stdout.split("\n").filter((line) => line !== "").map((line) => JSON.parse(line))
        })
    )
  })

describe("nested fan-outs", () => {
  for (const [name, level] of Object.entries(levels)) {
    it.effect(`${name} answers the depth of its nest`, () =>
      Effect.gen(function*() {
        for (const depth of [1, 10, 100, 500, 3_000]) expect(yield* nest(level, depth)).toBe(depth)
      }))
  }

  for (const [name, level] of Object.entries(levels)) {
    it.effect(`${name}: a task 1,000 levels deep sees fiber refs with a bounded history`, () =>
      Effect.gen(function*() {
        // The innermost task: instead of 0, it answers the longest history it sees, plus the depth above it.
        let deep: Effect.Effect<number, unknown> = longestHistory
        for (let i = 0; i < 1_000; i++) deep = level(deep)
        const longest = (yield* deep) - 1_000
        // 64 at most in a fan-out's fibers, plus what the levels between two fan-outs set (a stream's scope).
        expect(longest).toBeGreaterThan(0)
        expect(longest).toBeLessThan(100)
      }))
  }

  it("every combinator 10,000 deep answers 10,000, in a process with a fresh stack", async () => {
    expect(await everyNestInAProcess(10_000)).toEqual({
      code: 0,
      lines: Object.keys(levels).map((combinator) => ({ combinator, value: 10_000 }))
    })
  }, 300_000)
})
