/**
 * The per-attempt policies (src/internal/attempts.ts) on the engine (src/internal/engine/run.ts): a task's `timeout`
 * set by the engine on the task's own fiber, or, with `retry`, on each attempt's fiber by the fan-out's alarms; and
 * the deadline with retries. Under the TestClock.
 */
import { assert, describe, expect, it } from "@effect/vitest"
import { Cause, Clock, Context, Effect, Exit, Fiber, Ref, Schedule, Scheduler } from "effect"
import { TestClock } from "effect/testing"
import { FanOut } from "../src/index.js"
import { countingSleeps } from "./support.js"

/** An append-only log of what tasks did, read back with `get`. */
const makeLog = Effect.map(Ref.make<ReadonlyArray<string>>([]), (ref) => ({
  get: Ref.get(ref),
  add: (entry: string) => Ref.update(ref, (entries) => [...entries, entry])
}))

const pending = <A, E>(fiber: Fiber.Fiber<A, E>) => Effect.sync(() => fiber.pollUnsafe() === undefined)

/**
 * A task that is its one attempt is limited on its own fiber by the engine; one that is retried (here with no retry
 * at all, `Schedule.recurs(0)`) runs each attempt on a fiber of its own, limited by the fan-out's alarms. Both must
 * behave alike.
 */
const paths = [
  ["on the task's fiber", {}],
  ["on an attempt fiber", { retry: Schedule.recurs(0) }]
] as const

