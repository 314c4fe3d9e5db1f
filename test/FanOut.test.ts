import { describe, expect, it } from "@effect/vitest"
import { Cause, Data, Deferred, Duration, Effect, Exit, Fiber, pipe, Ref, Schedule, Stream } from "effect"
import { TestClock } from "effect/testing"
import { fileURLToPath } from "node:url"
import { FanOut, Outcome } from "../src/index.js"
import { type Log, makeLog, recorded, recordedExit, Recorder } from "./support.js"

// ---------------------------------------------------------------------------------------------------------------
// helpers

class NotFound extends Data.TaggedError("NotFound")<{ readonly id: number }> {}
class Unavailable extends Data.TaggedError("Unavailable")<{ readonly service: string }> {}

/** A task that signals it has started, then runs until interrupted, recording its interruption and its finalizer. */
const hang = (log: Log, name: string, started: Deferred.Deferred<void>) =>
  Deferred.succeed(started, undefined).pipe(
    Effect.andThen(Effect.never),
    Effect.onInterrupt(() => log.add(`${name} interrupted`)),
    Effect.ensuring(log.add(`${name} finalized`))
  )

const countBy = (entries: ReadonlyArray<string>, entry: string) => entries.filter((e) => e === entry).length

/** The typed errors of a cause, in order. */
const failuresOf = (cause: Cause.Cause<unknown>): Array<unknown> =>
  cause.reasons.filter(Cause.isFailReason).map((reason) => reason.error)

/** The defects of a cause, in order. */
const defectsOf = (cause: Cause.Cause<unknown>): Array<unknown> =>
  cause.reasons.filter(Cause.isDieReason).map((reason) => reason.defect)

/**
 * `exit` without the annotations Effect 4 puts on a cause's reasons (the span it failed in, stack frames), so that it
 * compares equal to the `Exit` a test writes out.
 */
const bare = <A, E>(exit: Exit.Exit<A, E>): Exit.Exit<A, E> =>
  Exit.isSuccess(exit) ?
    exit :
    Exit.failCause(Cause.fromReasons(exit.cause.reasons.map((reason) =>
      reason._tag === "Fail"
        ? Cause.makeFailReason(reason.error)
        : reason._tag === "Die"
        ? Cause.makeDieReason(reason.defect)
        : Cause.makeInterruptReason(reason.fiberId)
    )))

const defectOf = (exit: Exit.Exit<unknown, unknown>): unknown =>
  Exit.isFailure(exit) ? defectsOf(exit.cause)[0] : undefined

function assertFailure<A, E>(exit: Exit.Exit<A, E>): asserts exit is Exit.Failure<A, E> {
  expect(Exit.isFailure(exit)).toBe(true)
}

function assert(condition: boolean): asserts condition {
  expect(condition).toBe(true)
}

// ---------------------------------------------------------------------------------------------------------------

