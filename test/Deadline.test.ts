import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Option, Ref, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { Deadline, FanOut, FanOutError } from "../src/index.js"

const millisLeft = Effect.map(Deadline.remaining, Option.map(Duration.toMillis))

/** A task that fails with "down" on every attempt, `started` counting its attempts. */
const makeFlaky = Effect.map(Ref.make(0), (started) => ({
  started,
  flaky: Effect.andThen(Ref.update(started, (n) => n + 1), Effect.fail("down"))
}))

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
      // The looser one adopts the enclosing deadline, ending 1 ms before it.
      expect(looser).toEqual(Option.some(999))
      expect(tighter).toEqual(Option.some(200))
    }))

  it.effect("a nested fan-out without a deadline leaves its tasks the enclosing one", () =>
    Effect.gen(function*() {
      const [[left]] = yield* FanOut.all([FanOut.all([millisLeft])], { deadline: "1 second" })
      expect(left).toEqual(Option.some(1000))
    }))

  it.effect("a nested fan-out with a longer deadline ends 1 ms before the enclosing one, its partial results kept", () =>
    Effect.gen(function*() {
      // The inner deadline (10 s) is clamped to the 1 s left of the outer one, less 1 ms: nothing runs past 1400 ms,
      // and the inner fan-out's partial results reach the outer one in time.
      const inner = FanOut.settle({ fast: Effect.succeed(1), slow: Effect.never }, { deadline: "10 seconds" })
      const fiber = yield* Effect.forkChild(
        FanOut.settle({ inner: Effect.delay(inner, "400 millis") }, { deadline: "1400 millis" })
      )
      yield* Effect.yieldNow
      yield* TestClock.adjust("400 millis")
      yield* TestClock.adjust("998 millis")
      expect(fiber.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust("1 millis")
      const { inner: outer } = yield* Fiber.join(fiber)
      expect(outer).toMatchObject({ _tag: "Success", durationMillis: 1399 })
      const { fast, slow } = (outer as { readonly value: { readonly fast: unknown; readonly slow: unknown } }).value
      expect(fast).toMatchObject({ _tag: "Success", value: 1 })
      expect(slow).toMatchObject({ _tag: "TimedOut", reason: "Deadline", durationMillis: 999 })
    }))
})

describe("a fail-fast fan-out's deadline error", () => {
  it.effect("names the deadline a nested fan-out adopted: the enclosing one, less 1 ms, not its own", () =>
    Effect.gen(function*() {
      const inner = Effect.flip(FanOut.all([Effect.never], { deadline: "10 seconds" }))
      const fiber = yield* Effect.forkChild(FanOut.all([inner], { deadline: "1 second" }))
      yield* Effect.yieldNow
      yield* TestClock.adjust("999 millis")
      const [error] = yield* Fiber.join(fiber)
      expect(error).toBeInstanceOf(FanOutError.FanOutTimeoutError)
      expect(error).toMatchObject({ reason: "Deadline", key: undefined, label: undefined })
      expect(Duration.toMillis(error.duration)).toBe(999)
      expect(error.message).toBe("fan-out deadline of 999ms passed")
    }))

  it.effect("names the fan-out's own deadline when no nearer one encloses it, nested or not", () =>
    Effect.gen(function*() {
      const timesOut = (deadline: Duration.Input) => Effect.flip(FanOut.all([Effect.never], { deadline }))
      const alone = yield* Effect.forkChild(timesOut("10 seconds"))
      const nested = yield* Effect.forkChild(FanOut.all([timesOut("200 millis")], { deadline: "1 second" }))
      yield* Effect.yieldNow
      yield* TestClock.adjust("10 seconds")
      const own = yield* Fiber.join(alone)
      expect(own.message).toBe("fan-out deadline of 10s passed")
      expect(Duration.toMillis(own.duration)).toBe(10_000)
      const [inner] = yield* Fiber.join(nested)
      expect(inner.message).toBe("fan-out deadline of 200ms passed")
      expect(Duration.toMillis(inner.duration)).toBe(200)
    }))
})

