import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber, Option, Ref, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { Cancellation, FanOut } from "../src/index.js"
import type { Outcome } from "../src/index.js"
import { stoppingNow } from "../src/internal/cancel.js"

/** A task that waits forever and records, in its finalizer, why it was interrupted. */
const waiting = (seen: Ref.Ref<Array<Option.Option<Cancellation.CancelReason>>>, started?: Deferred.Deferred<void>) =>
  Effect.gen(function*() {
    if (started !== undefined) yield* Deferred.succeed(started, undefined)
    return yield* Effect.never
  }).pipe(Effect.onExit((exit) => Ref.update(seen, (all) => [...all, Cancellation.ofExit(exit)])))

const reasonOf = (outcome: Outcome.Outcome<unknown, unknown>) =>
  outcome._tag === "Interrupted" ? outcome.cancelReason : `not interrupted: ${outcome._tag}`

describe("Cancellation", () => {
  it.effect("fail fast: the siblings read the failed task's key and label in their finalizers", () =>
    Effect.gen(function*() {
      const seen = yield* Ref.make<Array<Option.Option<Cancellation.CancelReason>>>([])
      const a = yield* Deferred.make<void>()
      const b = yield* Deferred.make<void>()
      const bad = Effect.andThen(Effect.all([Deferred.await(a), Deferred.await(b)]), Effect.fail("boom"))
      const exit = yield* Effect.exit(
        FanOut.all({ a: waiting(seen, a), b: waiting(seen, b), bad: FanOut.labeled(bad, "Bad one") })
      )
      expect(Exit.isFailure(exit)).toBe(true)
      const reason: Cancellation.CancelReason = { _tag: "SiblingFailed", key: "bad", label: "Bad one" }
      expect(yield* Ref.get(seen)).toEqual([Option.some(reason), Option.some(reason)])
    }))

  it.effect("an Interrupted outcome holds the reason, also for a task that never started", () =>
    Effect.gen(function*() {
      const seen = yield* Ref.make<Array<Option.Option<Cancellation.CancelReason>>>([])
      const result = yield* Effect.flip(
        FanOut.all([waiting(seen), Effect.fail("boom"), waiting(seen)], { concurrency: 2, report: true })
      )
      const reason = { _tag: "SiblingFailed", key: 1, label: undefined }
      expect(result.outcomes.map(reasonOf)).toEqual([reason, "not interrupted: Failure", reason])
      expect(result.outcomes[2]!.attempts).toBe(0)
    }))

  it.effect("quorum reached", () =>
    Effect.gen(function*() {
      const seen = yield* Ref.make<Array<Option.Option<Cancellation.CancelReason>>>([])
      yield* FanOut.quorum([Effect.succeed(1), waiting(seen), Effect.succeed(2)], 2)
      expect(yield* Ref.get(seen)).toEqual([Option.some({ _tag: "QuorumReached" })])
    }))

  it.effect("a required task failed (settle)", () =>
    Effect.gen(function*() {
      const seen = yield* Ref.make<Array<Option.Option<Cancellation.CancelReason>>>([])
      const started = yield* Deferred.make<void>()
      const core = Effect.andThen(Deferred.await(started), Effect.fail("down"))
      yield* Effect.exit(FanOut.settle({ extra: waiting(seen, started), core }, { required: ["core"] }))
      expect(yield* Ref.get(seen)).toEqual([Option.some({ _tag: "RequiredFailed", key: "core", label: "core" })])
    }))

  it.effect("the task's own timeout and the fan-out's deadline (TestClock)", () =>
    Effect.gen(function*() {
      const seen = yield* Ref.make<Array<Option.Option<Cancellation.CancelReason>>>([])
      const fiber = yield* Effect.forkChild(FanOut.settle([waiting(seen)], { timeout: "100 millis" }))
      yield* Effect.yieldNow
      yield* TestClock.adjust("100 millis")
      yield* Fiber.join(fiber)
      const later = yield* Effect.forkChild(FanOut.settle([waiting(seen)], { deadline: "200 millis" }))
      yield* Effect.yieldNow
      yield* TestClock.adjust("200 millis")
      yield* Fiber.join(later)
      expect(yield* Ref.get(seen)).toEqual([Option.some({ _tag: "Timeout" }), Option.some({ _tag: "Deadline" })])
    }))

  it.effect("the caller", () =>
    Effect.gen(function*() {
      const seen = yield* Ref.make<Array<Option.Option<Cancellation.CancelReason>>>([])
      const started = yield* Deferred.make<void>()
      const fiber = yield* Effect.forkChild(FanOut.all([waiting(seen, started)]))
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      expect(yield* Ref.get(seen)).toEqual([Option.some({ _tag: "Caller" })])
    }))

  it.effect("a hedge lost", () =>
    Effect.gen(function*() {
      const seen = yield* Ref.make<Array<Option.Option<Cancellation.CancelReason>>>([])
      const calls = yield* Ref.make(0)
      // The first attempt waits forever; the backup, started 50 ms later, answers.
      const attempt = Effect.gen(function*() {
        const n = yield* Ref.getAndUpdate(calls, (k) => k + 1)
        return n === 0 ? yield* waiting(seen) : "backup"
      })
      const fiber = yield* Effect.forkChild(attempt.pipe(FanOut.hedge({ delay: "50 millis", max: 2 })))
      yield* Effect.yieldNow
      yield* TestClock.adjust("50 millis")
      expect(yield* Fiber.join(fiber)).toBe("backup")
      expect(yield* Ref.get(seen)).toEqual([Option.some({ _tag: "HedgeLost" })])
    }))

  it.effect("a hedge lost to a fatal failure of another attempt", () =>
    Effect.gen(function*() {
      const seen = yield* Ref.make<Array<Option.Option<Cancellation.CancelReason>>>([])
      const calls = yield* Ref.make(0)
      // The first attempt waits forever; the backup, started 50 ms later, fails with what `nonFatal` refuses.
      const attempt = Effect.gen(function*() {
        const n = yield* Ref.getAndUpdate(calls, (k) => k + 1)
        return n === 0 ? yield* waiting(seen) : yield* Effect.fail("not found" as const)
      })
      const fiber = yield* Effect.forkChild(
        attempt.pipe(FanOut.hedge({ delay: "50 millis", max: 2, nonFatal: (error) => error !== "not found" }))
      )
      yield* Effect.yieldNow
      yield* TestClock.adjust("50 millis")
      const exit = yield* Fiber.await(fiber)
      expect(exit).toStrictEqual(Exit.fail("not found"))
      expect(yield* Ref.get(seen)).toEqual([Option.some({ _tag: "HedgeLost" })])
    }))

  it.effect("no reason for a task that interrupts itself", () =>
    Effect.gen(function*() {
      const [outcome] = yield* FanOut.settle([Effect.interrupt])
      expect(outcome).toMatchObject({ _tag: "Interrupted", cancelReason: undefined })
      expect(Cancellation.ofExit(Exit.succeed(1))).toEqual(Option.none())
    }))

  it.effect("fan-outs stopping at once on fibers of their own: each task reads its own fan-out's reason", () =>
    Effect.gen(function*() {
      const seen = yield* Ref.make<Array<Option.Option<Cancellation.CancelReason>>>([])
      const stopsFor = (key: string) =>
        Effect.gen(function*() {
          const started = yield* Deferred.make<void>()
          const mine = yield* Ref.make<Array<Option.Option<Cancellation.CancelReason>>>([])
          yield* Effect.exit(
            FanOut.all({
              wait: waiting(mine, started),
              [key]: Effect.andThen(Deferred.await(started), Effect.fail(key))
            })
          )
          const read = yield* Ref.get(mine)
          yield* Ref.update(seen, (all) => [...all, ...read])
        })
      yield* Effect.all([stopsFor("x"), stopsFor("y")], { concurrency: "unbounded" })
      expect(yield* Ref.get(seen)).toEqual([
        Option.some({ _tag: "SiblingFailed", key: "x", label: "x" }),
        Option.some({ _tag: "SiblingFailed", key: "y", label: "y" })
      ])
      expect(stoppingNow()).toBe(0)
    }))

  it.effect("one fiber, fan-outs in a row: each reason is its own fan-out's, none held once it answered", () =>
    Effect.gen(function*() {
      const seen = yield* Ref.make<Array<Option.Option<Cancellation.CancelReason>>>([])
      const started = yield* Deferred.make<void>()
      yield* Effect.exit(
        FanOut.all({ w: waiting(seen, started), a: Effect.andThen(Deferred.await(started), Effect.fail("a")) })
      )
      expect(stoppingNow()).toBe(0)
      const again = yield* Deferred.make<void>()
      const core = Effect.andThen(Deferred.await(again), Effect.fail("down"))
      yield* Effect.exit(FanOut.settle({ extra: waiting(seen, again), core }, { required: ["core"] }))
      expect(stoppingNow()).toBe(0)
      yield* FanOut.quorum([waiting(seen), Effect.succeed(1)], 1)
      expect(yield* Ref.get(seen)).toEqual([
        Option.some({ _tag: "SiblingFailed", key: "a", label: "a" }),
        Option.some({ _tag: "RequiredFailed", key: "core", label: "core" }),
        Option.some({ _tag: "QuorumReached" })
      ])
      expect(stoppingNow()).toBe(0)
    }))

  it.effect("detached: a task that ends after the fan-out answered still reads why", () =>
    Effect.gen(function*() {
      const started = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const read = yield* Deferred.make<Option.Option<Cancellation.CancelReason>>()
      // Its finalizer runs only once the test releases it, after the fan-out has answered.
      const slow = Effect.andThen(Deferred.succeed(started, undefined), Effect.never).pipe(
        Effect.onExit((exit) =>
          Effect.andThen(Deferred.await(release), Deferred.succeed(read, Cancellation.ofExit(exit)))
        )
      )
      const bad = Effect.andThen(Deferred.await(started), Effect.fail("boom"))
      const exit = yield* Effect.exit(FanOut.all({ slow, bad }, { detach: true }))
      expect(Exit.isFailure(exit)).toBe(true)
      expect(yield* Deferred.isDone(read)).toBe(false)
      yield* Deferred.succeed(release, undefined)
      expect(yield* Deferred.await(read)).toEqual(Option.some({ _tag: "SiblingFailed", key: "bad", label: "bad" }))
      expect(stoppingNow()).toBe(0)
    }))

  it.effect("nested: the enclosing fan-out's task reads the sibling's failure, the nested fan-out's tasks the caller", () =>
    Effect.gen(function*() {
      const outer = yield* Ref.make<Array<Option.Option<Cancellation.CancelReason>>>([])
      const inner = yield* Ref.make<Array<Option.Option<Cancellation.CancelReason>>>([])
      const started = yield* Deferred.make<void>()
      const nested = FanOut.all([waiting(inner, started), waiting(inner)]).pipe(
        Effect.onExit((exit) => Ref.update(outer, (all) => [...all, Cancellation.ofExit(exit)]))
      )
      const bad = Effect.andThen(Deferred.await(started), Effect.fail("boom"))
      yield* Effect.exit(FanOut.all({ nested, bad }))
      expect(yield* Ref.get(outer)).toEqual([Option.some({ _tag: "SiblingFailed", key: "bad", label: "bad" })])
      expect(yield* Ref.get(inner)).toEqual([Option.some({ _tag: "Caller" }), Option.some({ _tag: "Caller" })])
      expect(stoppingNow()).toBe(0)
    }))

  it.effect("attempts on fibers of their own (hedge; retry with a timeout) read why the fan-out stopped", () =>
    Effect.gen(function*() {
      const hedged = yield* Ref.make<Array<Option.Option<Cancellation.CancelReason>>>([])
      const started = yield* Deferred.make<void>()
      const bad = Effect.andThen(Deferred.await(started), Effect.die("boom"))
      yield* Effect.exit(FanOut.all({ slow: waiting(hedged, started), bad }, { hedge: { delay: "1 hour" } }))
      expect(yield* Ref.get(hedged)).toEqual([Option.some({ _tag: "SiblingFailed", key: "bad", label: "bad" })])

      const limited = yield* Ref.make<Array<Option.Option<Cancellation.CancelReason>>>([])
      const again = yield* Deferred.make<void>()
      const worse = Effect.andThen(Deferred.await(again), Effect.die("boom"))
      yield* Effect.exit(
        FanOut.all({ slow: waiting(limited, again), worse }, { retry: Schedule.recurs(1), timeout: "1 hour" })
      )
      expect(yield* Ref.get(limited)).toEqual([Option.some({ _tag: "SiblingFailed", key: "worse", label: "worse" })])
      expect(stoppingNow()).toBe(0)
    }))

  it.effect("an attempt its own timeout stopped reads Timeout (retry with a timeout, TestClock)", () =>
    Effect.gen(function*() {
      const seen = yield* Ref.make<Array<Option.Option<Cancellation.CancelReason>>>([])
      const fiber = yield* Effect.forkChild(
        FanOut.settle([waiting(seen)], { retry: Schedule.recurs(1), timeout: "100 millis" })
      )
      yield* Effect.yieldNow
      yield* TestClock.adjust("100 millis")
      yield* Effect.yieldNow
      yield* TestClock.adjust("100 millis")
      const [outcome] = yield* Fiber.join(fiber)
      expect(outcome).toMatchObject({ _tag: "TimedOut", reason: "Timeout", attempts: 2 })
      expect(yield* Ref.get(seen)).toEqual([Option.some({ _tag: "Timeout" }), Option.some({ _tag: "Timeout" })])
    }))

  it("types", () => {
    expectTypeOf<Cancellation.CancelReason["_tag"]>().toEqualTypeOf<
      "SiblingFailed" | "RequiredFailed" | "QuorumReached" | "Deadline" | "Timeout" | "HedgeLost" | "Caller"
    >()
    expectTypeOf<Extract<Cancellation.CancelReason, { _tag: "SiblingFailed" }>>().toEqualTypeOf<
      { readonly _tag: "SiblingFailed"; readonly key: Outcome.Key; readonly label: string | undefined }
    >()
    expectTypeOf<Outcome.Interrupted["cancelReason"]>().toEqualTypeOf<Cancellation.CancelReason | undefined>()
    expectTypeOf(Cancellation.ofExit).returns.toEqualTypeOf<Option.Option<Cancellation.CancelReason>>()
  })
})