describe.each(paths)("per-task timeout, %s", (_, path) => {
  it.effect("tasks started one after another each get their whole limit, from their own start", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(FanOut.settle([
        Effect.as(Effect.sleep("1 second"), "a"),
        Effect.never,
        Effect.as(Effect.sleep("1500 millis"), "c"),
        Effect.never
      ], { ...path, timeout: "2 seconds", concurrency: 1 }))
      // The second task started at 1 s: out of time at 3 s, not at 2 s (the first task's limit).
      yield* TestClock.adjust("2999 millis")
      expect(yield* pending(fiber)).toBe(true)
      // The third runs 3 s to 4.5 s, the fourth from 4.5 s until 6.5 s.
      yield* TestClock.adjust("3500 millis")
      expect(yield* pending(fiber)).toBe(true)
      yield* TestClock.adjust("1 millis")
      const outcomes = yield* Fiber.join(fiber)
      expect(outcomes.map((o) => [o._tag, o.durationMillis])).toStrictEqual([
        ["Success", 1000],
        ["TimedOut", 2000],
        ["Success", 1500],
        ["TimedOut", 2000]
      ])
      expect(outcomes[1]).toMatchObject({ reason: "Timeout", attempts: 1 })
    }))

  it.effect("an attempt out of time is interrupted, and its finalizer has run when the task times out", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const fiber = yield* Effect.forkChild(
        FanOut.settle({ cut: Effect.ensuring(Effect.never, log.add("cut finalized")) }, {
          ...path,
          timeout: "1 second"
        }).pipe(Effect.tap(() => log.add("fan-out returned")))
      )
      yield* TestClock.adjust("1 second")
      const o = yield* Fiber.join(fiber)
      expect(o.cut).toMatchObject({ _tag: "TimedOut", reason: "Timeout", durationMillis: 1000, attempts: 1 })
      expect(yield* log.get).toStrictEqual(["cut finalized", "fan-out returned"])
    }))

  it.effect("an attempt that cannot be interrupted runs to its end past its limit, and is still TimedOut", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(FanOut.settle({
        late: Effect.uninterruptible(Effect.as(Effect.sleep("3 seconds"), 1)),
        quick: Effect.as(Effect.sleep("500 millis"), 2)
      }, { ...path, timeout: "1 second" }))
      yield* TestClock.adjust("2999 millis")
      expect(yield* pending(fiber)).toBe(true)
      yield* TestClock.adjust("1 millis")
      const o = yield* Fiber.join(fiber)
      // It ended with a value, but two seconds past its limit: timed out, as with `Effect.timeout`.
      expect(o.late).toMatchObject({ _tag: "TimedOut", reason: "Timeout", durationMillis: 3000 })
      expect(o.quick).toMatchObject({ _tag: "Success", value: 2 })
    }))

  it.effect("tasks that end in time end the fan-out at once, with no timer left behind", () =>
    Effect.gen(function*() {
      const { clock, sleeping } = yield* countingSleeps
      let sleepingAtReturn = -1
      const fiber = yield* Effect.forkChild(
        FanOut.all([Effect.as(Effect.sleep("1 second"), 1), Effect.succeed(2)], { ...path, timeout: "1 hour" }).pipe(
          Effect.tap(() => Effect.sync(() => sleepingAtReturn = sleeping())),
          Effect.provideService(Clock.Clock, clock)
        )
      )
      yield* TestClock.adjust("500 millis")
      // The first task's sleep and the fan-out's timer.
      expect(sleeping()).toBe(2)
      yield* TestClock.adjust("500 millis")
      expect(yield* Fiber.join(fiber)).toStrictEqual([1, 2])
      // Read as the fan-out returned: its timer had ended already, not just been told to.
      expect(sleepingAtReturn).toBe(0)
    }))

  it.effect("interrupting the caller interrupts every attempt and waits for it", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const task = (name: string) =>
        Effect.never.pipe(Effect.ensuring(Effect.andThen(Effect.sleep("10 millis"), log.add(`${name} finalized`))))
      const fiber = yield* Effect.forkChild(
        FanOut.settle([task("a"), task("b")], { ...path, timeout: "1 minute" }).pipe(
          Effect.onExit(() => log.add("fan-out ended"))
        )
      )
      yield* TestClock.adjust("1 second")
      const interrupter = yield* Effect.forkChild(Fiber.interrupt(fiber))
      yield* TestClock.adjust("10 millis")
      yield* Fiber.join(interrupter)
      const entries = yield* log.get
      expect([...entries.slice(0, 2)].sort()).toStrictEqual(["a finalized", "b finalized"])
      expect(entries.slice(2)).toStrictEqual(["fan-out ended"])
    }))

  it.effect("an attempt sees the caller's references, and what it changes stays inside it", () =>
    Effect.gen(function*() {
      const Where = Context.Reference<string>("test/attempts/Where", { defaultValue: () => "default" })
      const seen = yield* FanOut.all([
        Effect.service(Where),
        Effect.service(Where).pipe(Effect.provideService(Where, "changed"))
      ], { ...path, timeout: "1 second" }).pipe(Effect.provideService(Where, "around the fan-out"))
      expect(seen).toStrictEqual(["around the fan-out", "changed"])
      expect(yield* Where).toBe("default")
    }))

  it.effect("fail fast: the first task out of time stops the fan-out and interrupts the others", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const fiber = yield* Effect.forkChild(Effect.exit(FanOut.all({
        quick: Effect.as(Effect.sleep("1 second"), 1),
        slow: Effect.never,
        later: Effect.as(Effect.sleep("10 seconds"), 3).pipe(Effect.ensuring(log.add("later finalized")))
      }, { ...path, timeout: "2 seconds" })))
      yield* TestClock.adjust("2 seconds")
      const exit = yield* Fiber.join(fiber)
      assert(Exit.isFailure(exit))
      expect(Cause.findErrorOption(exit.cause)).toMatchObject({
        _tag: "Some",
        value: { _tag: "FanOutTimeoutError", reason: "Timeout", key: "slow" }
      })
      expect(yield* log.get).toStrictEqual(["later finalized"])
    }))

  it.effect("a zero limit ends a task that waits at once, and keeps a task that ends while it starts", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(FanOut.settle({
        waits: Effect.never,
        instant: Effect.succeed(1),
        sleeps: Effect.as(Effect.sleep("50 millis"), 2)
      }, { ...path, timeout: "0 millis" }))
      // No clock time passes: the limit is up as the tasks start.
      yield* TestClock.adjust("0 millis")
      const o = yield* Fiber.join(fiber)
      expect(o.waits).toMatchObject({ _tag: "TimedOut", reason: "Timeout", durationMillis: 0 })
      expect(o.instant).toMatchObject({ _tag: "Success", value: 1 })
      expect(o.sleeps).toMatchObject({ _tag: "TimedOut", reason: "Timeout", durationMillis: 0 })
      // Later tasks are still limited: the timer did not die with the first alarm.
      const again = yield* Effect.forkChild(
        FanOut.settle([Effect.never, Effect.never], { ...path, timeout: "0 millis", concurrency: 1 })
      )
      yield* TestClock.adjust("0 millis")
      expect((yield* Fiber.join(again)).map((outcome) => outcome._tag)).toStrictEqual(["TimedOut", "TimedOut"])
    }))

  it.effect("a task the fan-out is already interrupting keeps that interruption when its own limit passes", () =>
    Effect.gen(function*() {
      // Its finalizer takes a second: its own limit passes while the fan-out waits for it.
      const slow = Effect.ensuring(Effect.never, Effect.sleep("1 second"))
      const failing = Effect.andThen(Effect.sleep("500 millis"), Effect.fail("a failed"))
      const all = yield* Effect.forkChild(
        Effect.exit(FanOut.all({ a: failing, b: slow }, { ...path, timeout: "1 second" }))
      )
      const settled = yield* Effect.forkChild(
        FanOut.settle({ b: slow }, { ...path, timeout: "1200 millis", deadline: "500 millis" })
      )
      yield* TestClock.adjust("2 seconds")
      const exit = yield* Fiber.join(all)
      assert(Exit.isFailure(exit))
      expect(exit.cause.reasons.filter(Cause.isFailReason).map((reason) => reason.error)).toStrictEqual(["a failed"])
      const { b } = yield* Fiber.join(settled)
      expect(b).toMatchObject({ _tag: "TimedOut", reason: "Deadline", durationMillis: 1500 })
    }))

  it.effect("a time-out of a fan-out nested in the task is that task's Failure, not its own time-out", () =>
    Effect.gen(function*() {
      const nested = FanOut.all([Effect.never], { timeout: "1 second" })
      const fiber = yield* Effect.forkChild(FanOut.settle({ nested }, { ...path, timeout: "1 hour" }))
      yield* TestClock.adjust("1 second")
      const { nested: outcome } = yield* Fiber.join(fiber)
      expect(outcome).toMatchObject({
        _tag: "Failure",
        error: { _tag: "FanOutTimeoutError", reason: "Timeout", key: 0 }
      })
    }))
})

