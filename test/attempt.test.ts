/**
 * Attempt telemetry (src/Attempt.ts): attempts by type on task spans and, when turned on, in metrics; and the hedging
 * policy's adaptive delay (src/Hedge.ts) and fatal failures.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Metric, Schedule, Tracer } from "effect"
import { TestClock } from "effect/testing"
import { Attempt, Budget, FanOut, Hedge } from "../src/index.js"
import { makeLog, recording } from "./support.js"

/** A metric registry of the test's own, so that no other test's fan-outs count. */
const isolated = <A, E>(effect: Effect.Effect<A, E>) => Effect.provideService(effect, Metric.MetricRegistry, new Map())

const counter = (metric: Metric.Counter<number>, attributes: Record<string, string>) =>
  Effect.map(Metric.value(Metric.withAttributes(metric, attributes)), (state) => state.count)

/** The attempt metrics of fan-out `fanout`. */
const attemptCounts = (fanout: string) =>
  Effect.all({
    original: counter(Attempt.metrics.started, { fanout, type: "original" }),
    retry: counter(Attempt.metrics.started, { fanout, type: "retry" }),
    hedge: counter(Attempt.metrics.started, { fanout, type: "hedge" }),
    budget: counter(Attempt.metrics.refused, { fanout, reason: "budget" }),
    limit: counter(Attempt.metrics.refused, { fanout, reason: "limit" }),
    deadline: counter(Attempt.metrics.refused, { fanout, reason: "deadline" })
  })

const none = { original: 0, retry: 0, hedge: 0, budget: 0, limit: 0, deadline: 0 }

/** A task that fails `failures` times with "down", then succeeds with the number of its attempt. */
const flaky = (failures: number) => {
  let n = 0
  return Effect.suspend(() => ++n <= failures ? Effect.fail("down") : Effect.succeed(n))
}

const attemptEvents = (span: Tracer.NativeSpan) =>
  span.events.filter(([name]) => name === "fanout.attempt").map(([, , attributes]) => [
    attributes["fanout.attempt.type"],
    attributes["fanout.attempt.number"]
  ])

describe("attempt metrics", () => {
  it.effect("are off by default: a fan-out with retries records none", () =>
    isolated(Effect.gen(function*() {
      yield* FanOut.settle([flaky(5)], { retry: Schedule.recurs(2), name: "quiet" })
      expect(yield* attemptCounts("quiet")).toStrictEqual(none)
    })))

  it.effect("count attempts by type and the retry delays; a task the schedule gave up on is refused by the limit", () =>
    isolated(Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(
        FanOut.settle({ ok: flaky(1), down: flaky(5) }, {
          retry: Schedule.exponential("10 millis"),
          name: "page"
        }).pipe(Effect.provideService(Attempt.Metrics, true))
      )
      yield* TestClock.adjust("1 second")
      yield* Fiber.join(fiber)
      // "ok" answers on its retry after 10 ms; "down" on its sixth attempt, after 10, 20, 40, 80 and 160 ms.
      expect(yield* attemptCounts("page")).toStrictEqual({ ...none, original: 2, retry: 6 })
      const delays = yield* Metric.value(Metric.withAttributes(Attempt.metrics.retryDelay, { fanout: "page" }))
      expect([delays.count, delays.sum, delays.min, delays.max]).toStrictEqual([
        6,
        10 + 10 + 20 + 40 + 80 + 160,
        10,
        160
      ])
      // One sample per task that retried: "ok" made 1 retry, "down" 5.
      const retries = yield* Metric.value(Metric.withAttributes(Attempt.metrics.retries, { fanout: "page" }))
      expect([retries.count, retries.sum, retries.min, retries.max]).toStrictEqual([2, 6, 1, 5])

      yield* FanOut.settle([flaky(5)], { retry: Schedule.recurs(2), name: "limited" }).pipe(
        Effect.provide(Attempt.layerMetrics)
      )
      expect(yield* attemptCounts("limited")).toStrictEqual({ ...none, original: 1, retry: 2, limit: 1 })
    })))

  it.effect("count hedges, and an attempt the budget refused", () =>
    isolated(Effect.gen(function*() {
      let n = 0
      const slow = Effect.suspend(() => Effect.as(Effect.sleep(n++ === 0 ? "50 millis" : "1 hour"), "first"))
      const hedged = yield* Effect.forkChild(
        FanOut.settle([slow], { hedge: { delay: "10 millis", max: 3 }, name: "hedged" }).pipe(
          Effect.provide(Attempt.layerMetrics)
        )
      )
      yield* TestClock.adjust("50 millis")
      yield* Fiber.join(hedged)
      expect(yield* attemptCounts("hedged")).toStrictEqual({ ...none, original: 1, hedge: 2 })
      const hedges = yield* Metric.value(Metric.withAttributes(Attempt.metrics.hedges, { fanout: "hedged" }))
      expect([hedges.count, hedges.sum]).toStrictEqual([1, 2])
      const noRetries = yield* Metric.value(Metric.withAttributes(Attempt.metrics.retries, { fanout: "hedged" }))
      expect(noRetries.count).toBe(0)

      const budget = yield* Budget.make({ maxTokens: 2, tokenRatio: 1 })
      yield* FanOut.settle([Effect.fail("x")], { budget })
      yield* FanOut.settle([flaky(5)], { retry: Schedule.recurs(3), budget, name: "throttled" }).pipe(
        Effect.provide(Attempt.layerMetrics)
      )
      expect(yield* attemptCounts("throttled")).toStrictEqual({ ...none, original: 1, budget: 1 })
    })))

  it.effect("a deadline passing while a retry waits for its delay is a refusal by the deadline", () =>
    isolated(Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(
        FanOut.settle({ down: flaky(5), slow: Effect.never }, {
          retry: Schedule.spaced("100 millis"),
          deadline: "150 millis",
          name: "late"
        }).pipe(Effect.provide(Attempt.layerMetrics))
      )
      yield* TestClock.adjust("150 millis")
      const out = yield* Fiber.join(fiber)
      expect(out.down).toMatchObject({ _tag: "TimedOut", attempts: 2 })
      // `slow` was running its first attempt when the deadline passed: nothing was refused it.
      expect(yield* attemptCounts("late")).toStrictEqual({ ...none, original: 2, retry: 1, deadline: 1 })
    })))
})

