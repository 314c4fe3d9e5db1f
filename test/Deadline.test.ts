import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Option } from "effect"
import { TestClock } from "effect/testing"
import { Deadline, FanOut } from "../src/index.js"

const millisLeft = Effect.map(Deadline.remaining, Option.map(Duration.toMillis))

describe("Deadline.remaining", () => {
  it.effect("is none outside any fan-out with a deadline", () =>
    Effect.gen(function*() {
      expect(yield* millisLeft).toEqual(Option.none())
      const [inside] = yield* FanOut.all([millisLeft])
      expect(inside).toEqual(Option.none())
    }))

  it.effect("is the time left before the fan-out's deadline, decreasing as the clock advances", () =>
    Effect.gen(function*() {
      const seen: Array<Option.Option<number>> = []
      const latch = yield* Deferred.make<void>()
      const task = Effect.gen(function*() {
        seen.push(yield* millisLeft)
        yield* Deferred.await(latch)
        seen.push(yield* millisLeft)
        return "done"
      })
      const fiber = yield* Effect.forkChild(FanOut.settle([task], { deadline: "1 second" }))
      yield* Effect.yieldNow
      yield* TestClock.adjust("300 millis")
      yield* Deferred.succeed(latch, undefined)
      const [outcome] = yield* Fiber.join(fiber)
      expect(outcome._tag).toBe("Success")
      expect(seen).toEqual([Option.some(1000), Option.some(700)])
    }))

  it.effect("a nested fan-out runs under the smaller of its own deadline and the enclosing one", () =>
    Effect.gen(function*() {
      const inner = (deadline: Duration.Input) =>
        FanOut.all([millisLeft], { deadline }).pipe(Effect.map(([left]) => left))
      const [looser, tighter] = yield* FanOut.all([inner("5 seconds"), inner("200 millis")], { deadline: "1 second" })
      expect(looser).toEqual(Option.some(1000))
      expect(tighter).toEqual(Option.some(200))
    }))

  it.effect("a nested fan-out without a deadline leaves its tasks the enclosing one", () =>
    Effect.gen(function*() {
      const [[left]] = yield* FanOut.all([FanOut.all([millisLeft])], { deadline: "1 second" })
      expect(left).toEqual(Option.some(1000))
    }))

  it.effect("a nested fan-out with a longer deadline ends at the enclosing deadline", () =>
    Effect.gen(function*() {
      // The inner deadline (10 s) is clamped to the 1 s left of the outer one: nothing runs past 1400 ms.
      const inner = FanOut.settle({ fast: Effect.succeed(1), slow: Effect.never }, { deadline: "10 seconds" })
      const fiber = yield* Effect.forkChild(
        FanOut.settle({ inner: Effect.delay(inner, "400 millis") }, { deadline: "1400 millis" })
      )
      yield* Effect.yieldNow
      yield* TestClock.adjust("400 millis")
      yield* TestClock.adjust("999 millis")
      expect(fiber.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust("1 millis")
      const { inner: outer } = yield* Fiber.join(fiber)
      expect(outer).toMatchObject({ _tag: "TimedOut", reason: "Deadline", durationMillis: 1400 })
    }))
})

describe("a task's timeout under an enclosing deadline", () => {
  it.effect("a nested fan-out's task timeout longer than the enclosing deadline ends at the deadline", () =>
    Effect.gen(function*() {
      const inner = FanOut.settle([Effect.never], { timeout: "10 seconds" })
      const fiber = yield* Effect.forkChild(FanOut.settle({ inner }, { deadline: "500 millis" }))
      yield* Effect.yieldNow
      yield* TestClock.adjust("499 millis")
      expect(fiber.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust("1 millis")
      const { inner: outcome } = yield* Fiber.join(fiber)
      expect(outcome).toMatchObject({ _tag: "TimedOut", reason: "Deadline", durationMillis: 500 })
    }))
})