describe("a settle's required-task deadline error", () => {
  it.effect("names the deadline a nested settle adopted, not its own", () =>
    Effect.gen(function*() {
      const inner = Effect.flip(FanOut.settle([Effect.never], { required: [0], deadline: "10 seconds" }))
      const fiber = yield* Effect.forkChild(FanOut.all([inner], { deadline: "1 second" }))
      yield* Effect.yieldNow
      yield* TestClock.adjust("999 millis")
      const [error] = yield* Fiber.join(fiber)
      expect(error).toBeInstanceOf(FanOutError.FanOutTimeoutError)
      expect(error).toMatchObject({ reason: "Deadline", key: 0 })
      expect(Duration.toMillis((error as FanOutError.FanOutTimeoutError).duration)).toBe(999)
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

describe("a task's retries under an enclosing deadline", () => {
  it.effect("a nested fan-out's retries stop at the enclosing deadline, though its own deadline is later", () =>
    Effect.gen(function*() {
      const { flaky, started } = yield* makeFlaky
      const inner = FanOut.settle({ flaky }, { retry: Schedule.spaced("1 second"), deadline: "10 seconds" })
      const fiber = yield* Effect.forkChild(FanOut.settle({ inner }, { deadline: "2500 millis" }))
      yield* Effect.yieldNow
      yield* TestClock.adjust("2498 millis")
      expect(fiber.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust("1 millis")
      const { inner: outcome } = yield* Fiber.join(fiber)
      // Attempts at 0, 1 and 2 seconds; the enclosing deadline (less 1 ms) cuts the wait for the fourth, in the inner
      // fan-out, whose outcome reaches the outer one.
      expect(outcome).toMatchObject({ _tag: "Success", durationMillis: 2499 })
      const { flaky: inside } = (outcome as { readonly value: { readonly flaky: unknown } }).value
      expect(inside).toMatchObject({ _tag: "TimedOut", reason: "Deadline", attempts: 3, durationMillis: 2499 })
      yield* TestClock.adjust("1 hour")
      expect(yield* Ref.get(started)).toBe(3)
    }))

  it.effect("a nested fan-out without a deadline: the enclosing deadline stops its retries, none starts after", () =>
    Effect.gen(function*() {
      const { flaky, started } = yield* makeFlaky
      const inner = FanOut.all([flaky], { retry: Schedule.spaced("1 second") })
      const fiber = yield* Effect.forkChild(FanOut.settle({ inner }, { deadline: "2500 millis" }))
      yield* Effect.yieldNow
      yield* TestClock.adjust("2500 millis")
      const { inner: outcome } = yield* Fiber.join(fiber)
      expect(outcome).toMatchObject({ _tag: "TimedOut", reason: "Deadline", durationMillis: 2500 })
      yield* TestClock.adjust("1 hour")
      expect(yield* Ref.get(started)).toBe(3)
    }))

  it.effect("a task's own retry inside a fan-out with a deadline reads the budget shrinking between attempts", () =>
    Effect.gen(function*() {
      const seen = yield* Ref.make<Array<number>>([])
      const task = Effect.gen(function*() {
        const left = yield* Deadline.remaining
        yield* Ref.update(seen, (all) => [...all, Duration.toMillis(Option.getOrThrow(left))])
        return yield* Effect.fail("down")
      })
      const fiber = yield* Effect.forkChild(
        FanOut.settle([task], { retry: Schedule.spaced("400 millis"), deadline: "1 second" })
      )
      yield* TestClock.adjust("1 second")
      const [outcome] = yield* Fiber.join(fiber)
      expect(outcome).toMatchObject({ _tag: "TimedOut", reason: "Deadline", attempts: 3 })
      expect(yield* Ref.get(seen)).toStrictEqual([1000, 600, 200])
    }))
})
