/**
 * The per-attempt policies, `timeout` and hedging: attempts on fibers of their own, their limits and delays rung by
 * one timer per fan-out (src/internal/attempts.ts, timeLimit.ts, hedge.ts), under the TestClock.
 */
import { describe, expect, it } from "@effect/vitest"
import {
  Cause,
  Chunk,
  Deferred,
  Effect,
  Fiber,
  FiberId,
  FiberRef,
  Option,
  Schedule,
  type Scheduler,
  Supervisor,
  TestClock
} from "effect"
import { FanOut } from "../src/index.js"
import * as attempts from "../src/internal/attempts.js"
import type * as engine from "../src/internal/engine.js"
import { makeLog, recordedExit, Recorder } from "./support.js"

const pending = <A, E>(fiber: Fiber.Fiber<A, E>) => Effect.map(Fiber.poll(fiber), Option.isNone)

/**
 * A task that is its one attempt is limited on its worker by the engine; one that is retried (here with no retry at
 * all, `Schedule.recurs(0)`) runs each attempt on a fiber of its own. Both must behave alike.
 */
const paths = [
  ["on the task's worker", {}],
  ["on an attempt fiber", { retry: Schedule.recurs(0) }]
] as const

describe.each(paths)("per-task timeout, %s", (_, path) => {
  it.effect("tasks started one after another each get their whole limit, from their own start", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(FanOut.settle([
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
      const fiber = yield* Effect.fork(
        FanOut.settle({ cut: Effect.ensuring(Effect.never, log.add("cut finalized")) }, {
          ...path,
          timeout: "1 second"
        }).pipe(
          Effect.tap(() => log.add("fan-out returned"))
        )
      )
      yield* TestClock.adjust("1 second")
      const o = yield* Fiber.join(fiber)
      expect(o.cut).toMatchObject({ _tag: "TimedOut", reason: "Timeout", durationMillis: 1000 })
      expect(yield* log.get).toStrictEqual(["cut finalized", "fan-out returned"])
    }))

  it.effect("when the tasks cannot be interrupted, an attempt out of time runs to its end and is still TimedOut", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(Effect.uninterruptible(FanOut.settle({
        late: Effect.as(Effect.sleep("3 seconds"), 1),
        quick: Effect.as(Effect.sleep("500 millis"), 2)
      }, { ...path, timeout: "1 second" })))
      yield* TestClock.adjust("2999 millis")
      expect(yield* pending(fiber)).toBe(true)
      yield* TestClock.adjust("1 millis")
      const o = yield* Fiber.join(fiber)
      // It ended with a value, but two seconds past its limit: timed out, as with `Effect.timeoutFail`.
      expect(o.late).toMatchObject({ _tag: "TimedOut", reason: "Timeout", durationMillis: 3000 })
      expect(o.quick).toMatchObject({ _tag: "Success", value: 2 })
    }))

  it.effect("tasks that end in time end the fan-out at once, with no timer left behind", () =>
    Effect.gen(function*() {
      const recorder = new Recorder()
      let runningAtReturn = -1
      const fiber = yield* Effect.fork(Effect.supervised(
        FanOut.all([Effect.as(Effect.sleep("1 second"), 1), Effect.succeed(2)], { ...path, timeout: "1 hour" }).pipe(
          Effect.tap(() => Effect.sync(() => runningAtReturn = recorder.running))
        ),
        recorder
      ))
      yield* TestClock.adjust("1 second")
      expect(yield* Fiber.join(fiber)).toStrictEqual([1, 2])
      expect(recorder.fibers.length).toBeGreaterThan(0)
      // Read as the fan-out returned: its timer had ended already, not just been told to.
      expect(runningAtReturn).toBe(0)
    }))

  it.effect("interrupting the caller interrupts every attempt and waits for it; nothing outlives the call", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const started = yield* Deferred.make<void>()
      const recorder = new Recorder()
      const task = (name: string) =>
        Effect.zipRight(Deferred.succeed(started, undefined), Effect.never).pipe(
          Effect.ensuring(Effect.zipRight(Effect.sleep("10 millis"), log.add(`${name} finalized`)))
        )
      const fiber = yield* Effect.fork(Effect.supervised(
        FanOut.settle([task("a"), task("b")], { ...path, timeout: "1 minute" }).pipe(
          Effect.onExit(() => log.add("fan-out ended"))
        ),
        recorder
      ))
      yield* Deferred.await(started)
      const interrupter = yield* Effect.fork(Fiber.interrupt(fiber))
      yield* TestClock.adjust("10 millis")
      yield* Fiber.join(interrupter)
      const entries = yield* log.get
      expect([...entries.slice(0, 2)].sort()).toStrictEqual(["a finalized", "b finalized"])
      expect(entries[2]).toBe("fan-out ended")
      expect(recorder.running).toBe(0)
    }))

  it.effect("an attempt sees the caller's fiber-local state, and what it changes stays inside it", () =>
    Effect.gen(function*() {
      const ref = FiberRef.unsafeMake("caller")
      const seen = yield* FanOut.all([
        FiberRef.get(ref),
        Effect.zipRight(FiberRef.set(ref, "changed"), FiberRef.get(ref))
      ], { ...path, timeout: "1 second" }).pipe(Effect.locally(ref, "around the fan-out"))
      expect(seen).toStrictEqual(["around the fan-out", "changed"])
      expect(yield* FiberRef.get(ref)).toBe("caller")
    }))

  it.effect("fail fast: the first task out of time stops the fan-out, with no fiber left running", () =>
    Effect.gen(function*() {
      const { exit, recorder } = yield* Effect.gen(function*() {
        const fiber = yield* Effect.fork(recordedExit(FanOut.all({
          quick: Effect.as(Effect.sleep("1 second"), 1),
          slow: Effect.never,
          later: Effect.as(Effect.sleep("10 seconds"), 3)
        }, { ...path, timeout: "2 seconds" })))
        yield* TestClock.adjust("2 seconds")
        return yield* Fiber.join(fiber)
      })
      expect(exit._tag).toBe("Failure")
      if (exit._tag === "Failure") {
        const error = Option.getOrUndefined(Cause.failureOption(exit.cause))
        expect(error).toMatchObject({ _tag: "FanOutTimeoutError", reason: "Timeout", key: "slow" })
      }
      expect(recorder.running).toBe(0)
    }))

  it.effect("a zero limit ends a task that waits at once, and keeps a task that ends while it starts", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.fork(FanOut.settle({
        waits: Effect.never,
        instant: Effect.succeed(1),
        sleeps: Effect.as(Effect.sleep("50 millis"), 2)
      }, { ...path, timeout: "0 millis" }))
      // No clock time passes: the limit is up as the tasks start.
      const o = yield* Fiber.join(fiber)
      expect(o.waits).toMatchObject({ _tag: "TimedOut", reason: "Timeout", durationMillis: 0 })
      expect(o.instant).toMatchObject({ _tag: "Success", value: 1 })
      expect(o.sleeps).toMatchObject({ _tag: "TimedOut", reason: "Timeout", durationMillis: 0 })
      // Later tasks are still limited: the timer did not die with the first alarm.
      const again = yield* FanOut.settle([Effect.never, Effect.never], { ...path, timeout: "0 millis", concurrency: 1 })
      expect(again.map((outcome) => outcome._tag)).toStrictEqual(["TimedOut", "TimedOut"])
    }))

  it.effect("a task the fan-out is already interrupting keeps that interruption when its own limit passes", () =>
    Effect.gen(function*() {
      // Its finalizer takes a second: its own limit passes while the fan-out waits for it.
      const slow = Effect.ensuring(Effect.never, Effect.sleep("1 second"))
      const failing = Effect.zipRight(Effect.sleep("500 millis"), Effect.fail("a failed"))
      const all = yield* Effect.fork(Effect.exit(FanOut.all({ a: failing, b: slow }, { ...path, timeout: "1 second" })))
      const settled = yield* Effect.fork(
        FanOut.settle({ b: slow }, { ...path, timeout: "1200 millis", deadline: "500 millis" })
      )
      yield* TestClock.adjust("2 seconds")
      const exit = yield* Fiber.join(all)
      expect(exit._tag === "Failure" && Chunk.toReadonlyArray(Cause.failures(exit.cause))).toStrictEqual(["a failed"])
      const { b } = yield* Fiber.join(settled)
      expect(b).toMatchObject({ _tag: "TimedOut", reason: "Deadline", durationMillis: 1500 })
    }))
})