describe("attempts on task spans", () => {
  it.effect("each attempt is an event with its type and number; the span counts retries and hedges", () =>
    Effect.gen(function*() {
      const { named, tracer } = recording()
      let n = 0
      // Attempt 1 fails after 5 ms, its backup (2) is started at once and fails too, the retry (3) answers.
      const task = Effect.suspend(() => {
        const k = ++n
        return k === 1
          ? Effect.andThen(Effect.sleep("5 millis"), Effect.fail("down"))
          : k === 2
          ? Effect.fail("down")
          : Effect.as(Effect.sleep("5 millis"), k)
      })
      const fiber = yield* Effect.forkChild(
        FanOut.settle({ task }, { retry: Schedule.recurs(1), hedge: { delay: "10 millis" }, name: "page" }).pipe(
          Effect.withTracer(tracer)
        )
      )
      yield* TestClock.adjust("5 millis")
      yield* TestClock.adjust("5 millis")
      const out = yield* Fiber.join(fiber)
      expect(out.task).toMatchObject({ _tag: "Success", value: 3, attempts: 3 })
      const span = named("task")
      expect(attemptEvents(span)).toStrictEqual([["original", 1], ["hedge", 2], ["retry", 3]])
      expect(span.attributes.get("fanout.task.retries")).toBe(1)
      expect(span.attributes.get("fanout.task.hedges")).toBe(1)
    }))

  it.effect("a retry is a retry event, and a task without retry or hedge has no attempt events", () =>
    Effect.gen(function*() {
      const { named, tracer } = recording()
      yield* FanOut.settle({ flaky: flaky(2), plain: Effect.succeed(1) }, { retry: Schedule.recurs(3) }).pipe(
        Effect.withTracer(tracer)
      )
      expect(attemptEvents(named("flaky"))).toStrictEqual([["original", 1], ["retry", 2], ["retry", 3]])
      expect(named("flaky").attributes.get("fanout.task.retries")).toBe(2)
      yield* FanOut.settle({ alone: Effect.succeed(1) }).pipe(Effect.withTracer(tracer))
      expect(attemptEvents(named("alone"))).toStrictEqual([])
      expect(named("alone").attributes.has("fanout.task.retries")).toBe(false)
    }))
})