describe("FanOut.all", () => {
  describe("shapes", () => {
    it.effect("returns a tuple's results in input order, not completion order", () =>
      Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(FanOut.all([
          Effect.as(Effect.sleep("30 millis"), "a"),
          Effect.as(Effect.sleep("20 millis"), 2),
          Effect.as(Effect.sleep("10 millis"), true)
        ]))
        yield* TestClock.adjust("30 millis")
        const result = yield* Fiber.join(fiber)
        expect(result).toStrictEqual(["a", 2, true])
      }))

    it.effect("keeps a struct's keys and their order", () =>
      Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(FanOut.all({
          zeta: Effect.as(Effect.sleep("20 millis"), 1),
          alpha: Effect.succeed("x"),
          mid: Effect.as(Effect.sleep("10 millis"), [3])
        }))
        yield* TestClock.adjust("20 millis")
        const result = yield* Fiber.join(fiber)
        expect(result).toStrictEqual({ zeta: 1, alpha: "x", mid: [3] })
        expect(Object.keys(result)).toStrictEqual(["zeta", "alpha", "mid"])
      }))

    it.effect("takes a Set and gives an array in iteration order", () =>
      Effect.gen(function*() {
        const tasks = new Set([Effect.as(Effect.sleep("10 millis"), 1), Effect.succeed(2), Effect.succeed(3)])
        const fiber = yield* Effect.forkChild(FanOut.all(tasks))
        yield* TestClock.adjust("10 millis")
        expect(yield* Fiber.join(fiber)).toStrictEqual([1, 2, 3])
      }))

    it.effect("takes a generator and gives an array in iteration order", () =>
      Effect.gen(function*() {
        function* tasks() {
          for (let i = 0; i < 4; i++) yield Effect.as(Effect.sleep(Duration.millis(40 - i * 10)), i)
        }
        const fiber = yield* Effect.forkChild(FanOut.all(tasks()))
        yield* TestClock.adjust("40 millis")
        expect(yield* Fiber.join(fiber)).toStrictEqual([0, 1, 2, 3])
      }))

    it.effect("keeps input order with a concurrency bound", () =>
      Effect.gen(function*() {
        const tasks = [30, 10, 20, 5, 15].map((ms, i) => Effect.as(Effect.sleep(Duration.millis(ms)), i))
        const fiber = yield* Effect.forkChild(FanOut.all(tasks, { concurrency: 2 }))
        yield* TestClock.adjust("100 millis")
        expect(yield* Fiber.join(fiber)).toStrictEqual([0, 1, 2, 3, 4])
      }))

    it.effect("a number bounds how many tasks run at once; \"unbounded\", Infinity and no option do not", () =>
      Effect.gen(function*() {
        // Counts the tasks running at once, each held until the others have had a chance to start.
        const peak = (concurrency: FanOut.Options["concurrency"]) =>
          Effect.gen(function*() {
            const running = yield* Ref.make(0)
            const most = yield* Ref.make(0)
            const task = Ref.updateAndGet(running, (n) => n + 1).pipe(
              Effect.tap((n) => Ref.update(most, (m) => Math.max(m, n))),
              Effect.andThen(Effect.yieldNow),
              Effect.andThen(Ref.update(running, (n) => n - 1))
            )
            yield* FanOut.all(Array.from({ length: 6 }, () => task), { concurrency })
            return yield* Ref.get(most)
          })
        expect(yield* peak(undefined)).toBe(6)
        expect(yield* peak("unbounded")).toBe(6)
        expect(yield* peak(Infinity)).toBe(6)
        expect(yield* peak(3)).toBe(3)
        expect(yield* peak(1)).toBe(1)
      }))

    it.effect("succeeds at once with the empty shape for empty input", () =>
      Effect.gen(function*() {
        expect(yield* FanOut.all([])).toStrictEqual([])
        expect(yield* FanOut.all()({})).toStrictEqual({})
        expect(yield* FanOut.all(new Set<Effect.Effect<number>>())).toStrictEqual([])
        expect(yield* FanOut.all([], { concurrency: 1, deadline: "1 second", timeout: "1 second" })).toStrictEqual([])
        expect(yield* FanOut.forEach([], () => Effect.never)).toStrictEqual([])
      }))

    it.effect("has data-last forms", () =>
      Effect.gen(function*() {
        const tasks = [Effect.succeed(1), Effect.succeed("two")] as const
        expect(yield* FanOut.all()(tasks)).toStrictEqual([1, "two"])
        expect(yield* FanOut.all({ concurrency: 2 })(tasks)).toStrictEqual([1, "two"])
        expect(yield* pipe({ a: Effect.succeed(1) }, FanOut.all({ concurrency: 1 }))).toStrictEqual({ a: 1 })
      }))
  })

  describe("fail fast", () => {
    it.effect("interrupts running siblings on the first typed failure and waits for their finalizers", () =>
      Effect.gen(function*() {
        const log = yield* makeLog
        const started1 = yield* Deferred.make<void>()
        const started2 = yield* Deferred.make<void>()
        const exit = yield* Effect.exit(FanOut.all([
          Effect.andThen(Deferred.await(started2), Effect.fail(new NotFound({ id: 7 }))),
          hang(log, "one", started1),
          hang(log, "two", started2)
        ]))
        expect(bare(exit)).toStrictEqual(Exit.fail(new NotFound({ id: 7 })))
        const entries = yield* log.get
        expect([...entries].sort()).toStrictEqual([
          "one finalized",
          "one interrupted",
          "two finalized",
          "two interrupted"
        ])
      }))

    it.effect("interrupts running siblings on the first defect and waits for their finalizers", () =>
      Effect.gen(function*() {
        const log = yield* makeLog
        const started = yield* Deferred.make<void>()
        const boom = new Error("boom")
        const exit = yield* Effect.exit(FanOut.all([
          hang(log, "one", started),
          Effect.andThen(Deferred.await(started), Effect.die(boom))
        ]))
        expect(Exit.isFailure(exit) && Cause.hasDies(exit.cause)).toBe(true)
        expect(defectOf(exit)).toBeInstanceOf(Error)
        expect((defectOf(exit) as Error).message).toBe("boom")
        expect(yield* log.get).toStrictEqual(["one interrupted", "one finalized"])
      }))

    it.effect("treats a thrown exception as a defect that stops the fan-out", () =>
      Effect.gen(function*() {
        const log = yield* makeLog
        const started = yield* Deferred.make<void>()
        const exit = yield* Effect.exit(FanOut.all([
          hang(log, "one", started),
          Effect.andThen(
            Deferred.await(started),
            Effect.sync(() => {
              throw new Error("thrown")
            })
          )
        ]))
        expect((defectOf(exit) as Error).message).toBe("thrown")
        expect(yield* log.get).toStrictEqual(["one interrupted", "one finalized"])
      }))

    it.effect("starts no new task after the first failure with a concurrency bound", () =>
      Effect.gen(function*() {
        const starts = yield* Ref.make<ReadonlyArray<number>>([])
        const started1 = yield* Deferred.make<void>()
        const task = (i: number) =>
          Effect.andThen(
            Ref.update(starts, (s) => [...s, i]),
            i === 0
              ? Effect.andThen(Deferred.await(started1), Effect.fail("first"))
              : i === 1
              ? Effect.andThen(Deferred.succeed(started1, undefined), Effect.never)
              : Effect.succeed(i)
          )
        const exit = yield* Effect.exit(FanOut.forEach([0, 1, 2, 3, 4], task, { concurrency: 2 }))
        expect(bare(exit)).toStrictEqual(Exit.fail("first"))
        expect(yield* Ref.get(starts)).toStrictEqual([0, 1])
      }))

    it.effect("interrupts a task started after another that ended at once, and runs its finalizer", () =>
      Effect.gen(function*() {
        // With a bound, a slot freed by a task that ended as it started goes to the next task: it is interruptible too.
        const log = yield* makeLog
        const started = yield* Deferred.make<void>()
        const exit = yield* Effect.exit(FanOut.all([
          Effect.void,
          hang(log, "second in its slot", started),
          Effect.andThen(Deferred.await(started), Effect.fail("first"))
        ], { concurrency: 2 }))
        expect(bare(exit)).toStrictEqual(Exit.fail("first"))
        expect(yield* log.get).toStrictEqual(["second in its slot interrupted", "second in its slot finalized"])
      }))

    it.effect("starts no task after a failure with concurrency 1", () =>
      Effect.gen(function*() {
        const starts = yield* Ref.make(0)
        const task = (i: number) =>
          Effect.andThen(Ref.update(starts, (n) => n + 1), i === 1 ? Effect.fail(`failed ${i}`) : Effect.succeed(i))
        const exit = yield* Effect.exit(FanOut.forEach([0, 1, 2, 3], task, { concurrency: 1 }))
        expect(bare(exit)).toStrictEqual(Exit.fail("failed 1"))
        expect(yield* Ref.get(starts)).toBe(2)
      }))

    it.effect("fails with the task's own error, so catchTag works", () =>
      Effect.gen(function*() {
        const result = yield* FanOut.all({
          user: Effect.fail(new NotFound({ id: 1 })) as Effect.Effect<string, NotFound | Unavailable>,
          orders: Effect.never as Effect.Effect<number, Unavailable>
        }).pipe(
          Effect.catchTag("NotFound", (e) => Effect.succeed(`missing ${e.id}`))
        )
        expect(result).toBe("missing 1")
      }))

    it.effect("keeps a sibling's finalizer defect in the cause, after the first failure, but not the interruptions", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const cleanup = new Error("cleanup crashed")
        const exit = yield* Effect.exit(FanOut.all([
          Effect.andThen(Deferred.await(started), Effect.fail("first")),
          Effect.andThen(Deferred.succeed(started, undefined), Effect.never).pipe(Effect.ensuring(Effect.die(cleanup)))
        ]))
        assertFailure(exit)
        expect(failuresOf(exit.cause)).toStrictEqual(["first"])
        expect(defectsOf(exit.cause).map((d) => (d as Error).message)).toStrictEqual([cleanup.message])
        expect(Cause.hasInterrupts(exit.cause)).toBe(false)
        // the first failure comes first
        expect(exit.cause.reasons.map((r) => r._tag)).toStrictEqual(["Fail", "Die"])
        expect(Cause.squash(exit.cause)).toBe("first")
      }))

    it.effect("with a sibling's finalizer defect in the cause, Effect 4's catch* see a defect (catchTag too), as after Effect.all", () =>
      Effect.gen(function*() {
        // Effect 4 turns the typed failures of a cause that holds a defect into defects when a combinator catches: the
        // whole failure is a defect, for Effect.all's own fan-out as for this one (the Effect 3 line's catchTag
        // recovered). Nothing is lost: both the task's error and the finalizer's defect are there.
        const tasks = Effect.map(Deferred.make<void>(), (started) =>
          [
            Effect.andThen(Deferred.succeed(started, undefined), Effect.never).pipe(
              Effect.ensuring(Effect.die(new Error("cleanup crashed")))
            ),
            Effect.andThen(Deferred.await(started), Effect.fail(new NotFound({ id: 1 })))
          ] as const)
        const fanOuts = [
          Effect.flatMap(tasks, (ts) => FanOut.all(ts)),
          Effect.flatMap(tasks, (ts) => Effect.all(ts, { concurrency: "unbounded" }))
        ]
        for (const fanOut of fanOuts) {
          const recoveries: ReadonlyArray<Effect.Effect<unknown>> = [
            Effect.catchTag(fanOut, "NotFound", () => Effect.succeed("recovered")),
            Effect.catch(fanOut, () => Effect.succeed("recovered")),
            Effect.result(fanOut)
          ]
          for (const recovery of recoveries) {
            const exit = yield* Effect.exit(recovery)
            assertFailure(exit)
            expect(failuresOf(exit.cause)).toStrictEqual([])
            const [error, cleanup] = defectsOf(exit.cause)
            expect(error).toBeInstanceOf(NotFound)
            expect((cleanup as Error).message).toBe("cleanup crashed")
          }
        }
      }))

    it.effect("keeps a sibling's defect from its interrupt handler in the cause", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const exit = yield* Effect.exit(FanOut.all([
          Effect.andThen(Deferred.await(started), Effect.fail("first")),
          Effect.andThen(Deferred.succeed(started, undefined), Effect.never).pipe(
            Effect.onInterrupt(() => Effect.die("dying while interrupted"))
          )
        ]))
        assertFailure(exit)
        expect(failuresOf(exit.cause)).toStrictEqual(["first"])
        expect(defectsOf(exit.cause)).toStrictEqual(["dying while interrupted"])
        expect(Cause.hasInterrupts(exit.cause)).toBe(false)
      }))

    it.effect("keeps a second failure that happens while the siblings are being interrupted", () =>
      Effect.gen(function*() {
        // The late failure on a task started first, then on one started in a slot freed by a task that ended at once.
        for (const layout of ["started first", "started in a freed slot"] as const) {
          const started1 = yield* Deferred.make<void>()
          const started2 = yield* Deferred.make<void>()
          const stopping = yield* Deferred.make<void>()
          const go = yield* Deferred.make<void>()
          const first = Effect.andThen(
            Effect.andThen(Deferred.await(started1), Deferred.await(started2)),
            Effect.fail("first")
          )
          // cannot be interrupted: it is still running when the fan-out has begun to stop, then fails too
          const second = Effect.uninterruptible(
            Deferred.succeed(started1, undefined).pipe(
              Effect.andThen(Deferred.await(go)),
              Effect.andThen(Effect.fail("second"))
            )
          )
          const hanging = Effect.andThen(Deferred.succeed(started2, undefined), Effect.never).pipe(
            Effect.onInterrupt(() => Deferred.succeed(stopping, undefined))
          )
          const fanOut: Effect.Effect<unknown, string> = layout === "started first"
            ? FanOut.all([first, second, hanging])
            : FanOut.all([Effect.void, second, first, hanging], { concurrency: 3 })
          const fiber = yield* Effect.forkChild(Effect.exit(fanOut))
          yield* Deferred.await(stopping)
          expect(fiber.pollUnsafe()).toBeUndefined()
          yield* Deferred.succeed(go, undefined)
          const exit = yield* Fiber.join(fiber)
          assertFailure(exit)
          expect(failuresOf(exit.cause)).toStrictEqual(["first", "second"])
          expect(Cause.hasInterrupts(exit.cause)).toBe(false)
          expect(Cause.squash(exit.cause)).toBe("first")
        }
      }))

    it.effect("with report: true fails with a FanOutFailure naming the task", () =>
      Effect.gen(function*() {
        const log = yield* makeLog
        const started = yield* Deferred.make<void>()
        const error = yield* Effect.flip(FanOut.all({
          profile: Effect.succeed("Ada"),
          orders: hang(log, "orders", started),
          billing: FanOut.labeled(
            Effect.andThen(Deferred.await(started), Effect.fail(new Unavailable({ service: "billing" }))),
            "billing-service"
          )
        }, { report: true }))
        expect(error).toBeInstanceOf(FanOut.FanOutFailure)
        expect(error._tag).toBe("FanOutFailure")
        expect(error.reason).toBe("Failure")
        expect(error.key).toBe("billing")
        expect(error.label).toBe("billing-service")
        expect(error.error).toStrictEqual(new Unavailable({ service: "billing" }))
        expect(error.failures.map((o) => [o._tag, o.key])).toStrictEqual([["Failure", "billing"]])
        expect(error.outcomes.map((o) => [o._tag, o.key])).toStrictEqual([
          ["Success", "profile"],
          ["Interrupted", "orders"],
          ["Failure", "billing"]
        ])
        expect(error.message).toContain("billing-service")
        expect(yield* log.get).toStrictEqual(["orders interrupted", "orders finalized"])
      }))

    it.effect("with report: true names a defect and lists the other genuine failures", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const error = yield* Effect.flip(FanOut.all([
          Effect.andThen(Deferred.succeed(started, undefined), Effect.never).pipe(
            Effect.onInterrupt(() => Effect.die("finalizer"))
          ),
          Effect.andThen(Deferred.await(started), Effect.die(new Error("crash")))
        ], { report: true }))
        expect(error.reason).toBe("Defect")
        expect(error.key).toBe(1)
        expect(error.error).toBeUndefined()
        expect(error.failures.map((o) => [o._tag, o.key])).toStrictEqual([["Defect", 1], ["Defect", 0]])
      }))

    it.effect("with report: true names a timed-out task, or the deadline", () =>
      Effect.gen(function*() {
        const timedOut = yield* Effect.forkChild(Effect.flip(FanOut.all({
          fast: Effect.succeed(1),
          slow: FanOut.labeled(Effect.never, "slow-service")
        }, { report: true, timeout: "1 second" })))
        yield* TestClock.adjust("1 second")
        const timeout = yield* Fiber.join(timedOut)
        expect([timeout.reason, timeout.key, timeout.label]).toStrictEqual(["Timeout", "slow", "slow-service"])
        expect(timeout.outcomes.map((o) => o._tag)).toStrictEqual(["Success", "TimedOut"])

        const late = yield* Effect.forkChild(Effect.flip(FanOut.all({
          fast: Effect.succeed(1),
          slow: Effect.never
        }, { report: true, deadline: "1 second" })))
        yield* TestClock.adjust("1 second")
        const deadline = yield* Fiber.join(late)
        expect([deadline.reason, deadline.key, deadline.label]).toStrictEqual(["Deadline", undefined, undefined])
        expect(deadline.failures).toStrictEqual([])
        expect(deadline.outcomes.map((o) => o._tag)).toStrictEqual(["Success", "Interrupted"])
        // An Interrupted outcome, with the fields of one (no TimedOut's reason left on it), cancelled by the deadline.
        expect(deadline.outcomes[1]).toStrictEqual({
          _tag: "Interrupted",
          key: "slow",
          label: "slow",
          durationMillis: 1000,
          attempts: 1,
          cancelReason: { _tag: "Deadline" }
        })
      }))

    it.effect("a task that interrupts itself stops the fan-out", () =>
      Effect.gen(function*() {
        const log = yield* makeLog
        const started = yield* Deferred.make<void>()
        const error = yield* Effect.flip(FanOut.all([
          hang(log, "other", started),
          Effect.andThen(Deferred.await(started), Effect.interrupt)
        ], { report: true }))
        expect([error.reason, error.key]).toStrictEqual(["Interrupted", 1])
        expect(yield* log.get).toStrictEqual(["other interrupted", "other finalized"])
      }))

    it.effect("with detach: true returns before a slow finalizer has finished, which still completes", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const cleaned = yield* Deferred.make<void>()
        const exit = yield* Effect.exit(FanOut.all([
          Effect.andThen(Deferred.succeed(started, undefined), Effect.never).pipe(
            Effect.onInterrupt(() => Effect.andThen(Deferred.await(release), Deferred.succeed(cleaned, undefined)))
          ),
          Effect.andThen(Deferred.await(started), Effect.fail("failed"))
        ], { detach: true }))
        expect(bare(exit)).toStrictEqual(Exit.fail("failed"))
        expect(yield* Deferred.isDone(cleaned)).toBe(false)
        yield* Deferred.succeed(release, undefined)
        yield* Deferred.await(cleaned)
      }))

    it.effect("without detach waits for a slow finalizer before returning", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const cleaning = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const cleaned = yield* Ref.make(false)
        const fiber = yield* Effect.forkChild(Effect.exit(FanOut.all([
          Effect.andThen(Deferred.succeed(started, undefined), Effect.never).pipe(
            Effect.onInterrupt(() =>
              Deferred.succeed(cleaning, undefined).pipe(
                Effect.andThen(Deferred.await(release)),
                Effect.andThen(Ref.set(cleaned, true))
              )
            )
          ),
          Effect.andThen(Deferred.await(started), Effect.fail("failed"))
        ])))
        yield* Deferred.await(cleaning)
        expect(fiber.pollUnsafe()).toBeUndefined()
        yield* Deferred.succeed(release, undefined)
        expect(bare(yield* Fiber.join(fiber))).toStrictEqual(Exit.fail("failed"))
        expect(yield* Ref.get(cleaned)).toBe(true)
      }))

    it.effect("interrupting the caller interrupts every task and waits for their finalizers", () =>
      Effect.gen(function*() {
        const log = yield* makeLog
        const started = [yield* Deferred.make<void>(), yield* Deferred.make<void>(), yield* Deferred.make<void>()]
        const fiber = yield* Effect.forkChild(
          FanOut.all([hang(log, "a", started[0]!), hang(log, "b", started[1]!), hang(log, "c", started[2]!)])
        )
        yield* Effect.forEach(started, Deferred.await)
        yield* Fiber.interrupt(fiber)
        const entries = yield* log.get
        for (const name of ["a", "b", "c"]) {
          expect(countBy(entries, `${name} interrupted`)).toBe(1)
          expect(countBy(entries, `${name} finalized`)).toBe(1)
        }
      }))

    it.effect("interrupting the caller waits for every task even with detach: true", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const cleaning = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const cleaned = yield* Ref.make(false)
        const fiber = yield* Effect.forkChild(FanOut.all([
          Effect.andThen(Deferred.succeed(started, undefined), Effect.never).pipe(
            Effect.onInterrupt(() =>
              Deferred.succeed(cleaning, undefined).pipe(
                Effect.andThen(Deferred.await(release)),
                Effect.andThen(Ref.set(cleaned, true))
              )
            )
          )
        ], { detach: true }))
        yield* Deferred.await(started)
        const interrupter = yield* Effect.forkChild(Fiber.interrupt(fiber))
        yield* Deferred.await(cleaning)
        expect(interrupter.pollUnsafe()).toBeUndefined()
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(interrupter)
        expect(yield* Ref.get(cleaned)).toBe(true)
      }))

    it.effect("fails with a FanOutTimeoutError naming the task when its timeout passes", () =>
      Effect.gen(function*() {
        const log = yield* makeLog
        const started = yield* Deferred.make<void>()
        const fiber = yield* Effect.forkChild(Effect.flip(FanOut.all([
          Effect.as(Effect.sleep("1 second"), 1),
          FanOut.labeled(Effect.never, "slow-service"),
          // started at 1 second, so it would time out later: the fan-out interrupts it first, while it hangs
          Effect.andThen(Effect.sleep("500 millis"), hang(log, "other", started))
        ], { timeout: "2 seconds", concurrency: 2 })))
        yield* TestClock.adjust("1999 millis")
        expect(fiber.pollUnsafe()).toBeUndefined()
        yield* TestClock.adjust("1 millis")
        const error = yield* Fiber.join(fiber)
        expect(error).toBeInstanceOf(FanOut.FanOutTimeoutError)
        expect(error._tag).toBe("FanOutTimeoutError")
        assert(error._tag === "FanOutTimeoutError")
        expect(error.reason).toBe("Timeout")
        expect(error.key).toBe(1)
        expect(error.label).toBe("slow-service")
        expect(Duration.toMillis(error.duration)).toBe(2000)
        expect(error.message).toContain("slow-service")
        expect(yield* log.get).toStrictEqual(["other interrupted", "other finalized"])
      }))

    it.effect("fails with a FanOutTimeoutError with reason Deadline when the deadline passes", () =>
      Effect.gen(function*() {
        const log = yield* makeLog
        const started = yield* Deferred.make<void>()
        const fiber = yield* Effect.forkChild(Effect.exit(FanOut.all({
          fast: Effect.as(Effect.sleep("1 second"), 1),
          slow: hang(log, "slow", started)
        }, { deadline: "5 seconds" })))
        yield* TestClock.adjust("4999 millis")
        expect(fiber.pollUnsafe()).toBeUndefined()
        yield* TestClock.adjust("1 millis")
        const exit = yield* Fiber.join(fiber)
        assertFailure(exit)
        expect(Cause.hasInterrupts(exit.cause)).toBe(false)
        const error = Cause.squash(exit.cause)
        expect(error).toBeInstanceOf(FanOut.FanOutTimeoutError)
        const timeout = error as FanOut.FanOutTimeoutError
        expect(timeout.reason).toBe("Deadline")
        expect(timeout.key).toBeUndefined()
        expect(Duration.toMillis(timeout.duration)).toBe(5000)
        expect(yield* log.get).toStrictEqual(["slow interrupted", "slow finalized"])
      }))

    it.effect("succeeds when every task ends before the deadline", () =>
      Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(
          FanOut.all([Effect.as(Effect.sleep("1 second"), 1)], { deadline: "2 seconds" })
        )
        yield* TestClock.adjust("1 second")
        expect(yield* Fiber.join(fiber)).toStrictEqual([1])
      }))

    it.effect("passes items and indices to forEach in order", () =>
      Effect.gen(function*() {
        const result = yield* FanOut.forEach(new Set(["a", "b", "c"]), (item, i) => Effect.succeed(`${i}:${item}`))
        expect(result).toStrictEqual(["0:a", "1:b", "2:c"])
        const dataLast = yield* pipe([1, 2], FanOut.forEach((n: number) => Effect.succeed(n * 10), { concurrency: 1 }))
        expect(dataLast).toStrictEqual([10, 20])
      }))
  })
})