describe("hedging", () => {
  /** A task whose attempts log their start and hang, except those listed, which end as given after `ms`. */
  const attemptsOf = (
    log: { readonly add: (entry: string) => Effect.Effect<void> },
    ends: Record<number, { readonly ms: number; readonly result: Effect.Effect<string, string> }>
  ) => {
    let n = 0
    return Effect.suspend(() => {
      const k = ++n
      const end = ends[k]
      return log.add(`start ${k}`).pipe(
        Effect.zipRight(end === undefined ? Effect.never : Effect.zipRight(Effect.sleep(end.ms), end.result)),
        Effect.onInterrupt(() => log.add(`interrupted ${k}`))
      )
    })
  }

  it.effect("each backup starts a delay after the attempt before it, a failure's backup at once", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const task = attemptsOf(log, {
        2: { ms: 30, result: Effect.fail("2 failed") },
        4: { ms: 50, result: Effect.succeed("4 answered") }
      })
      const fiber = yield* Effect.fork(FanOut.hedge(task, { delay: "100 millis", max: 4 }))
      yield* TestClock.adjust("100 millis")
      expect(yield* log.get).toStrictEqual(["start 1", "start 2"])
      // The second fails at 130 ms: the third starts then, not at 200 ms.
      yield* TestClock.adjust("30 millis")
      expect(yield* log.get).toStrictEqual(["start 1", "start 2", "start 3"])
      yield* TestClock.adjust("99 millis")
      expect((yield* log.get).length).toBe(3)
      // 100 ms after the third started: the fourth, which answers 50 ms later; the others are interrupted.
      yield* TestClock.adjust("1 millis")
      expect(yield* log.get).toStrictEqual(["start 1", "start 2", "start 3", "start 4"])
      yield* TestClock.adjust("50 millis")
      expect(yield* Fiber.join(fiber)).toBe("4 answered")
      expect([...(yield* log.get)].slice(4).sort()).toStrictEqual(["interrupted 1", "interrupted 3"])
    }))

  it.effect("a backup's delay counts from the latest attempt's start, even when an earlier attempt failed", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const task = attemptsOf(log, { 1: { ms: 150, result: Effect.fail("1 failed") } })
      const fiber = yield* Effect.fork(FanOut.hedge(task, { delay: "100 millis", max: 4 }))
      // 2 starts at 100 ms; 1 fails at 150 ms, so 3 starts then; 2's own delay ends at 200 ms, but 3 is the latest.
      yield* TestClock.adjust("249 millis")
      expect(yield* log.get).toStrictEqual(["start 1", "start 2", "start 3"])
      yield* TestClock.adjust("1 millis")
      expect(yield* log.get).toStrictEqual(["start 1", "start 2", "start 3", "start 4"])
      yield* Fiber.interrupt(fiber)
    }))

  it.effect("under concurrency 1, each task's backup counts from that task's own start", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const task = (name: string) => {
        let n = 0
        return Effect.suspend(() => {
          const k = ++n
          return Effect.zipRight(
            log.add(`${name} ${k}`),
            k === 1 ? Effect.never : Effect.as(Effect.sleep("10 millis"), `${name} answered`)
          )
        })
      }
      const fiber = yield* Effect.fork(
        FanOut.all([task("a"), task("b")], { concurrency: 1, hedge: { delay: "100 millis" } })
      )
      // a: backup at 100 ms, answer at 110 ms; b starts at 110 ms, its backup at 210 ms, its answer at 220 ms.
      yield* TestClock.adjust("209 millis")
      expect(yield* log.get).toStrictEqual(["a 1", "a 2", "b 1"])
      yield* TestClock.adjust("1 millis")
      expect(yield* log.get).toStrictEqual(["a 1", "a 2", "b 1", "b 2"])
      yield* TestClock.adjust("10 millis")
      expect(yield* Fiber.join(fiber)).toStrictEqual(["a answered", "b answered"])
    }))

  it.effect("interrupting the caller interrupts every attempt and waits for them; nothing outlives the call", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const recorder = new Recorder()
      const task = attemptsOf(log, {})
      const fiber = yield* Effect.fork(Effect.supervised(
        FanOut.settle([task], { hedge: { delay: "100 millis", max: 3 } }).pipe(
          Effect.onExit(() => log.add("fan-out ended"))
        ),
        recorder
      ))
      yield* TestClock.adjust("200 millis")
      yield* Fiber.interrupt(fiber)
      const entries = yield* log.get
      expect(entries.slice(0, 3)).toStrictEqual(["start 1", "start 2", "start 3"])
      expect([...entries.slice(3, 6)].sort()).toStrictEqual(["interrupted 1", "interrupted 2", "interrupted 3"])
      expect(entries[6]).toBe("fan-out ended")
      expect(recorder.running).toBe(0)
    }))

  it.effect("a hedged call that answers in time leaves no timer behind", () =>
    Effect.gen(function*() {
      const recorder = new Recorder()
      let runningAtReturn = -1
      const fiber = yield* Effect.fork(Effect.supervised(
        FanOut.hedge(Effect.as(Effect.sleep("10 millis"), 1), { delay: "1 hour" }).pipe(
          Effect.tap(() => Effect.sync(() => runningAtReturn = recorder.running))
        ),
        recorder
      ))
      yield* TestClock.adjust("10 millis")
      expect(yield* Fiber.join(fiber)).toBe(1)
      expect(recorder.fibers.length).toBeGreaterThan(0)
      expect(runningAtReturn).toBe(0)
    }))

  it.effect("with retry, a round where one attempt failed and another died is a typed failure, and is retried", () =>
    Effect.gen(function*() {
      let n = 0
      // Odd attempts fail after 100 ms; even ones (the backups, started at 50 ms) die after 10 ms.
      const task = Effect.suspend(() => {
        const k = ++n
        return k % 2 === 1
          ? Effect.zipRight(Effect.sleep("100 millis"), Effect.fail(`attempt ${k} failed`))
          : Effect.zipRight(Effect.sleep("10 millis"), Effect.die(new Error(`attempt ${k} crashed`)))
      })
      const fiber = yield* Effect.fork(
        FanOut.settle([task], { hedge: { delay: "50 millis", max: 2 }, retry: Schedule.recurs(1) })
      )
      yield* TestClock.adjust("200 millis")
      const [outcome] = yield* Fiber.join(fiber)
      expect(outcome).toMatchObject({ _tag: "Failure", error: "attempt 3 failed", attempts: 4 })
    }))

  it.effect("any max: attempts that fail as they start are started one after another, not from inside each other", () =>
    Effect.gen(function*() {
      const [outcome] = yield* FanOut.settle([Effect.fail("no")], { hedge: { delay: "1 second", max: 100 } })
      expect(outcome).toMatchObject({ _tag: "Failure", error: "no", attempts: 100 })
    }))

  it.effect("a caller's Supervisor sees each attempt as a child of its own task's fiber", () =>
    Effect.gen(function*() {
      const parents = new Map<string, string>()
      const key = (id: FiberId.FiberId) => FiberId.threadName(id)
      class Parents extends Supervisor.AbstractSupervisor<void> {
        readonly value = Effect.void
        override onStart<A, E, R>(
          _context: unknown,
          _effect: Effect.Effect<A, E, R>,
          parent: Option.Option<Fiber.RuntimeFiber<unknown, unknown>>,
          fiber: Fiber.RuntimeFiber<A, E>
        ): void {
          if (Option.isSome(parent)) parents.set(key(fiber.id()), key(parent.value.id()))
        }
      }
      // Each task's attempt says which fiber it runs on.
      const attemptOf = new Map<string, string>()
      const task = (name: string) =>
        Effect.zipRight(
          Effect.flatMap(Effect.fiberId, (id) => Effect.sync(() => attemptOf.set(name, key(id)))),
          Effect.as(Effect.sleep("10 millis"), name)
        )
      const fiber = yield* Effect.fork(Effect.supervised(
        FanOut.all([task("a"), task("b")], { hedge: { delay: "1 hour" } }),
        new Parents()
      ))
      yield* TestClock.adjust("10 millis")
      expect(yield* Fiber.join(fiber)).toStrictEqual(["a", "b"])
      const parentOfA = parents.get(attemptOf.get("a")!)
      const parentOfB = parents.get(attemptOf.get("b")!)
      expect(parentOfA).toBeDefined()
      expect(parentOfB).toBeDefined()
      expect(parentOfA).not.toBe(parentOfB)
    }))

  it.effect("a hedge of many attempts that all fail is one Failure, whatever walks its cause", () =>
    Effect.gen(function*() {
      const [outcome] = yield* FanOut.settle([Effect.fail("no")], { hedge: { delay: "1 second", max: 100 } })
      expect(outcome).toMatchObject({ _tag: "Failure", error: "no", attempts: 100 })
      const exit = yield* Effect.exit(FanOut.all([Effect.fail("no")], { hedge: { delay: "1 second", max: 100 } }))
      expect(exit._tag === "Failure" && Chunk.toReadonlyArray(Cause.failures(exit.cause)).length).toBe(100)
    }))

  it("max is bounded: an integer from 1 to 100, else an InvalidOptionError naming hedge.max, before any attempt", () => {
    for (const max of [0, 101, 1e6, 2.5, Infinity, "3"]) {
      let runs = 0
      const task = Effect.sync(() => runs++)
      const invalid = {
        _tag: "InvalidOptionError",
        option: "hedge.max",
        reason: `must be an integer from 1 to 100, got ${typeof max === "string" ? `"${max}"` : String(max)}`
      }
      const settled = Effect.runSyncExit(FanOut.settle([task], { hedge: { delay: "1 second", max: max as number } }))
      expect(settled._tag === "Failure" && Cause.squash(settled.cause)).toMatchObject(invalid)
      const exit = Effect.runSyncExit(FanOut.hedge(task, { delay: "1 second", max: max as number }))
      expect(exit._tag === "Failure" && Cause.squash(exit.cause)).toMatchObject(invalid)
      expect(runs).toBe(0)
    }
  })

  it.effect("an attempt that failed and also crashed keeps its crash; only attempts that just died are left out", () =>
    Effect.gen(function*() {
      const both = Effect.ensuring(Effect.fail("e"), Effect.die(new Error("finalizer crashed")))
      const [outcome] = yield* FanOut.settle([both], { hedge: { delay: "50 millis", max: 1 } })
      expect(outcome).toMatchObject({ _tag: "Failure", error: "e" })
      const defects = outcome!._tag === "Failure" ? Chunk.toReadonlyArray(Cause.defects(outcome!.cause)) : []
      expect(defects.map((d) => (d as Error).message)).toStrictEqual(["finalizer crashed"])
    }))
})

