/**
 * The policies on top of the two modes: required tasks, retry, quorum and first success, the completion stream and
 * detach. (Hedging is covered in `hedge.test.ts`, tracing and metrics in `observe.test.ts`.)
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Data, Deferred, Effect, Exit, Fiber, Option, Ref, Schedule, Stream } from "effect"
import { TestClock } from "effect/testing"
import { FanOut, FanOutError, Outcome } from "../src/index.js"
import { type Log, makeLog, recorded, Recorder } from "./support.js"

class Down extends Data.TaggedError("Down")<{ readonly service: string }> {}

/** Runs until interrupted; records its interruption and its finalizer (which must run exactly once). */
const hang = (log: Log, name: string) =>
  Effect.never.pipe(
    Effect.onInterrupt(() => log.add(`${name} interrupted`)),
    Effect.ensuring(log.add(`${name} finalized`))
  )

const count = (entries: ReadonlyArray<string>, entry: string) => entries.filter((e) => e === entry).length

/** The typed errors of a failed exit, in order. */
const errorsOf = (exit: Exit.Exit<unknown, unknown>): Array<unknown> =>
  Exit.isFailure(exit) ? exit.cause.reasons.filter(Cause.isFailReason).map((reason) => reason.error) : []

/** The first defect of a failed exit. */
const defectOf = (exit: Exit.Exit<unknown, unknown>): unknown =>
  Exit.isFailure(exit) ? exit.cause.reasons.find(Cause.isDieReason)?.defect : undefined