describe("timeout with retry", () => {
  /** A task whose attempts log their start and hang, except the one given, which answers at once. */
  const answersOnAttempt = (log: { readonly add: (entry: string) => Effect.Effect<void> }, answering: number) => {
    let n = 0
    return Effect.suspend(() => {
      const k = ++n
      return log.add(`start ${k} at`).pipe(
        Effect.andThen(k === answering ? Effect.succeed(`answer ${k}`) : Effect.never),
        Effect.onInterrupt(() => log.add(`interrupted ${k}`))
      )
    })
  }

  it.effect("each attempt gets its own limit; an attempt out of time is retried, and the schedule sees why", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const inputs: Array<unknown> = []
      const retry = Schedule.recurs(3).pipe(Schedule.tap((metadata) => Effect.sync(() => inputs.push(metadata.input))))
      const fiber = yield* Effect.forkChild(
        FanOut.settle({ search: answersOnAttempt(log, 3) }, { timeout: "100 millis", retry })
      )
      yield* TestClock.adjust("199 millis")
      expect(yield* log.get).toStrictEqual(["start 1 at", "interrupted 1", "start 2 at"])
      yield* TestClock.adjust("1 millis")
      const { search } = yield* Fiber.join(fiber)
      expect(search).toMatchObject({ _tag: "Success", value: "answer 3", attempts: 3, durationMillis: 200 })
      expect(inputs).toMatchObject([
        { _tag: "FanOutTimeoutError", reason: "Timeout", key: "search" },
        { _tag: "FanOutTimeoutError", reason: "Timeout", key: "search" }
      ])
    }))

  it.effect("a task whose retries run out on time-outs is TimedOut, and fail fast names it", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const settled = yield* Effect.forkChild(
        FanOut.settle({ search: answersOnAttempt(log, 0) }, { timeout: "100 millis", retry: Schedule.recurs(2) })
      )
      yield* TestClock.adjust("300 millis")
      const { search } = yield* Fiber.join(settled)
      expect(search).toMatchObject({ _tag: "TimedOut", reason: "Timeout", attempts: 3, durationMillis: 300 })

      const failFast = yield* Effect.forkChild(Effect.exit(
        FanOut.all({ search: answersOnAttempt(log, 0) }, { timeout: "100 millis", retry: Schedule.recurs(1) })
      ))
      yield* TestClock.adjust("200 millis")
      const exit = yield* Fiber.join(failFast)
      assert(Exit.isFailure(exit))
      expect(Cause.findErrorOption(exit.cause)).toMatchObject({
        _tag: "Some",
        value: { _tag: "FanOutTimeoutError", reason: "Timeout", key: "search" }
      })
    }))

  it.effect("typed failures are retried, defects are not", () =>
    Effect.gen(function*() {
      let failures = 0
      let crashes = 0
      const outcomes = yield* FanOut.settle({
        flaky: Effect.suspend(() => ++failures < 3 ? Effect.fail(`failure ${failures}`) : Effect.succeed("ok")),
        crashing: Effect.suspend(() => {
          crashes++
          return Effect.die(new Error("crash"))
        })
      }, { timeout: "1 hour", retry: Schedule.recurs(5) })
      expect(outcomes.flaky).toMatchObject({ _tag: "Success", value: "ok", attempts: 3 })
      expect(outcomes.crashing).toMatchObject({ _tag: "Defect", attempts: 1 })
      expect(crashes).toBe(1)
    }))
})

