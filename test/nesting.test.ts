/**
 * Fan-outs nested in fan-outs: every combinator answers the depth of a nest that fits in the stack. (What happens
 * past the stack's end is measured by `scripts/nesting.ts`, in processes of their own.)
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { levels, nest } from "../scripts/nesting.js"

describe("nested fan-outs", () => {
  for (const [name, level] of Object.entries(levels)) {
    it.effect(`${name} answers the depth of a nest that fits in the stack`, () =>
      Effect.gen(function*() {
        for (const depth of [1, 10, 100, 500]) expect(yield* nest(level, depth)).toBe(depth)
      }))
  }
})