describe("required", () => {
  it.effect("a required task's failure fails the fan-out with its own error and interrupts the optional tasks", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const gate = yield* Deferred.make<void>()
      const fiber = yield* FanOut.settle({
        account: Deferred.await(gate).pipe(Effect.andThen(Effect.fail(new Down({ service: "account" })))),
        usage: hang(log, "usage"),
        billing: Effect.succeed(3)
      }, { required: ["account"] }).pipe(Effect.forkChild)
      yield* Effect.yieldNow
      expect(yield* log.get).toEqual([])
      yield* Deferred.succeed(gate, undefined)
      const exit = yield* Fiber.await(fiber)
      expect(errorsOf(exit)).toStrictEqual([new Down({ service: "account" })])
      expect(Exit.isFailure(exit) && exit.cause.reasons.length).toBe(1)
      // The optional task was interrupted, and its finalizer ran once, before the fan-out returned.
      const entries = yield* log.get
      expect(count(entries, "usage interrupted")).toBe(1)
      expect(count(entries, "usage finalized")).toBe(1)
      // catchTag works on the required task's error.
      const handled = yield* FanOut.settle({ account: Effect.fail(new Down({ service: "account" })) }, {
        required: ["account"]
      }).pipe(Effect.catchTag("Down", (e) => Effect.succeed(e.service)))
      expect(handled).toBe("account")
    }))

  it.effect("optional tasks settle to outcomes while the required ones succeed", () =>
    Effect.gen(function*() {
      const result = yield* FanOut.settle([Effect.succeed("account"), Effect.fail("x"), Effect.die("bug")], {
        required: [0]
      })
      expect(result.map((o) => o._tag)).toEqual(["Success", "Failure", "Defect"])
    }))

  it.effect("a required task cut off by the deadline fails the fan-out with a FanOutTimeoutError", () =>
    Effect.gen(function*() {
      const fiber = yield* FanOut.settle({
        account: Effect.never,
        usage: Effect.succeed(1)
      }, { required: ["account"], deadline: "1 second" }).pipe(Effect.forkChild)
      yield* TestClock.adjust("1 second")
      const exit = yield* Fiber.await(fiber)
      const error = Option.getOrThrow(Exit.isFailure(exit) ? Cause.findErrorOption(exit.cause) : Option.none())
      expect(error).toBeInstanceOf(FanOutError.FanOutTimeoutError)
      expect((error as FanOutError.FanOutTimeoutError).reason).toBe("Deadline")
    }))

  it.effect("report: true names the required task that failed, crashed or was cut off by the deadline (optional tasks cut off there are TimedOut)", () =>
    Effect.gen(function*() {
      const crashed = yield* FanOut.settle({ account: Effect.die(new Error("bug")), usage: Effect.never }, {
        required: ["account"],
        report: true
      }).pipe(Effect.flip)
      expect(crashed).toBeInstanceOf(FanOutError.FanOutFailure)
      expect([crashed.reason, crashed.key, crashed.label]).toEqual(["Defect", "account", "account"])
      expect(crashed.outcomes.map((o) => o._tag)).toEqual(["Defect", "Interrupted"])

      const fiber = yield* FanOut.settle({ usage: Effect.succeed(1), account: Effect.never, panel: Effect.never }, {
        required: ["account"],
        deadline: "1 second",
        report: true
      }).pipe(Effect.flip, Effect.forkChild)
      yield* TestClock.adjust("1 second")
      const late = yield* Fiber.join(fiber)
      expect([late.reason, late.key]).toEqual(["Deadline", "account"])
      // The optional panel did not come either: TimedOut, as its outcome says, listed after the required task.
      expect(late.outcomes.map((o) => [o.key, o._tag, "reason" in o ? o.reason : undefined])).toEqual([
        ["usage", "Success", undefined],
        ["account", "TimedOut", "Deadline"],
        ["panel", "TimedOut", "Deadline"]
      ])
      expect(late.failures.map((o) => o.key)).toEqual(["account", "panel"])
    }))

  it.effect("without report, a required task cut off by the deadline is named in the FanOutTimeoutError", () =>
    Effect.gen(function*() {
      const fiber = yield* FanOut.settle([Effect.never, Effect.succeed(1)], { required: [0], deadline: 50 }).pipe(
        Effect.flip,
        Effect.forkChild
      )
      yield* TestClock.adjust(50)
      const error = yield* Fiber.join(fiber)
      expect(error).toMatchObject({ _tag: "FanOutTimeoutError", reason: "Deadline", key: 0 })
      expect(error.message).toContain("did not finish by the deadline")
    }))

  it.effect("a required task's crash fails the fan-out with its defect; an optional task's error stays its outcome", () =>
    Effect.gen(function*() {
      const exit = yield* FanOut.settle({
        account: Effect.die(new Error("bug")),
        usage: Effect.fail(new Down({ service: "usage" }))
      }, { required: ["account"] }).pipe(Effect.exit)
      expect(defectOf(exit)).toMatchObject({ message: "bug" })
      expect(errorsOf(exit)).toEqual([])
    }))

  it.effect("a required task whose finalizer dies after its failure fails the fan-out with a defect, as Effect 4 has it", () =>
    Effect.gen(function*() {
      // Effect 4 turns a failure whose finalizer dies into a defect (the error becomes a Die), so catchTag cannot
      // recover it; the Effect 3 line's kept the error as a Fail.
      const account = Effect.fail(new Down({ service: "account" })).pipe(
        Effect.ensuring(Effect.die(new Error("cleanup crashed")))
      )
      const exit = yield* FanOut.settle({ account, usage: Effect.succeed(1) }, { required: ["account"] }).pipe(
        Effect.catchTag("Down", () => Effect.succeed("recovered")),
        Effect.exit
      )
      expect(errorsOf(exit)).toEqual([])
      expect(defectOf(exit)).toStrictEqual(new Down({ service: "account" }))
    }))

  it.effect("a caller that cannot be interrupted still has its required task cut off by the deadline", () =>
    Effect.gen(function*() {
      // On the Effect 4 line tasks run interruptibly whatever the caller's region, so the deadline stops them.
      const log = yield* makeLog
      const fiber = yield* FanOut.settle({ account: hang(log, "account"), usage: Effect.succeed(1) }, {
        required: ["account"],
        deadline: "1 second"
      }).pipe(Effect.uninterruptible, Effect.flip, Effect.forkChild)
      yield* TestClock.adjust("1 second")
      const error = yield* Fiber.join(fiber)
      expect(error).toMatchObject({ _tag: "FanOutTimeoutError", reason: "Deadline", key: "account" })
      expect(count(yield* log.get, "account finalized")).toBe(1)
    }))

  it.effect("settleForEach takes required item indices; a Set of tasks takes indices too", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const started = yield* Deferred.make<void>()
      const each = yield* Effect.exit(FanOut.settleForEach(
        ["account", "usage"],
        (name) =>
          name === "account"
            ? Deferred.await(started).pipe(Effect.andThen(Effect.fail(new Down({ service: name }))))
            : Deferred.succeed(started, undefined).pipe(Effect.andThen(hang(log, name))),
        { required: [0] }
      ))
      expect(errorsOf(each)).toStrictEqual([new Down({ service: "account" })])
      expect(count(yield* log.get, "usage finalized")).toBe(1)
      const fromSet = yield* Effect.exit(
        FanOut.settle(new Set([Effect.succeed(1), Effect.fail(new Down({ service: "set" }))]), { required: [1] })
      )
      expect(errorsOf(fromSet)).toStrictEqual([new Down({ service: "set" })])
      const optional = yield* FanOut.settleForEach([1, 2], (n) => n === 1 ? Effect.fail("x") : Effect.succeed(n), {
        required: [1]
      })
      expect(optional.map((o) => o._tag)).toEqual(["Failure", "Success"])
    }))

  it.effect("a key that is not a task's key is an InvalidOptionError", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(FanOut.settle({ a: Effect.succeed(1) }, { required: ["b" as "a"] }))
      const defect = defectOf(exit)
      expect(defect).toBeInstanceOf(FanOutError.InvalidOptionError)
      expect((defect as FanOutError.InvalidOptionError).option).toBe("required")
    }))
})

