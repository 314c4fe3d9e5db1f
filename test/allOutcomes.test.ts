/**
 * `FanOut.all` and `FanOut.forEach` with `outcomes: true`: fail fast as without it, and succeed with each task's
 * `Outcome.Success` (value, key, label, duration, attempts) in the tasks' shape.
 */
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import { Effect, Exit, Fiber, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { FanOut } from "../src/index.js"
import type { Outcome } from "../src/index.js"

describe("FanOut.all with outcomes", () => {
  it.effect("succeeds with one Success per task, in a struct's shape, with durations", () =>
    Effect.gen(function*() {
      const fiber = yield* FanOut.all({
        fast: Effect.succeed(1),
        slow: Effect.sleep("30 millis").pipe(Effect.as("s"))
      }, { outcomes: true }).pipe(Effect.forkChild)
      yield* TestClock.adjust("30 millis")
      const result = yield* Fiber.join(fiber)
      expectTypeOf(result).toEqualTypeOf<{ fast: Outcome.Success<number>; slow: Outcome.Success<string> }>()
      expect(result.fast).toMatchObject({ _tag: "Success", value: 1, key: "fast", label: "fast", attempts: 1 })
      expect(result.slow).toMatchObject({ _tag: "Success", value: "s", key: "slow", durationMillis: 30, attempts: 1 })
    }))

  it.effect("keeps a tuple a tuple and counts retried attempts", () =>
    Effect.gen(function*() {
      let calls = 0
      const flaky = Effect.suspend(() => ++calls < 3 ? Effect.fail("busy" as const) : Effect.succeed(calls))
      const result = yield* FanOut.all([Effect.succeed("a"), flaky], { outcomes: true, retry: Schedule.recurs(3) })
      expectTypeOf(result).toEqualTypeOf<[Outcome.Success<string>, Outcome.Success<number>]>()
      expect(result.map((o) => [o.key, o.value, o.attempts])).toStrictEqual([[0, "a", 1], [1, 3, 3]])
    }))

  it.effect("fails fast as without the option", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(FanOut.all([Effect.never, Effect.fail("down" as const)], { outcomes: true }))
      expect(Exit.isFailure(exit) && exit.cause.reasons.map((r) => r._tag === "Fail" && r.error)).toStrictEqual([
        "down"
      ])
    }))

  it.effect("forEach gives an array of Successes with the items' labels", () =>
    Effect.gen(function*() {
      const result = yield* FanOut.forEach(["eu", "us"], (region) => Effect.succeed(region.length), {
        outcomes: true,
        label: (region) => `pricing-${region}`
      })
      expectTypeOf(result).toEqualTypeOf<Array<Outcome.Success<number>>>()
      expect(result.map((o) => [o.label, o.value])).toStrictEqual([["pricing-eu", 2], ["pricing-us", 2]])
    }))

  it.effect("refuses outcomes with discard, before anything runs", () =>
    Effect.gen(function*() {
      let ran = false
      const exit = yield* Effect.exit(
        FanOut.all([Effect.sync(() => ran = true)], { outcomes: true, discard: true })
      )
      expect(ran).toBe(false)
      expect(Exit.isFailure(exit) && exit.cause.reasons[0]?._tag === "Die" && exit.cause.reasons[0].defect)
        .toMatchObject({ _tag: "InvalidOptionError", option: "outcomes" })
    }))
})