// ---------------------------------------------------------------------------------------------------------------

describe("FanOut.settle", () => {
  it.effect("gives one outcome per task in a tuple, in input order", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(FanOut.settle([
        Effect.as(Effect.sleep("20 millis"), "late"),
        Effect.fail("nope"),
        Effect.succeed(3)
      ]))
      yield* TestClock.adjust("20 millis")
      const [a, b, c] = yield* Fiber.join(fiber)
      expect([a._tag, a.key, b._tag, b.key, c._tag, c.key]).toStrictEqual(["Success", 0, "Failure", 1, "Success", 2])
      expect(a._tag === "Success" && a.value).toBe("late")
      expect(b._tag === "Failure" && b.error).toBe("nope")
    }))

  it.effect("keeps a struct's keys and gives iterables an array", () =>
    Effect.gen(function*() {
      const struct = yield* FanOut.settle({ b: Effect.succeed(1), a: Effect.fail("x") })
      expect(Object.keys(struct)).toStrictEqual(["b", "a"])
      expect(struct.b._tag).toBe("Success")
      expect(struct.a._tag).toBe("Failure")
      const set = yield* FanOut.settle(new Set([Effect.succeed(1), Effect.succeed(2)]))
      expect(Array.isArray(set)).toBe(true)
      expect(set.map((o) => o._tag === "Success" ? o.value : undefined)).toStrictEqual([1, 2])
    }))

  it.effect("succeeds at once with the empty shape for empty input", () =>
    Effect.gen(function*() {
      expect(yield* FanOut.settle([])).toStrictEqual([])
      expect(yield* FanOut.settle()({})).toStrictEqual({})
      expect(yield* FanOut.settle(new Set<Effect.Effect<number>>(), { deadline: "1 second" })).toStrictEqual([])
      expect(yield* FanOut.settleForEach([], () => Effect.never)).toStrictEqual([])
    }))

  it.effect("has data-last forms", () =>
    Effect.gen(function*() {
      const tasks = [Effect.succeed(1), Effect.fail("e")] as const
      const a = yield* FanOut.settle()(tasks)
      const b = yield* pipe(tasks, FanOut.settle({ concurrency: 1 }))
      expect(a.map((o) => o._tag)).toStrictEqual(["Success", "Failure"])
      expect(b.map((o) => o._tag)).toStrictEqual(["Success", "Failure"])
      const c = yield* pipe([1, 2], FanOut.settleForEach((n: number) => n === 1 ? Effect.succeed(n) : Effect.fail(n)))
      expect(c.map((o) => o._tag)).toStrictEqual(["Success", "Failure"])
    }))

  it.effect("never fails and waits for every task", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(FanOut.settle([
        Effect.fail("fast failure"),
        Effect.die("fast defect"),
        Effect.as(Effect.sleep("1 second"), "slow")
      ]))
      yield* TestClock.adjust("999 millis")
      expect(fiber.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust("1 millis")
      const exit = yield* Fiber.await(fiber)
      assert(Exit.isSuccess(exit))
      expect(exit.value.map((o) => o._tag)).toStrictEqual(["Failure", "Defect", "Success"])
    }))

  it.effect("tells a typed failure, a defect and an interruption apart", () =>
    Effect.gen(function*() {
      for (const concurrency of [1, "unbounded"] as const) {
        const o = yield* FanOut.settle({
          ok: Effect.succeed(1),
          failed: Effect.fail(new NotFound({ id: 1 })),
          died: Effect.die(new Error("boom")),
          threw: Effect.sync((): number => {
            throw new Error("thrown")
          }),
          interrupted: Effect.interrupt,
          after: Effect.succeed(2)
        }, { concurrency })
        expect(o.ok).toMatchObject({ _tag: "Success", value: 1, key: "ok" })
        expect(o.failed).toMatchObject({ _tag: "Failure", error: new NotFound({ id: 1 }), key: "failed" })
        assert(o.failed._tag === "Failure")
        expect(failuresOf(o.failed.cause)).toStrictEqual([new NotFound({ id: 1 })])
        assert(o.died._tag === "Defect")
        expect((o.died.defect as Error).message).toBe("boom")
        expect(defectsOf(o.died.cause).map((d) => (d as Error).message)).toStrictEqual(["boom"])
        assert(o.threw._tag === "Defect")
        expect((o.threw.defect as Error).message).toBe("thrown")
        expect(o.interrupted).toMatchObject({ _tag: "Interrupted", key: "interrupted", attempts: 1 })
        expect(o.after).toMatchObject({ _tag: "Success", value: 2 })
      }
    }))

  it.effect("marks a task cut off by the deadline TimedOut with reason Deadline", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(FanOut.settle([Effect.never], { deadline: "1 second" }))
      yield* TestClock.adjust("1 second")
      const [o] = yield* Fiber.join(fiber)
      expect(o).toMatchObject({ _tag: "TimedOut", reason: "Deadline", key: 0, durationMillis: 1000, attempts: 1 })
    }))

  it.effect("keeps every other task's result when one task has a defect", () =>
    Effect.gen(function*() {
      for (const concurrency of [1, 2, "unbounded"] as const) {
        const fiber = yield* Effect.forkChild(FanOut.settle([
          Effect.as(Effect.sleep("10 millis"), "before"),
          Effect.die(new Error("crash")),
          Effect.as(Effect.sleep("10 millis"), "after"),
          Effect.fail("typed")
        ], { concurrency }))
        yield* TestClock.adjust("20 millis")
        const outcomes = yield* Fiber.join(fiber)
        expect(outcomes.map((o) => o._tag)).toStrictEqual(["Success", "Defect", "Success", "Failure"])
        expect(outcomes[0]._tag === "Success" && outcomes[0].value).toBe("before")
        expect(outcomes[2]._tag === "Success" && outcomes[2].value).toBe("after")
      }
    }))

  it.effect("keeps finished results at the deadline and marks the rest TimedOut", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const started = yield* Deferred.make<void>()
      const fiber = yield* Effect.forkChild(FanOut.settle({
        quick: Effect.succeed("quick"),
        medium: Effect.as(Effect.sleep("2 seconds"), "medium"),
        failed: Effect.andThen(Effect.sleep("1 second"), Effect.fail("bad")),
        slow: Effect.as(Effect.sleep("10 seconds"), "slow"),
        stuck: hang(log, "stuck", started)
      }, { deadline: "5 seconds" }))
      yield* TestClock.adjust("5 seconds")
      const o = yield* Fiber.join(fiber)
      expect(o.quick).toMatchObject({ _tag: "Success", value: "quick", durationMillis: 0 })
      expect(o.medium).toMatchObject({ _tag: "Success", value: "medium", durationMillis: 2000 })
      expect(o.failed).toMatchObject({ _tag: "Failure", error: "bad", durationMillis: 1000 })
      expect(o.slow).toMatchObject({ _tag: "TimedOut", reason: "Deadline", durationMillis: 5000 })
      expect(o.stuck).toMatchObject({ _tag: "TimedOut", reason: "Deadline" })
      expect(yield* log.get).toStrictEqual(["stuck interrupted", "stuck finalized"])
    }))

  it.effect("marks tasks that never started before the deadline TimedOut with no attempts", () =>
    Effect.gen(function*() {
      const starts = yield* Ref.make(0)
      const fiber = yield* Effect.forkChild(FanOut.settleForEach(
        [1, 2, 3],
        (n) => Effect.andThen(Ref.update(starts, (k) => k + 1), Effect.as(Effect.sleep("1 second"), n)),
        { concurrency: 1, deadline: "1500 millis" }
      ))
      yield* TestClock.adjust("1500 millis")
      const outcomes = yield* Fiber.join(fiber)
      expect(outcomes.map((o) => [o._tag, o.attempts, o.durationMillis])).toStrictEqual([
        ["Success", 1, 1000],
        ["TimedOut", 1, 500],
        ["TimedOut", 0, 0]
      ])
      expect(yield* Ref.get(starts)).toBe(2)
    }))

  it.effect("measures durationMillis with the TestClock", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(FanOut.settle([
        Effect.as(Effect.sleep("250 millis"), 1),
        Effect.andThen(Effect.sleep("1 second"), Effect.fail("late failure")),
        Effect.succeed(0)
      ], { concurrency: 2 }))
      yield* TestClock.adjust("1 second")
      const outcomes = yield* Fiber.join(fiber)
      expect(outcomes.map((o) => o.durationMillis)).toStrictEqual([250, 1000, 0])
    }))

  it.effect("gives a defect a stack with the message and the user's frames, without Effect's", () =>
    Effect.gen(function*() {
      const [o] = yield* FanOut.settle([
        Effect.sync((): number => {
          throw new Error("kaboom in user code")
        })
      ])
      assert(o._tag === "Defect")
      expect(o.stack).toContain("kaboom in user code")
      expect(o.stack).toContain("FanOut.test.ts")
      expect(o.stack).not.toMatch(/node_modules[\\/]effect/)
      expect(o.stack.split("\n").some((line) => /^\s+at /.test(line))).toBe(true)
    }))

  it.effect("leaves the library's own frames out of a defect's stack, keeping the user's", () =>
    Effect.gen(function*() {
      // `f` is called by the library as the item starts: its throw has the library's frames right under the user's.
      const [o] = yield* FanOut.settleForEach([1], (): Effect.Effect<number> => {
        throw new Error("thrown by the item's function")
      })
      assert(o?._tag === "Defect")
      const libraryDir = fileURLToPath(new URL("../src/", import.meta.url))
      expect((o.defect as Error).stack).toContain(libraryDir)
      const frames = o.stack.split("\n").filter((line) => /^\s+at /.test(line))
      expect(frames.some((line) => line.includes("FanOut.test.ts"))).toBe(true)
      expect(frames.filter((line) => line.includes(libraryDir))).toEqual([])
    }))

  it.effect("gives a non-Error defect a readable stack", () =>
    Effect.gen(function*() {
      const [o] = yield* FanOut.settle([Effect.die("plain string defect")])
      assert(o._tag === "Defect")
      expect(o.defect).toBe("plain string defect")
      expect(o.stack).toContain("plain string defect")
      expect(o.stack).not.toMatch(/node_modules[\\/]effect/)
    }))

  it.effect("labels tasks by struct key, FanOut.labeled and the forEach label option", () =>
    Effect.gen(function*() {
      const struct = yield* FanOut.settle({
        usage: Effect.succeed(1),
        billing: FanOut.labeled(Effect.succeed(2), "billing-v2")
      })
      expect([struct.usage.key, struct.usage.label]).toStrictEqual(["usage", "usage"])
      expect([struct.billing.key, struct.billing.label]).toStrictEqual(["billing", "billing-v2"])

      const tuple = yield* FanOut.settle([
        Effect.succeed(1),
        pipe(Effect.fail("x"), FanOut.labeled("pricing-eu"))
      ])
      expect(tuple.map((o) => [o.key, o.label])).toStrictEqual([[0, undefined], [1, "pricing-eu"]])

      const each = yield* FanOut.settleForEach(["eu", "us"], (region) => Effect.succeed(region), {
        label: (region, i) => `pricing-${region}-${i}`
      })
      expect(each.map((o) => [o.key, o.label])).toStrictEqual([[0, "pricing-eu-0"], [1, "pricing-us-1"]])

      // forEach's tasks are made as they start: a label they carry is known from then on.
      const named = yield* FanOut.settleForEach(["eu"], (region) =>
        FanOut.labeled(Effect.fail(region), `pricing-${region}`))
      expect(named.map((o) => [o.key, o.label, o._tag])).toStrictEqual([[0, "pricing-eu", "Failure"]])
    }))

  it.effect("one effect value can carry two labels", () =>
    Effect.gen(function*() {
      const shared = Effect.succeed(1)
      const outcomes = yield* FanOut.settle([FanOut.labeled(shared, "first"), FanOut.labeled(shared, "second")])
      expect(outcomes.map((o) => o.label)).toStrictEqual(["first", "second"])
    }))

  it.effect("retries typed failures by the schedule and counts attempts", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const flaky = Effect.flatMap(
        Ref.updateAndGet(calls, (n) => n + 1),
        (n) => n < 3 ? Effect.fail(`attempt ${n}`) : Effect.succeed(`ok after ${n}`)
      )
      const [ok, failing, fine] = yield* FanOut.settle([
        flaky,
        Effect.fail("always"),
        Effect.succeed(1)
      ], { retry: Schedule.recurs(4), concurrency: 1 })
      expect(ok).toMatchObject({ _tag: "Success", value: "ok after 3", attempts: 3 })
      expect(failing).toMatchObject({ _tag: "Failure", error: "always", attempts: 5 })
      expect(fine).toMatchObject({ _tag: "Success", attempts: 1 })
    }))

  it.effect("never retries a defect", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const [o] = yield* FanOut.settle([
        Effect.andThen(Ref.update(calls, (n) => n + 1), Effect.die("bug"))
      ], { retry: Schedule.recurs(5) })
      expect(o).toMatchObject({ _tag: "Defect", defect: "bug", attempts: 1 })
      expect(yield* Ref.get(calls)).toBe(1)
    }))

  it.effect("fail fast also retries before failing", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const flaky = Effect.flatMap(
        Ref.updateAndGet(calls, (n) => n + 1),
        (n) => n < 3 ? Effect.fail(`attempt ${n}`) : Effect.succeed(n)
      )
      expect(yield* FanOut.all([flaky], { retry: Schedule.recurs(2) })).toStrictEqual([3])
      const exit = yield* Effect.exit(FanOut.all([Effect.fail("always")], { retry: Schedule.recurs(2) }))
      expect(bare(exit)).toStrictEqual(Exit.fail("always"))
    }))

  it.effect("interrupting the caller interrupts every task", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const started = [yield* Deferred.make<void>(), yield* Deferred.make<void>()]
      const fiber = yield* Effect.forkChild(FanOut.settle([hang(log, "a", started[0]!), hang(log, "b", started[1]!)]))
      yield* Effect.forEach(started, Deferred.await)
      yield* Fiber.interrupt(fiber)
      const exit = yield* Fiber.await(fiber)
      expect(Exit.hasInterrupts(exit)).toBe(true)
      expect([...(yield* log.get)].sort()).toStrictEqual([
        "a finalized",
        "a interrupted",
        "b finalized",
        "b interrupted"
      ])
    }))
})

