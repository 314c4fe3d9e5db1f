/**
 * Admission control (`Admission.make`) and the log limiter (`LogLimit.make`), timed by the `TestClock`: which
 * requests run, which wait, which are refused at once and why, and with how much of their deadline the admitted ones
 * run.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Exit, Fiber } from "effect"
import { TestClock } from "effect/testing"
import * as Admission from "../../examples/analytics/Admission.js"
import * as LogLimit from "../../examples/analytics/LogLimit.js"

/** A run that holds its turn until `release` is done, recording the deadline it was given. */
const holding = (release: Deferred.Deferred<void>, given: Array<number>) => (left: Duration.Duration) =>
  Effect.sync(() => given.push(Duration.toMillis(left))).pipe(Effect.andThen(Deferred.await(release)))

const refusal = <A, E>(exit: Exit.Exit<A, E>) =>
  Exit.isFailure(exit) ? exit.cause.reasons.map((reason) => reason._tag === "Fail" ? reason.error : reason._tag) : []

describe("Admission", () => {
  it.effect("refuses a connection's request beyond MAX_FANOUTS_PER_CONNECTION at once, and serves other connections", () =>
    Effect.gen(function*() {
      const admission = Admission.make({ maxInFlight: 10, perConnection: 2, maxQueued: 10 })
      const release = yield* Deferred.make<void>()
      const given: Array<number> = []
      const connection = {}
      const held = yield* Effect.forkChild(
        Effect.all([0, 1].map(() => admission.admit(connection, Duration.seconds(2), holding(release, given))), {
          concurrency: "unbounded"
        })
      )
      yield* Effect.yieldNow
      expect(given).toEqual([2000, 2000])
      const third = yield* Effect.exit(admission.admit(connection, Duration.seconds(2), () => Effect.succeed("ran")))
      expect(refusal(third)).toMatchObject([{ _tag: "Overloaded", reason: "connection", retryAfterSeconds: 1 }])
      expect(yield* admission.admit({}, Duration.seconds(2), () => Effect.succeed("ran"))).toBe("ran")
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(held)
      // Once its requests ended, the connection may send more.
      expect(yield* admission.admit(connection, Duration.seconds(2), () => Effect.succeed("ran"))).toBe("ran")
    }))

  it.effect("refuses with busy at once while the event loop runs further behind than MAX_EVENT_LOOP_DELAY", () =>
    Effect.gen(function*() {
      let delayMs = 0
      const admission = Admission.make(
        { maxInFlight: 10, perConnection: 10, maxQueued: 10, maxLoopDelayMs: 100 },
        () => delayMs
      )
      const release = yield* Deferred.make<void>()
      const given: Array<number> = []
      const running = yield* Effect.forkChild(admission.admit({}, Duration.seconds(2), holding(release, given)))
      yield* Effect.yieldNow
      expect(given).toEqual([2000])
      delayMs = 101
      const refused = yield* Effect.exit(admission.admit({}, Duration.seconds(2), () => Effect.succeed("ran")))
      expect(refusal(refused)).toMatchObject([{
        _tag: "Overloaded",
        reason: "busy",
        retryAfterSeconds: 1,
        message: "the server runs 101 ms behind (more than 100 ms); try again later"
      }])
      // The fan-out admitted before runs to its end; once the loop catches up, requests are admitted again.
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(running)
      delayMs = 100
      expect(yield* admission.admit({}, Duration.seconds(2), () => Effect.succeed("ran"))).toBe("ran")
    }))

  it.effect("without MAX_EVENT_LOOP_DELAY, the loop's delay refuses nothing", () =>
    Effect.gen(function*() {
      const admission = Admission.make({ maxInFlight: 1, perConnection: 1, maxQueued: 0 }, () => 10_000)
      expect(yield* admission.admit({}, Duration.seconds(2), () => Effect.succeed("ran"))).toBe("ran")
    }))

  it.effect("the event loop's delay, read in a scope, is a number of milliseconds", () =>
    Effect.scoped(Effect.gen(function*() {
      const read = yield* Admission.loopDelay
      const delayMs = read()
      expect(Number.isFinite(delayMs)).toBe(true)
      expect(delayMs).toBeGreaterThanOrEqual(0)
    })))

  it.effect("refuses with busy when MAX_QUEUED_FANOUTS requests already wait", () =>
    Effect.gen(function*() {
      const admission = Admission.make({ maxInFlight: 1, perConnection: 10, maxQueued: 1 })
      const release = yield* Deferred.make<void>()
      const given: Array<number> = []
      const running = yield* Effect.forkChild(admission.admit({}, Duration.seconds(10), holding(release, given)))
      yield* Effect.yieldNow
      const waiting = yield* Effect.forkChild(admission.admit({}, Duration.seconds(10), holding(release, given)))
      yield* Effect.yieldNow
      expect(given).toEqual([10_000])
      const refused = yield* Effect.exit(admission.admit({}, Duration.seconds(10), () => Effect.succeed("ran")))
      expect(refusal(refused)).toMatchObject([{ _tag: "Overloaded", reason: "busy" }])
      // The queued one runs once the first ends, with its deadline less its wait.
      yield* TestClock.adjust(Duration.seconds(3))
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(running)
      yield* Fiber.join(waiting)
      expect(given).toEqual([10_000, 7_000])
    }))

  it.effect("sheds at once a request whose wait would exceed half its deadline, and admits one that has the time", () =>
    Effect.gen(function*() {
      const admission = Admission.make({ maxInFlight: 1, perConnection: 10, maxQueued: 100 })
      // One fan-out of 1 second makes the typical duration.
      const first = yield* Effect.forkChild(admission.admit({}, Duration.seconds(10), () => Effect.sleep("1 second")))
      yield* TestClock.adjust(Duration.seconds(1))
      yield* Fiber.join(first)

      const release = yield* Deferred.make<void>()
      const given: Array<number> = []
      const running = yield* Effect.forkChild(admission.admit({}, Duration.seconds(10), holding(release, given)))
      yield* Effect.yieldNow
      // Waiting one fan-out of about 1 s is more than half of 1.5 s: refused, nothing run, no time passed.
      let ran = false
      const shed = yield* Effect.exit(
        admission.admit({}, Duration.millis(1_500), () => Effect.sync(() => ran = true))
      )
      expect(refusal(shed)).toMatchObject([{ _tag: "Overloaded", reason: "deadline" }])
      expect(ran).toBe(false)
      // 1 s is less than half of 3 s: it waits.
      const waiting = yield* Effect.forkChild(admission.admit({}, Duration.seconds(3), holding(release, given)))
      yield* TestClock.adjust(Duration.millis(1_000))
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(running)
      yield* Fiber.join(waiting)
      expect(given).toEqual([10_000, 2_000])
    }))

  it.effect("sheds a queued request whose turn did not come within half its deadline", () =>
    Effect.gen(function*() {
      const admission = Admission.make({ maxInFlight: 1, perConnection: 10, maxQueued: 100 })
      const release = yield* Deferred.make<void>()
      const given: Array<number> = []
      const running = yield* Effect.forkChild(admission.admit({}, Duration.seconds(60), holding(release, given)))
      yield* Effect.yieldNow
      const waiting = yield* Effect.forkChild(
        Effect.exit(admission.admit({}, Duration.seconds(2), () => Effect.succeed("ran")))
      )
      yield* TestClock.adjust(Duration.millis(999))
      expect(waiting.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust(Duration.millis(1))
      expect(refusal(yield* Fiber.join(waiting))).toMatchObject([{ _tag: "Overloaded", reason: "deadline" }])
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(running)
      // The permit the refused one waited for was not taken: the next runs at once.
      expect(yield* admission.admit({}, Duration.seconds(2), () => Effect.succeed("ran"))).toBe("ran")
    }))
})

describe("LogLimit", () => {
  it.effect("writes the first line of a kind, counts the rest within LOG_WINDOW, and says how many it left out", () =>
    Effect.gen(function*() {
      const limit = LogLimit.make(Duration.seconds(10))
      const written: Array<string> = []
      const line = (key: string) => limit(key, (suppressed) => Effect.sync(() => written.push(`${key}+${suppressed}`)))
      for (let n = 0; n < 5; n++) yield* line("payments:503")
      yield* line("client:400")
      expect(written).toEqual(["payments:503+0", "client:400+0"])
      yield* TestClock.adjust(Duration.millis(9_999))
      yield* line("payments:503")
      expect(written).toHaveLength(2)
      yield* TestClock.adjust(Duration.millis(1))
      yield* line("payments:503")
      yield* line("client:400")
      expect(written).toEqual(["payments:503+0", "client:400+0", "payments:503+5", "client:400+0"])
    }))

  it.effect("writes every line with a window of 0", () =>
    Effect.gen(function*() {
      const limit = LogLimit.make(Duration.zero)
      let written = 0
      for (let n = 0; n < 3; n++) yield* limit("k", () => Effect.sync(() => written++))
      expect(written).toBe(3)
    }))
})