describe("retry", () => {
  it.effect("retries typed failures by the schedule and counts the attempts", () =>
    Effect.gen(function*() {
      const tries = yield* Ref.make(0)
      const flaky = Ref.updateAndGet(tries, (n) => n + 1).pipe(
        Effect.flatMap((n) => n < 3 ? Effect.fail(`try ${n}`) : Effect.succeed(n))
      )
      const [outcome, failing] = yield* FanOut.settle([flaky, Effect.fail("always")], { retry: Schedule.recurs(4) })
      expect(outcome).toMatchObject({ _tag: "Success", value: 3, attempts: 3 })
      expect(failing).toMatchObject({ _tag: "Failure", error: "always", attempts: 5 })
    }))

  it.effect("never retries a defect or an interruption", () =>
    Effect.gen(function*() {
      const runs = yield* Ref.make(0)
      const crash = Ref.update(runs, (n) => n + 1).pipe(Effect.andThen(Effect.die(new Error("bug"))))
      const [outcome] = yield* FanOut.settle([crash], { retry: Schedule.recurs(5) })
      expect(outcome._tag).toBe("Defect")
      expect(outcome.attempts).toBe(1)
      expect(yield* Ref.get(runs)).toBe(1)
      const [interrupted] = yield* FanOut.settle([Effect.interrupt], { retry: Schedule.recurs(5) })
      expect(interrupted).toMatchObject({ _tag: "Interrupted", attempts: 1 })
    }))

  it.effect("an attempt past its timeout is given to the schedule as a FanOutTimeoutError naming the task", () =>
    Effect.gen(function*() {
      for (const mode of ["settle", "all"] as const) {
        const seen = yield* Ref.make<ReadonlyArray<unknown>>([])
        // Effect 4's Schedule.tap sees the inputs the schedule goes on after: the first two of the three attempts'.
        const retry = Schedule.recurs(2).pipe(Schedule.tap(({ input }) => Ref.update(seen, (all) => [...all, input])))
        const tasks = { slow: Effect.never }
        const run: Effect.Effect<unknown> = mode === "settle"
          ? FanOut.settle(tasks, { timeout: "1 second", retry })
          : FanOut.all(tasks, { timeout: "1 second", retry }).pipe(Effect.exit)
        const fiber = yield* Effect.forkChild(run)
        yield* TestClock.adjust("3 seconds")
        yield* Fiber.join(fiber)
        const inputs = yield* Ref.get(seen)
        expect(inputs).toHaveLength(2)
        for (const input of inputs) {
          expect(input).toBeInstanceOf(FanOutError.FanOutTimeoutError)
          expect(input).toMatchObject({ reason: "Timeout", key: "slow", label: "slow" })
        }
      }
    }))

  it.effect("retries stop at the deadline", () =>
    Effect.gen(function*() {
      const fiber = yield* FanOut.settle([Effect.fail("down")], {
        retry: Schedule.spaced("100 millis"),
        deadline: "350 millis"
      }).pipe(Effect.forkChild)
      yield* TestClock.adjust("1 second")
      const [outcome] = yield* Fiber.join(fiber)
      expect(outcome).toMatchObject({ _tag: "TimedOut", reason: "Deadline", attempts: 4 })
    }))
})