// ---------------------------------------------------------------------------------------------------------------

describe("finalizers of interrupted tasks", () => {
  const counted = (counts: Ref.Ref<ReadonlyArray<number>>, i: number, started: Deferred.Deferred<void>) =>
    Deferred.succeed(started, undefined).pipe(
      Effect.andThen(Effect.never),
      Effect.ensuring(Ref.update(counts, (c) => c.map((n, j) => j === i ? n + 1 : n)))
    )
  const setup = (n: number) =>
    Effect.all({
      counts: Ref.make<ReadonlyArray<number>>(new Array(n).fill(0)),
      started: Effect.all(Array.from({ length: n }, () => Deferred.make<void>()))
    })

  it.effect("run exactly once when a failure stops the fan-out", () =>
    Effect.gen(function*() {
      const { counts, started } = yield* setup(3)
      const exit = yield* Effect.exit(FanOut.all([
        counted(counts, 0, started[0]!),
        counted(counts, 1, started[1]!),
        counted(counts, 2, started[2]!),
        Effect.andThen(Effect.forEach(started, Deferred.await), Effect.fail("stop"))
      ]))
      expect(bare(exit)).toStrictEqual(Exit.fail("stop"))
      expect(yield* Ref.get(counts)).toStrictEqual([1, 1, 1])
    }))

  it.effect("run exactly once when a failure stops a bounded fan-out", () =>
    Effect.gen(function*() {
      const { counts, started } = yield* setup(2)
      const exit = yield* Effect.exit(FanOut.all([
        counted(counts, 0, started[0]!),
        counted(counts, 1, started[1]!),
        Effect.andThen(Effect.forEach(started, Deferred.await), Effect.fail("stop")),
        Effect.succeed("never started")
      ], { concurrency: 3 }))
      expect(bare(exit)).toStrictEqual(Exit.fail("stop"))
      expect(yield* Ref.get(counts)).toStrictEqual([1, 1])
    }))

  it.effect("run exactly once at a deadline", () =>
    Effect.gen(function*() {
      for (const mode of ["all", "settle"] as const) {
        const { counts, started } = yield* setup(3)
        const tasks = [
          counted(counts, 0, started[0]!),
          counted(counts, 1, started[1]!),
          counted(counts, 2, started[2]!)
        ]
        const fiber = yield* Effect.forkChild(Effect.exit(
          mode === "all"
            ? FanOut.all(tasks, { deadline: "1 second", concurrency: 2 })
            : FanOut.settle(tasks, { deadline: "1 second", concurrency: 2 })
        ))
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(fiber)
        // with concurrency 2 the third task never started
        expect(yield* Ref.get(counts)).toStrictEqual([1, 1, 0])
      }
    }))

  it.effect("run exactly once when the caller is interrupted", () =>
    Effect.gen(function*() {
      for (const concurrency of [1, 3] as const) {
        const { counts, started } = yield* setup(3)
        const fiber = yield* Effect.forkChild(FanOut.all([
          counted(counts, 0, started[0]!),
          counted(counts, 1, started[1]!),
          counted(counts, 2, started[2]!)
        ], { concurrency }))
        yield* Deferred.await(started[concurrency - 1]!)
        yield* Fiber.interrupt(fiber)
        expect(yield* Ref.get(counts)).toStrictEqual(concurrency === 1 ? [1, 0, 0] : [1, 1, 1])
      }
    }))
})