describe("deadline with retry", () => {
  it.effect("retries stop at the deadline: the task is TimedOut, its attempts counted, none starts after", () =>
    Effect.gen(function*() {
      const started = yield* Ref.make(0)
      const task = Effect.andThen(Ref.update(started, (n) => n + 1), Effect.fail("down"))
      const fiber = yield* Effect.forkChild(
        FanOut.settle({ flaky: task, steady: Effect.as(Effect.sleep("1 second"), "up") }, {
          retry: Schedule.spaced("1 second"),
          deadline: "2500 millis"
        })
      )
      yield* TestClock.adjust("2500 millis")
      const { flaky, steady } = yield* Fiber.join(fiber)
      // Attempts at 0, 1 and 2 seconds; the deadline cuts the wait for the fourth.
      expect(flaky).toMatchObject({ _tag: "TimedOut", reason: "Deadline", attempts: 3, durationMillis: 2500 })
      expect(steady).toMatchObject({ _tag: "Success", value: "up", attempts: 1 })
      yield* TestClock.adjust("1 hour")
      expect(yield* Ref.get(started)).toBe(3)
    }))

  it.effect("fail fast: the deadline passing while a task retries is a FanOutTimeoutError of reason Deadline", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(Effect.exit(
        FanOut.all([Effect.fail("down")], { retry: Schedule.spaced("1 second"), deadline: "1500 millis" })
      ))
      yield* TestClock.adjust("1500 millis")
      const exit = yield* Fiber.join(fiber)
      assert(Exit.isFailure(exit))
      expect(Cause.findErrorOption(exit.cause)).toMatchObject({
        _tag: "Some",
        value: { _tag: "FanOutTimeoutError", reason: "Deadline" }
      })
    }))

  it.effect("a per-attempt timeout and the deadline together: the deadline wins over the next attempt's limit", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(FanOut.settle([Effect.never], {
        timeout: "1 second",
        retry: Schedule.recurs(10),
        deadline: "2500 millis"
      }))
      yield* TestClock.adjust("2500 millis")
      const [outcome] = yield* Fiber.join(fiber)
      expect(outcome).toMatchObject({ _tag: "TimedOut", reason: "Deadline", attempts: 3, durationMillis: 2500 })
    }))
})

/**
 * A scheduler over the current one that, once a fiber has run `arm`, makes one other fiber yield at its next step:
 * the first to check after arming among those that had checked before (so not a fiber the armer's step started,
 * such as the fan-out's timer), other than `spared`. Here: the fiber that started the armer synchronously, right
 * after the armer suspended, before that fiber had begun to wait for it.
 */