describe("quorum", () => {
  it.effect("succeeds as soon as n tasks succeed, in completion order, and interrupts the rest", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const slow = Effect.sleep("2 seconds").pipe(Effect.as("slow"))
      const fiber = yield* FanOut.quorum({
        eu: slow,
        us: Effect.sleep("1 second").pipe(Effect.as("us")),
        asia: Effect.succeed("asia"),
        stuck: hang(log, "stuck")
      }, 2).pipe(Effect.forkChild)
      yield* TestClock.adjust("1 second")
      const winners = yield* Fiber.join(fiber)
      expect(winners.map((w) => [w.key, w.value])).toEqual([["asia", "asia"], ["us", "us"]])
      const entries = yield* log.get
      expect(count(entries, "stuck interrupted")).toBe(1)
      expect(count(entries, "stuck finalized")).toBe(1)
    }))

  it.effect("fails as soon as n can no longer be reached, with every outcome", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const error = yield* FanOut.quorum([
        hang(log, "c"),
        Effect.fail(new Down({ service: "a" })),
        Effect.fail(new Down({ service: "b" })),
        Effect.succeed(1)
      ], 3).pipe(Effect.flip)
      expect(error).toBeInstanceOf(FanOutError.QuorumError)
      expect(error.needed).toBe(3)
      // After two failures, 3 of 4 is out of reach: the hanging task is interrupted and the last one never starts.
      expect(error.outcomes.map((o) => [o._tag, o.attempts])).toEqual([
        ["Interrupted", 1],
        ["Failure", 1],
        ["Failure", 1],
        ["Interrupted", 0]
      ])
      expect(count(yield* log.get, "c finalized")).toBe(1)
    }))

  it.effect("takes any iterable of tasks, as the other fan-outs do", () =>
    Effect.gen(function*() {
      const winners = yield* FanOut.quorum(new Set([Effect.fail("x"), Effect.succeed("a"), Effect.never]), 1)
      expect(winners.map((w) => [w.key, w.value])).toEqual([[1, "a"]])
      function* tasks() {
        yield Effect.succeed(1)
        yield Effect.fail("down")
      }
      const streamed = yield* Stream.runCollect(FanOut.stream(tasks()))
      expect(streamed.map((o) => [o.key, o._tag])).toEqual([[0, "Success"], [1, "Failure"]])
    }))

  it.effect("n out of range is an InvalidOptionError", () =>
    Effect.gen(function*() {
      for (const n of [0, 3, 1.5, Number.NaN]) {
        const exit = yield* Effect.exit(FanOut.quorum([Effect.succeed(1), Effect.succeed(2)], n))
        expect(defectOf(exit)).toBeInstanceOf(FanOutError.InvalidOptionError)
        expect(defectOf(exit)).toMatchObject({ option: "n" })
      }
    }))

  it.effect("firstSuccess returns the first value and fails only when every task failed", () =>
    Effect.gen(function*() {
      const value = yield* FanOut.firstSuccess([Effect.fail("a"), Effect.succeed("b"), Effect.never])
      expect(value).toBe("b")
      const error = yield* FanOut.firstSuccess([Effect.fail("a"), Effect.fail("b")]).pipe(Effect.flip)
      expect(error.outcomes.map((o) => Outcome.isFailure(o) && o.error)).toEqual(["a", "b"])
    }))
})