// ---------------------------------------------------------------------------------------------------------------

describe("no fiber outlives the call", () => {
  const mixed = (latch: Deferred.Deferred<void>) =>
    [
      Effect.succeed(1),
      Effect.as(Effect.sleep("10 millis"), 2),
      Effect.andThen(Deferred.succeed(latch, undefined), Effect.never),
      Effect.never.pipe(Effect.onInterrupt(() => Effect.sleep("5 millis")))
    ] as const

  it.effect("after success", () =>
    Effect.gen(function*() {
      for (const concurrency of [1, "unbounded"] as const) {
        const fiber = yield* Effect.forkChild(recordedExit(FanOut.all([
          Effect.succeed(1),
          Effect.as(Effect.sleep("10 millis"), 2),
          Effect.as(Effect.sleep("1 millis"), 3)
        ], { concurrency, timeout: "1 second" })))
        yield* TestClock.adjust("20 millis")
        const { exit, recorder } = yield* Fiber.join(fiber)
        expect(exit).toStrictEqual(Exit.succeed([1, 2, 3]))
        expect(recorder.started).toBeGreaterThan(0)
        expect(recorder.running).toBe(0)
      }
    }))

  it.effect("after a failure", () =>
    Effect.gen(function*() {
      for (const concurrency of [2, "unbounded"] as const) {
        const started = yield* Deferred.make<void>()
        const { exit, recorder } = yield* recordedExit(FanOut.all([
          Effect.andThen(Deferred.succeed(started, undefined), Effect.never),
          Effect.andThen(Deferred.await(started), Effect.fail("failed")),
          Effect.never
        ], { concurrency }))
        expect(bare(exit)).toStrictEqual(Exit.fail("failed"))
        expect(recorder.started).toBeGreaterThanOrEqual(2)
        expect(recorder.running).toBe(0)
      }
    }))

  it.effect("after a deadline, in both modes", () =>
    Effect.gen(function*() {
      for (const mode of ["all", "settle"] as const) {
        const latch = yield* Deferred.make<void>()
        const tasks = mixed(latch)
        const fanOut: Effect.Effect<unknown, unknown> = mode === "all"
          ? FanOut.all(tasks, { deadline: "1 second" })
          : FanOut.settle(tasks, { deadline: "1 second" })
        const fiber = yield* Effect.forkChild(recordedExit(fanOut))
        yield* TestClock.adjust("1 second")
        // the fourth task's interrupt handler sleeps: let it finish
        yield* TestClock.adjust("5 millis")
        const { exit, recorder } = yield* Fiber.join(fiber)
        expect(Exit.isSuccess(exit)).toBe(mode === "settle")
        // the three tasks that suspend, and the deadline's timer
        expect(recorder.started).toBeGreaterThanOrEqual(4)
        expect(recorder.running).toBe(0)
      }
    }))

  it.effect("after the caller is interrupted, in both modes", () =>
    Effect.gen(function*() {
      for (const mode of ["all", "settle"] as const) {
        const recorder = new Recorder()
        const latch = yield* Deferred.make<void>()
        const tasks = mixed(latch).slice(0, 3)
        const fanOut: Effect.Effect<unknown, unknown> = mode === "all" ? FanOut.all(tasks) : FanOut.settle(tasks)
        const fiber = yield* Effect.forkChild(recorded(fanOut, recorder))
        yield* Deferred.await(latch)
        yield* Fiber.interrupt(fiber)
        expect(recorder.started).toBeGreaterThanOrEqual(2)
        expect(recorder.running).toBe(0)
      }
    }))

  it.effect("a task that is an Exit makes no fiber; any other task makes one, as forkChild does", () =>
    Effect.gen(function*() {
      // Effect 4's Effect.succeed and Effect.fail are Exits: the fan-out reads them without running them on a fiber.
      const exits = yield* recordedExit(FanOut.all([Effect.succeed(1), Effect.succeed(2), Effect.succeed(3)]))
      expect(exits.exit).toStrictEqual(Exit.succeed([1, 2, 3]))
      expect(exits.recorder.started).toBe(0)
      const effects = yield* recordedExit(
        FanOut.all([Effect.sync(() => 1), Effect.as(Effect.yieldNow, 2), Effect.succeed(3)])
      )
      expect(effects.exit).toStrictEqual(Exit.succeed([1, 2, 3]))
      expect(effects.recorder.started).toBe(2)
      expect(effects.recorder.running).toBe(0)
    }))

  it.effect("fibers a task forks end with that task; with a bound, before the next task starts", () =>
    Effect.gen(function*() {
      // The forking task started first, then after another task, succeeding and failing.
      for (const concurrency of [1, "unbounded"] as const) {
        for (const before of [[], [Effect.void]]) {
          for (const outcome of ["parent done", "parent failed"] as const) {
            const ended = yield* Ref.make<ReadonlyArray<string>>([])
            const childRunning = yield* Deferred.make<void>()
            const forksAndEnds = Deferred.succeed(childRunning, undefined).pipe(
              Effect.andThen(Effect.never),
              Effect.onInterrupt(() => Ref.update(ended, (log) => [...log, "child interrupted"])),
              Effect.forkChild,
              Effect.andThen(Deferred.await(childRunning)),
              Effect.andThen(outcome === "parent done" ? Effect.succeed(outcome) : Effect.fail(outcome))
            )
            const next = Effect.suspend(() => Ref.get(ended))
            const outcomes = yield* FanOut.settle([...before, forksAndEnds, next], { concurrency })
            const [first, seenByNext] = outcomes.slice(before.length)
            expect(first).toMatchObject(
              outcome === "parent done" ? { _tag: "Success", value: outcome } : { _tag: "Failure", error: outcome }
            )
            // Unbounded, the next task runs alongside the forking one and may look before the child has ended.
            if (concurrency === 1) expect(seenByNext).toMatchObject({ _tag: "Success", value: ["child interrupted"] })
            expect(yield* Ref.get(ended)).toEqual(["child interrupted"])
          }
        }
      }
    }))

  it.effect("every task's fiber has ended when settle returns", () =>
    Effect.gen(function*() {
      const fibers = yield* Ref.make<ReadonlyArray<Fiber.Fiber<unknown, unknown>>>([])
      const task = (ms: number) =>
        Effect.withFiber<void>((fiber) => Ref.update(fibers, (fs) => [...fs, fiber])).pipe(
          Effect.andThen(Effect.sleep(Duration.millis(ms)))
        )
      const fiber = yield* Effect.forkChild(FanOut.settle([task(10), task(2000), task(0), task(30)], {
        deadline: "100 millis",
        concurrency: 2
      }))
      yield* TestClock.adjust("100 millis")
      yield* Fiber.join(fiber)
      const seen = yield* Ref.get(fibers)
      expect(seen.length).toBe(4)
      expect(seen.filter((f) => f.pollUnsafe() === undefined)).toStrictEqual([])
    }))
})