/**
 * A scheduler that runs tasks in order on microtasks and, once armed by a fiber, makes the next few other fibers to
 * check yield: here, the task's fiber right after its attempt suspended, so that the attempt ends before the task has
 * started waiting for it.
 */
const yielding = () => {
  let armedBy: unknown = undefined
  let yields = 0
  const scheduler: Scheduler.Scheduler = {
    scheduleTask: (task) => queueMicrotask(task),
    shouldYield: (fiber) => {
      if (yields === 0 || fiber === armedBy) return false
      yields--
      return 0
    }
  }
  const arm = Effect.withFiberRuntime<void>((fiber) => {
    armedBy = fiber
    yields = 3
    return Effect.void
  })
  return { scheduler, arm }
}

describe("attempts on fibers of their own, when the task's fiber yields before it waits", () => {
  it.effect("a task waiting for its attempt's end is resumed even when the attempt ended before it waited", () =>
    Effect.gen(function*() {
      const { arm, scheduler } = yielding()
      // The attempt arms the scheduler, then suspends once and ends.
      const tasks = [Effect.zipRight(arm, Effect.as(Effect.yieldNow(), 1))]
      const limited = yield* Effect.fork(
        FanOut.settle(tasks, { timeout: "1 hour", retry: Schedule.recurs(0) }).pipe(Effect.withScheduler(scheduler))
      )
      const hedged = yield* Effect.fork(
        FanOut.settle(tasks, { hedge: { delay: "1 hour" } }).pipe(Effect.withScheduler(scheduler))
      )
      // No clock time is needed: both end as soon as their attempts have.
      expect((yield* Fiber.join(limited)).map((o) => o._tag)).toStrictEqual(["Success"])
      expect((yield* Fiber.join(hedged)).map((o) => o._tag)).toStrictEqual(["Success"])
    }))
})

describe("the alarm queue", () => {
  it.effect("holds about as many alarms as tasks running, not one per task the fan-out ran", () =>
    Effect.gen(function*() {
      const spawner = new attempts.Spawner()
      const alarms = new attempts.Alarms(60_000, spawner)
      const fiber = yield* Effect.withFiberRuntime<engine.AnyFiber>((f) => Effect.succeed(f as never))
      // A long-running alarm at the head, then many that are set and cleared: the head alone would keep them all.
      const stuck = alarms.set(fiber, () => {})
      for (let i = 0; i < 10_000; i++) alarms.clear(alarms.set(fiber, () => {})!)
      expect(alarms.size).toBeLessThan(2_100)
      alarms.clear(stuck!)
      yield* alarms.close
    }))
})