describe("stream", () => {
  it.effect("emits outcomes in the order the tasks finish", () =>
    Effect.gen(function*() {
      const fiber = yield* FanOut.stream({
        slow: Effect.sleep("3 seconds").pipe(Effect.as(3)),
        fast: Effect.sleep("1 second").pipe(Effect.as(1)),
        broken: Effect.sleep("2 seconds").pipe(Effect.andThen(Effect.fail("down")))
      }).pipe(Stream.runCollect, Effect.forkChild)
      yield* TestClock.adjust("3 seconds")
      const outcomes = yield* Fiber.join(fiber)
      expect(outcomes.map((o) => [o.key, o._tag, o.durationMillis])).toEqual([
        ["fast", "Success", 1000],
        ["broken", "Failure", 2000],
        ["slow", "Success", 3000]
      ])
    }))

  it.effect("ending the stream early interrupts the tasks still running and waits for their finalizers", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const first = yield* FanOut.stream([hang(log, "a"), Effect.succeed("b"), hang(log, "c")]).pipe(
        Stream.take(1),
        Stream.runCollect
      )
      expect(first.map((o) => o.key)).toEqual([1])
      const entries = yield* log.get
      expect(count(entries, "a finalized")).toBe(1)
      expect(count(entries, "c finalized")).toBe(1)
    }))

  it.effect("bad options are the stream's defect when it runs, not a throw when it is made", () =>
    Effect.gen(function*() {
      const stream = FanOut.stream([Effect.succeed(1)], { concurrency: 0 })
      const exit = yield* Effect.exit(Stream.runCollect(stream))
      expect(defectOf(exit)).toMatchObject({ _tag: "InvalidOptionError", option: "concurrency" })
    }))

  it.effect("tasks cut off by the deadline come last, timed out", () =>
    Effect.gen(function*() {
      const fiber = yield* FanOut.stream([Effect.never, Effect.succeed("ok")], { deadline: "1 second" }).pipe(
        Stream.runCollect,
        Effect.forkChild
      )
      yield* TestClock.adjust("1 second")
      const outcomes = yield* Fiber.join(fiber)
      expect(outcomes.map((o) => [o.key, o._tag])).toEqual([[1, "Success"], [0, "TimedOut"]])
    }))
})

describe("detach", () => {
  it.effect("returns at the first failure while a sibling's slow finalizer finishes in the background", () =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<void>()
      const finalized = yield* Deferred.make<void>()
      const started = yield* Deferred.make<void>()
      // Signals it is running, then hangs; its finalizer cannot finish until the test releases it.
      const slowCleanup = Deferred.succeed(started, undefined).pipe(
        Effect.andThen(Effect.never),
        Effect.ensuring(Deferred.await(release).pipe(Effect.andThen(Deferred.succeed(finalized, undefined))))
      )
      const exit = yield* Effect.exit(
        FanOut.all([slowCleanup, Deferred.await(started).pipe(Effect.andThen(Effect.fail("boom")))], { detach: true })
      )
      expect(errorsOf(exit)).toEqual(["boom"])
      expect(yield* Deferred.isDone(finalized)).toBe(false)
      yield* Deferred.succeed(release, undefined)
      yield* Deferred.await(finalized)
    }))
})