// ---------------------------------------------------------------------------------------------------------------

describe("invalid options", () => {
  const expectInvalid = (exit: Exit.Exit<unknown, unknown>, option: string) => {
    const defect = defectOf(exit)
    expect(defect).toBeInstanceOf(FanOut.InvalidOptionError)
    expect((defect as FanOut.InvalidOptionError).option).toBe(option)
    expect((defect as FanOut.InvalidOptionError).message).toContain(option)
  }

  const cases: ReadonlyArray<readonly [string, unknown]> = [
    ["concurrency", 0],
    ["concurrency", -1],
    ["concurrency", 1.5],
    ["concurrency", NaN],
    ["concurrency", "x"],
    ["discard", "yes"],
    ["timeout", -1],
    ["timeout", NaN],
    ["timeout", "-5 seconds"],
    ["deadline", -1],
    ["deadline", NaN],
    ["deadline", "-5 seconds"],
    ["deadline", "banana"],
    ["deadline", "5 second "]
  ]

  it.effect.each(cases)("dies at once naming %s when it is %s", ([option, value]) =>
    Effect.gen(function*() {
      const starts = yield* Ref.make(0)
      const task = Effect.andThen(Ref.update(starts, (n) => n + 1), Effect.never)
      const options: FanOut.AllOptions = { [option]: value }
      const runs: ReadonlyArray<Effect.Effect<unknown, unknown>> = [
        FanOut.all([task, task], options),
        FanOut.settle([task], options as FanOut.Options),
        FanOut.forEach([1], () => task, options),
        FanOut.settleForEach([1], () => task, options as FanOut.Options),
        FanOut.all(options)([task]),
        FanOut.settle(options as FanOut.Options)({ a: task })
      ]
      for (const run of runs) expectInvalid(yield* Effect.exit(run), option)
      expect(yield* Ref.get(starts)).toBe(0)
    }))

  describe("options of the Effect 3 line that Effect 4 does not have", () => {
    const options = (o: object) => o as FanOut.Options
    const combinators = (task: Effect.Effect<never>, o: FanOut.Options) => [
      FanOut.all([task], o),
      FanOut.forEach([1], () => task, o),
      FanOut.settle([task], o),
      FanOut.settleForEach([1], () => task, o),
      FanOut.quorum([task], 1, o),
      FanOut.firstSuccess([task], o),
      Stream.runDrain(FanOut.stream([task], o))
    ]

    it.effect("batching is an InvalidOptionError naming it, saying that RequestResolver batches by itself", () =>
      Effect.gen(function*() {
        const starts = yield* Ref.make(0)
        const task = Effect.andThen(Ref.update(starts, (n) => n + 1), Effect.never)
        for (const batching of [true, false, "inherit"]) {
          for (const run of combinators(task, options({ batching }))) {
            const exit = yield* Effect.exit(run)
            expectInvalid(exit, "batching")
            expect((defectOf(exit) as Error).message).toContain(
              "on Effect 4, requests made by concurrent tasks are batched by their RequestResolver's own window, " +
                "as with Effect.all: no option is needed"
            )
          }
        }
        expect(yield* Ref.get(starts)).toBe(0)
      }))

    it.effect("concurrency: \"inherit\" is an InvalidOptionError naming concurrency", () =>
      Effect.gen(function*() {
        const starts = yield* Ref.make(0)
        const task = Effect.andThen(Ref.update(starts, (n) => n + 1), Effect.never)
        for (const run of combinators(task, options({ concurrency: "inherit" }))) {
          const exit = yield* Effect.exit(run)
          expectInvalid(exit, "concurrency")
          expect((defectOf(exit) as Error).message).toContain(`"inherit"`)
        }
        expect(yield* Ref.get(starts)).toBe(0)
      }))
  })

  it.effect("takes a duration in any of Effect's units, nanos included", () =>
    Effect.gen(function*() {
      for (const timeout of ["5 nanos", "1 nano", "2 micros", "1 week", [0, 5]] as const) {
        expect(yield* FanOut.all([Effect.succeed(1)], { timeout, deadline: timeout })).toEqual([1])
      }
      const unreadable = yield* Effect.exit(FanOut.all([Effect.succeed(1)], { timeout: "5 fortnights" as "5 weeks" }))
      expectInvalid(unreadable, "timeout")
      expect(defectOf(unreadable)).toMatchObject({ message: expect.stringContaining("a unit such as") })
    }))

  it.effect("a misused labeled (a non-Effect, a label that is not a string) is reported before anything runs", () =>
    Effect.gen(function*() {
      const starts = yield* Ref.make(0)
      const task = Effect.andThen(Ref.update(starts, (n) => n + 1), Effect.never)
      const notAnEffect = FanOut.labeled(5 as unknown as Effect.Effect<number>, "five")
      const notALabel = FanOut.labeled(task, 5 as unknown as string)
      expectInvalid(yield* Effect.exit(FanOut.all([task, notAnEffect])), "tasks")
      expectInvalid(yield* Effect.exit(FanOut.settle({ task, notAnEffect })), "tasks")
      expectInvalid(yield* Effect.exit(FanOut.settle([notALabel, task])), "label")
      expect(defectOf(yield* Effect.exit(FanOut.all([notAnEffect])))).toMatchObject({
        message: expect.stringContaining(`labeled("five") was given a non-Effect: 5`)
      })
      expect(yield* Ref.get(starts)).toBe(0)
      // Run on its own, it dies with the same error.
      expectInvalid(yield* Effect.exit(notAnEffect), "tasks")
    }))

  it.effect("forEach: a label function that does not return a string is reported before anything runs", () =>
    Effect.gen(function*() {
      const starts = yield* Ref.make(0)
      const task = Effect.andThen(Ref.update(starts, (n) => n + 1), Effect.never)
      const label = (n: number) => n as unknown as string
      const exit = yield* Effect.exit(FanOut.settleForEach([1, 2], () => task, { label }))
      expectInvalid(exit, "label")
      expect(defectOf(exit)).toMatchObject({ message: expect.stringContaining("returned 1 for item 0") })
      expectInvalid(yield* Effect.exit(FanOut.forEach([1], () => task, { label })), "label")
      expect(yield* Ref.get(starts)).toBe(0)
    }))

  it.effect("forEach takes a string as the iterable of its characters, as Effect.forEach does", () =>
    Effect.gen(function*() {
      expect(yield* Effect.forEach("abc", (c) => Effect.succeed(c.toUpperCase()))).toEqual(["A", "B", "C"])
      expect(yield* FanOut.forEach("abc", (c) => Effect.succeed(c.toUpperCase()))).toEqual(["A", "B", "C"])
      const [first] = yield* FanOut.settleForEach("é!", (c, i) => Effect.succeed(`${i}:${c}`))
      expect(first).toMatchObject({ _tag: "Success", value: "0:é", key: 0 })
    }))

  it.effect("settle: report without required is an InvalidOptionError (settle cannot fail, there is nothing to report)", () =>
    Effect.gen(function*() {
      const starts = yield* Ref.make(0)
      const task = Effect.andThen(Ref.update(starts, (n) => n + 1), Effect.never)
      expectInvalid(yield* Effect.exit(FanOut.settle([task], { report: true })), "report")
      expectInvalid(yield* Effect.exit(FanOut.settleForEach([1], () => task, { report: true })), "report")
      expect(yield* Ref.get(starts)).toBe(0)
      // With required it is the documented FanOutFailure; report: false is as good as absent.
      const exit = yield* Effect.exit(FanOut.settle([Effect.fail("down")], { required: [0], report: true }))
      expect(Exit.isFailure(exit) && Cause.squash(exit.cause)).toBeInstanceOf(FanOut.FanOutFailure)
      expect(yield* FanOut.settle([Effect.succeed(1)], { report: false })).toMatchObject([{ value: 1 }])
    }))

  it.effect("dies with InvalidOptionError for a non-Effect entry in a tuple of tasks", () =>
    Effect.gen(function*() {
      const starts = yield* Ref.make(0)
      const task = Effect.andThen(Ref.update(starts, (n) => n + 1), Effect.never)
      const notAnEffect = (u: unknown) => u as Effect.Effect<never>
      expectInvalid(yield* Effect.exit(FanOut.all([task, notAnEffect(42)])), "tasks")
      expectInvalid(yield* Effect.exit(FanOut.settle([task, notAnEffect("nope")])), "tasks")
      expectInvalid(yield* Effect.exit(FanOut.settle(new Set([task, notAnEffect(null)]))), "tasks")
      expect(yield* Ref.get(starts)).toBe(0)
    }))

  it.effect("dies with InvalidOptionError naming tasks for input that is neither tasks nor options", () =>
    Effect.gen(function*() {
      const asTasks = (u: unknown) => u as ReadonlyArray<Effect.Effect<never>>
      for (const input of [null, 42, "ab", { a: 1 }]) {
        const all: unknown = FanOut.all(asTasks(input))
        const settle: unknown = FanOut.settle(asTasks(input))
        expect([Effect.isEffect(all), Effect.isEffect(settle)]).toEqual([true, true])
        expectInvalid(yield* Effect.exit(all as Effect.Effect<unknown>), "tasks")
        expectInvalid(yield* Effect.exit(settle as Effect.Effect<unknown>), "tasks")
      }
    }))

  it.effect("dies with InvalidOptionError naming an option the combinator does not take", () =>
    Effect.gen(function*() {
      const starts = yield* Ref.make(0)
      const task = Effect.andThen(Ref.update(starts, (n) => n + 1), Effect.never)
      const options = (o: object) => o as FanOut.AllOptions
      expectInvalid(yield* Effect.exit(FanOut.all([task], options({ concurency: 4 }))), "concurency")
      expectInvalid(yield* Effect.exit(FanOut.settle([task], options({ detach: true }) as FanOut.Options)), "detach")
      expectInvalid(yield* Effect.exit(FanOut.quorum([task], 1, options({ required: [0] }))), "required")
      const exit = yield* Effect.exit(FanOut.all([task], options({ required: [0] })))
      expect(defectOf(exit)).toMatchObject({
        message: expect.stringContaining("is not an option of FanOut.all (its options: concurrency")
      })
      // Effect.all's `mode` points to settle.
      const mode = yield* Effect.exit(FanOut.all([task], options({ mode: "either" })))
      expectInvalid(mode, "mode")
      expect(defectOf(mode)).toMatchObject({ message: expect.stringContaining("use FanOut.settle") })
      // An option set to undefined is as good as absent.
      expect(yield* FanOut.all([Effect.succeed(1)], options({ detach: undefined, label: undefined }))).toEqual([1])
      expect(yield* Ref.get(starts)).toBe(0)
    }))

  it.effect("forEach: a function that returns a non-Effect or throws ends that item's task as a defect", () =>
    Effect.gen(function*() {
      const f = (n: number) => (n === 2 ? n : Effect.succeed(n)) as Effect.Effect<number>
      expectInvalid(yield* Effect.exit(FanOut.forEach([1, 2], f)), "f")
      const [one, two, three] = yield* FanOut.settleForEach([1, 2, 3], (n) => {
        if (n === 3) throw new Error("thrown by f")
        return f(n)
      })
      expect(one).toMatchObject({ _tag: "Success", value: 1 })
      assert(two?._tag === "Defect" && two.defect instanceof FanOut.InvalidOptionError)
      expect(two.defect.option).toBe("f")
      expect(two.defect.message).toContain("returned a non-Effect for item 1: 2")
      assert(three?._tag === "Defect")
      expect(three.defect).toStrictEqual(new Error("thrown by f"))
      // A misused `labeled` returned by f is that item's defect too, with no label.
      const [misused] = yield* FanOut.settleForEach(
        [1],
        () => FanOut.labeled(5 as unknown as Effect.Effect<number>, "five")
      )
      assert(misused?._tag === "Defect" && misused.defect instanceof FanOut.InvalidOptionError)
      expect([misused.defect.option, misused.label]).toEqual(["tasks", undefined])
    }))

  it.effect("forEach calls its function as each item starts: never for items a fail-fast fan-out did not start", () =>
    Effect.gen(function*() {
      const called: Array<number> = []
      const exit = yield* Effect.exit(FanOut.forEach([1, 2, 3, 4], (n) => {
        called.push(n)
        return n === 2 ? Effect.fail("stop") : Effect.succeed(n)
      }, { concurrency: 1 }))
      expect(bare(exit)).toStrictEqual(Exit.fail("stop"))
      expect(called).toStrictEqual([1, 2])
    }))
})