const yieldOnce = Effect.gen(function*() {
  const base = yield* Scheduler.Scheduler
  const seen = new WeakSet<object>()
  let armedBy: unknown = undefined
  let spared: unknown = undefined
  let armed = false
  let yielded = false
  const scheduler: Scheduler.Scheduler = {
    executionMode: base.executionMode,
    makeDispatcher: () => base.makeDispatcher(),
    shouldYield: (fiber) => {
      if (armed && fiber !== armedBy && fiber !== spared && seen.has(fiber)) {
        armed = false
        yielded = true
        return true
      }
      if (armedBy === undefined) seen.add(fiber)
      return base.shouldYield(fiber)
    }
  }
  const arm = Effect.withFiber((fiber) => {
    armedBy = fiber
    armed = true
    return Effect.void
  })
  const spare = Effect.withFiber((fiber) => {
    spared = fiber
    return Effect.void
  })
  return { scheduler, arm, spare, yielded: () => yielded }
})

/** Yields until `done()`: for a step the test cannot await without changing the order fibers run in. */
const waitUntil = (done: () => boolean, turns = 100): Effect.Effect<void> =>
  Effect.suspend(() => {
    if (done()) return Effect.void
    if (turns === 0) return Effect.die(new Error("waited 100 turns"))
    return Effect.andThen(Effect.yieldNow, waitUntil(done, turns - 1))
  })

describe("attempts on fibers of their own, when the task's fiber yields before it waits", () => {
  const attemptPaths: ReadonlyArray<readonly [string, FanOut.Options]> = [
    ["a timed attempt", { timeout: "1 hour", retry: Schedule.recurs(0) }],
    ["a hedged attempt", { hedge: { delay: "1 hour" } }]
  ]

  it.effect.each(attemptPaths)(
    "%s that ended before its task waited for it still resumes the task",
    ([_, options]) =>
      Effect.gen(function*() {
        const { arm, scheduler, spare } = yield* yieldOnce
        // The attempt arms the scheduler, then suspends once and ends.
        const task = Effect.andThen(arm, Effect.as(Effect.yieldNow, 1))
        const fiber = yield* Effect.forkChild(
          Effect.andThen(spare, FanOut.settle([task], options)).pipe(
            Effect.provideService(Scheduler.Scheduler, scheduler)
          )
        )
        // No clock time is needed: the task ends as soon as its attempt has.
        expect((yield* Fiber.join(fiber)).map((o) => o._tag)).toStrictEqual(["Success"])
      })
  )

  it.effect.each(attemptPaths)(
    "%s outlives no task interrupted while it yields before waiting",
    ([_, options]) =>
      Effect.gen(function*() {
        const { arm, scheduler, spare, yielded } = yield* yieldOnce
        const log = yield* makeLog
        let attempt = undefined as Fiber.Fiber<unknown, unknown> | undefined
        const task = Effect.andThen(
          Effect.andThen(arm, Effect.sync(() => attempt = Fiber.getCurrent())),
          Effect.never.pipe(Effect.ensuring(log.add("attempt finalized")))
        )
        const fiber = yield* Effect.forkChild(
          Effect.andThen(spare, FanOut.settle([task], options)).pipe(
            Effect.provideService(Scheduler.Scheduler, scheduler)
          )
        )
        yield* waitUntil(() => attempt !== undefined)
        yield* Fiber.interrupt(fiber)
        const finalized = yield* log.get
        // Leave nothing running after the test, whatever it found.
        if (attempt !== undefined && attempt.pollUnsafe() === undefined) yield* Fiber.interrupt(attempt)
        expect({ finalized, yielded: yielded() }).toMatchObject({ finalized: ["attempt finalized"] })
      })
  )
})

describe("the engine, when the caller yields before it waits for its tasks", () => {
  it.effect("a task outlives no caller interrupted while it yields before waiting", () =>
    Effect.gen(function*() {
      const { arm, scheduler } = yield* yieldOnce
      const log = yield* makeLog
      let task = undefined as Fiber.Fiber<unknown, unknown> | undefined
      const body = Effect.andThen(
        Effect.andThen(arm, Effect.sync(() => task = Fiber.getCurrent())),
        Effect.never.pipe(Effect.ensuring(log.add("task finalized")))
      )
      const fiber = yield* Effect.forkChild(
        FanOut.settle([body]).pipe(Effect.provideService(Scheduler.Scheduler, scheduler))
      )
      yield* waitUntil(() => task !== undefined)
      yield* Fiber.interrupt(fiber)
      const finalized = yield* log.get
      if (task !== undefined && task.pollUnsafe() === undefined) yield* Fiber.interrupt(task)
      expect(finalized).toStrictEqual(["task finalized"])
    }))
})