describe("Hedge.adaptive", () => {
  it.effect("waits max until a latency is seen, then 1 ms past the percentile of the window, clamped to [min, max]", () =>
    Effect.gen(function*() {
      const delay = Hedge.adaptive({ percentile: 0.5, window: 3, min: "5 millis", max: "1 second" })
      expect(delay.delayMillis()).toBe(1000)
      const answersAfter = (ms: number) => FanOut.settle([Effect.as(Effect.sleep(ms), ms)], { hedge: { delay } })
      const run = (ms: number) =>
        Effect.gen(function*() {
          const fiber = yield* Effect.forkChild(answersAfter(ms))
          yield* TestClock.adjust(ms)
          return yield* Fiber.join(fiber)
        })
      yield* run(40)
      yield* run(20)
      yield* run(30)
      // The median of 40, 20 and 30, and a millisecond: an attempt that took 30 ms has not run longer until 31.
      expect(delay.delayMillis()).toBe(31)
      // The window keeps the last 3: 20, 30, 1; the median 20.
      yield* run(1)
      expect(delay.delayMillis()).toBe(21)
      yield* run(2)
      yield* run(3)
      // 1, 2, 3: the median 2, 3 ms, clamped to 5.
      expect(delay.delayMillis()).toBe(5)
    }))

  it.effect("a backup starts once the attempt has run for the delay learned from its peers", () =>
    Effect.gen(function*() {
      const delay = Hedge.adaptive({ percentile: 0.95, window: 10, min: "1 millis", max: "1 second" })
      const warm = yield* Effect.forkChild(
        FanOut.settle([Effect.as(Effect.sleep("25 millis"), 1)], { hedge: { delay } })
      )
      yield* TestClock.adjust("25 millis")
      yield* Fiber.join(warm)
      const log = yield* makeLog
      let n = 0
      const task = Effect.suspend(() => {
        const k = ++n
        return Effect.andThen(log.add(`start ${k}`), k === 1 ? Effect.never : Effect.succeed(k))
      })
      const fiber = yield* Effect.forkChild(FanOut.settle([task], { hedge: { delay } }))
      // Its peer took 25 ms: an attempt that has run 25 ms is not slower than it yet, one that has run 26 ms is.
      yield* TestClock.adjust("25 millis")
      expect(yield* log.get).toStrictEqual(["start 1"])
      yield* TestClock.adjust("1 millis")
      const [out] = yield* Fiber.join(fiber)
      expect(out).toMatchObject({ _tag: "Success", value: 2, attempts: 2 })
    }))

  it("a wrong setting throws an InvalidOptionError naming it", () => {
    const invalid = (settings: unknown, option: string) => {
      try {
        Hedge.adaptive(settings as Hedge.AdaptiveSettings)
        expect.unreachable(`${option} was accepted`)
      } catch (error) {
        expect(error).toBeInstanceOf(FanOut.InvalidOptionError)
        expect((error as FanOut.InvalidOptionError).option).toBe(option)
      }
    }
    const ok = { percentile: 0.9, window: 10, min: "1 millis", max: "1 second" }
    invalid({ ...ok, percentile: 0 }, "hedge.delay.percentile")
    invalid({ ...ok, percentile: 1.5 }, "hedge.delay.percentile")
    invalid({ ...ok, window: 0 }, "hedge.delay.window")
    invalid({ ...ok, window: 2.5 }, "hedge.delay.window")
    invalid({ ...ok, min: "2 seconds" }, "hedge.delay.min")
    invalid({ ...ok, max: -1 }, "hedge.delay.max")
    invalid({ ...ok, max: undefined }, "hedge.delay.max")
  })
})

describe("hedge.nonFatal", () => {
  it.effect("a fatal failure ends every attempt at once with that failure; a non-fatal one starts the next", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const make = (second: string) => {
        let n = 0
        return Effect.suspend(() => {
          const k = ++n
          return log.add(`start ${k}`).pipe(
            Effect.andThen(k === 2 ? Effect.andThen(Effect.sleep("5 millis"), Effect.fail(second)) : Effect.never),
            Effect.onInterrupt(() => log.add(`interrupted ${k}`))
          )
        })
      }
      const hedge = { delay: "10 millis", max: 3, nonFatal: (error: unknown) => error === "unavailable" } as const
      const fatal = yield* Effect.forkChild(FanOut.settle([make("not found")], { hedge }))
      yield* TestClock.adjust("15 millis")
      const [ended] = yield* Fiber.join(fatal)
      expect(ended).toMatchObject({ _tag: "Failure", error: "not found", attempts: 2 })
      expect(yield* log.get).toStrictEqual(["start 1", "start 2", "interrupted 1"])

      const nonFatal = yield* Effect.forkChild(FanOut.settle([make("unavailable")], { hedge }))
      yield* TestClock.adjust("15 millis")
      // The third starts as the second fails, at 15 ms; the first still runs.
      expect((yield* log.get).slice(3)).toStrictEqual(["start 1", "start 2", "start 3"])
      yield* Fiber.interrupt(nonFatal)
    }))

  it.effect("a defect is fatal too, and nonFatal that is not a function is an InvalidOptionError", () =>
    Effect.gen(function*() {
      let n = 0
      const task = Effect.suspend(() => ++n === 1 ? Effect.never : Effect.die("bug"))
      const fiber = yield* Effect.forkChild(
        FanOut.settle([task], { hedge: { delay: "10 millis", max: 3, nonFatal: () => true } })
      )
      yield* TestClock.adjust("10 millis")
      const [out] = yield* Fiber.join(fiber)
      expect(out).toMatchObject({ _tag: "Defect", attempts: 2 })
      const exit = yield* Effect.exit(
        FanOut.settle([Effect.succeed(1)], { hedge: { delay: "1 millis", nonFatal: "yes" as any } })
      )
      const defect = Exit.isFailure(exit) ? exit.cause.reasons.find(Cause.isDieReason)?.defect : undefined
      expect((defect as FanOut.InvalidOptionError).option).toBe("hedge.nonFatal")
    }))
})