describe("time-outs, wrapped errors and ambiguous shapes", () => {
  it.effect("a caller that cannot be interrupted gets its answer as soon as the tasks end, not at the deadline", () =>
    Effect.gen(function*() {
      // A fan-out in a finalizer or inside `Effect.uninterruptible`: its deadline timer must still stop when the tasks
      // are done (else it would hold the fan-out until the deadline, and `all` would then fail with it).
      const tasks = [Effect.succeed(1), Effect.as(Effect.sleep("5 millis"), 2)] as const
      const runs: ReadonlyArray<Effect.Effect<ReadonlyArray<unknown>, unknown>> = [
        FanOut.all(tasks, { deadline: "1 second" }),
        Effect.map(FanOut.settle(tasks, { deadline: "1 second" }), (outcomes) => outcomes.map((o) => o._tag)),
        FanOut.forEach([1, 2], (n) => Effect.as(Effect.sleep("5 millis"), n), { deadline: "1 second" }),
        Effect.map(FanOut.quorum(tasks, 2, { deadline: "1 second" }), (winners) => winners.map((w) => w.value))
      ]
      const fibers = yield* Effect.forEach(runs, (run) => Effect.forkChild(Effect.exit(Effect.uninterruptible(run))))
      yield* TestClock.adjust("5 millis")
      expect(fibers.map((fiber) => fiber.pollUnsafe())).toStrictEqual([
        Exit.succeed(Exit.succeed([1, 2])),
        Exit.succeed(Exit.succeed(["Success", "Success"])),
        Exit.succeed(Exit.succeed([1, 2])),
        Exit.succeed(Exit.succeed([1, 2]))
      ])
      // The deadline still fails an uninterruptible fan-out whose tasks are not done by then.
      const late = yield* Effect.forkChild(Effect.exit(Effect.uninterruptible(
        FanOut.all([Effect.sleep("2 seconds")], { deadline: "1 second" })
      )))
      yield* TestClock.adjust("2 seconds")
      const exit = yield* Fiber.join(late)
      expect(Exit.isFailure(exit) && Cause.squash(exit.cause)).toMatchObject({
        _tag: "FanOutTimeoutError",
        reason: "Deadline"
      })
    }))

  it("a time-out's message gives its duration with a unit, zero included", () => {
    const deadline = (duration: Duration.Duration) =>
      new FanOut.FanOutTimeoutError({ reason: "Deadline", key: undefined, label: undefined, duration }).message
    expect(deadline(Duration.zero)).toBe("fan-out deadline of 0ms passed")
    expect(deadline(Duration.millis(1500))).toBe("fan-out deadline of 1s 500ms passed")
    const timeout = new FanOut.FanOutTimeoutError({
      reason: "Timeout",
      key: 2,
      label: undefined,
      duration: Duration.zero
    })
    expect(timeout.message).toBe("task 2 timed out after 0ms")
  })

  it.effect("settle: a task past its own timeout is TimedOut with reason Timeout", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(FanOut.settle({
        ok: Effect.succeed(1),
        slow: Effect.as(Effect.sleep("3 seconds"), 2)
      }, { timeout: "2 seconds" }))
      yield* TestClock.adjust("2 seconds")
      const o = yield* Fiber.join(fiber)
      expect(o.ok._tag).toBe("Success")
      expect(o.slow).toMatchObject({ _tag: "TimedOut", reason: "Timeout", durationMillis: 2000 })
      expect(Outcome.failures(o)).toStrictEqual([])
    }))

  it.effect("settleForEach: timed-out attempts are retried and the last one is TimedOut", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(
        FanOut.settleForEach([1], () => Effect.never, { timeout: "1 second", retry: Schedule.recurs(1) })
      )
      yield* TestClock.adjust("2 seconds")
      const [o] = yield* Fiber.join(fiber)
      expect(o).toMatchObject({ _tag: "TimedOut", reason: "Timeout", attempts: 2 })
    }))

  it.effect("all: a struct with a non-Effect entry dies with InvalidOptionError naming tasks", () =>
    Effect.gen(function*() {
      const result: unknown = FanOut.all({ a: Effect.succeed(1), b: 2 } as any)
      expect(Effect.isEffect(result)).toBe(true)
      const exit = yield* Effect.exit(result as Effect.Effect<unknown>)
      expect(defectOf(exit)).toMatchObject({ _tag: "InvalidOptionError", option: "tasks" })
    }))

  it.effect("outcomes hold the very object a task failed or died with, inside a span", () =>
    Effect.gen(function*() {
      const error = new Error("typed")
      const defect = new Error("crash")
      const [failed, crashed] = yield* FanOut.settle([Effect.fail(error), Effect.die(defect)]).pipe(
        Effect.withSpan("around")
      )
      expect(failed._tag === "Failure" && failed.error).toBe(error)
      expect(crashed._tag === "Defect" && crashed.defect).toBe(defect)
    }))

  it.effect("an empty struct and a Record<string, Effect> are tasks, in the types as at run time", () =>
    Effect.gen(function*() {
      const empty = yield* FanOut.all({})
      const tasks: Record<string, Effect.Effect<number>> = { a: Effect.succeed(1) }
      const dynamic = yield* FanOut.all(tasks)
      const settled = yield* FanOut.settle(tasks)
      expect([empty, dynamic, settled.a?._tag]).toEqual([{}, { a: 1 }, "Success"])
    }))
})