// Effect 4 resumes a fiber waiting on a Deferred inside the `Deferred.succeed` of the fiber that completes it, so a
// task that is starting can end another task before the fan-out has finished starting it.
describe("a task that a starting sibling ends at once", () => {
  it.effect("fail fast: the failure it causes still interrupts the sibling, and the fan-out answers", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const woken = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const fanOut = yield* FanOut.all([
        Deferred.await(woken).pipe(Effect.andThen(Effect.fail("boom"))),
        Deferred.succeed(woken, undefined).pipe(
          Effect.andThen(Deferred.await(release)),
          Effect.onInterrupt(() => log.add("waker interrupted"))
        )
      ]).pipe(Effect.exit, Effect.forkChild)
      const waited = yield* Fiber.await(fanOut).pipe(Effect.timeoutOption("1 second"), Effect.forkChild)
      yield* TestClock.adjust("1 second")
      const answered = yield* Fiber.join(waited)
      // Let the sibling end on its own, so that a fan-out that failed to stop it still ends.
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.await(fanOut)
      expect(yield* log.get).toEqual(["waker interrupted"])
      expect(Option.isSome(answered)).toBe(true)
    }))

  it.effect("a task started later, as a slot frees, is interrupted too before the fan-out answers", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const woken = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const recorder = new Recorder()
      const fiber = yield* recorded(
        FanOut.all([
          Effect.sleep("10 millis"),
          Deferred.await(woken).pipe(Effect.andThen(Effect.fail("boom"))),
          // Starts when the sleeper's slot frees, and wakes the waiting task, which fails.
          Deferred.succeed(woken, undefined).pipe(
            Effect.andThen(Deferred.await(release)),
            Effect.ensuring(log.add("waker finalized"))
          )
        ], { concurrency: 2 }),
        recorder
      ).pipe(Effect.exit, Effect.forkChild)
      yield* TestClock.adjust("10 millis")
      const exit = yield* Fiber.join(fiber)
      const entries = yield* log.get
      const running = recorder.running
      // Let a sibling the fan-out left running end, so that it does not outlive the test either.
      yield* Deferred.succeed(release, undefined)
      expect(errorsOf(exit)).toEqual(["boom"])
      expect(entries).toEqual(["waker finalized"])
      expect(running).toBe(0)
    }))

  it.effect("settle: a time-out that rings while a task starts does not end the fan-out before that task", () =>
    Effect.gen(function*() {
      // Both attempts time out at 4 ms; the first one's end starts the third task, whose attempt sets its alarm while
      // the second one's is ringing.
      const fiber = yield* FanOut.settle([Effect.never, Effect.never, Effect.as(Effect.sleep("10 millis"), "late")], {
        concurrency: 2,
        timeout: "4 millis",
        retry: Schedule.recurs(0)
      }).pipe(Effect.forkChild)
      yield* TestClock.adjust("8 millis")
      const outcomes = yield* Fiber.join(fiber)
      expect(outcomes.map((o) => [o._tag, o.durationMillis, o.attempts])).toEqual([
        ["TimedOut", 4, 1],
        ["TimedOut", 4, 1],
        ["TimedOut", 4, 1]
      ])
    }))

  it.effect("with a bound, the sibling that is starting holds its slot", () =>
    Effect.gen(function*() {
      const woken = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      let running = 0
      let most = 0
      const tracked = <A, E>(self: Effect.Effect<A, E>) =>
        Effect.suspend(() => {
          most = Math.max(most, ++running)
          return self
        }).pipe(Effect.ensuring(Effect.sync(() => running--)))
      // Started at once, the fan-out has started every task it can by the time forkChild returns.
      const fiber = yield* FanOut.all([
        tracked(Deferred.await(woken)),
        tracked(Deferred.succeed(woken, undefined).pipe(Effect.andThen(Deferred.await(release)))),
        tracked(Deferred.await(release)),
        tracked(Deferred.await(release))
      ], { concurrency: 2 }).pipe(Effect.forkChild({ startImmediately: true }))
      expect(running).toBe(2)
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(fiber)
      expect(most).toBe(2)
    }))
})