// ---------------------------------------------------------------------------------------------------------------

describe("discard", () => {
  it.effect("all and forEach succeed with void once every task has succeeded", () =>
    Effect.gen(function*() {
      const ran = yield* Ref.make<ReadonlyArray<number>>([])
      const write = (i: number) => Effect.as(Ref.update(ran, (r) => [...r, i]), i)
      const all: void = yield* FanOut.all([write(0), write(1)], { discard: true })
      const each: void = yield* FanOut.forEach([2, 3], write, { discard: true, concurrency: 1 })
      expect(all).toBeUndefined()
      expect(each).toBeUndefined()
      expect(yield* Ref.get(ran)).toEqual([0, 1, 2, 3])
    }))

  it.effect("fails fast as without it: the first failure, the siblings interrupted", () =>
    Effect.gen(function*() {
      const interrupted = yield* Ref.make(false)
      const exit = yield* Effect.exit(FanOut.forEach([0, 1], (i) =>
        i === 0
          ? Effect.onInterrupt(Effect.never, () => Ref.set(interrupted, true))
          : Effect.fail(new NotFound({ id: i })), { discard: true }))
      expect(bare(exit)).toEqual(Exit.fail(new NotFound({ id: 1 })))
      expect(yield* Ref.get(interrupted)).toBe(true)
    }))
})
