import { assert, describe, expect, it } from "@effect/vitest"
import { Cause, Data, Deferred, Effect, Exit, Fiber, Schema } from "effect"
import { TestClock } from "effect/testing"
import { outcomeOf } from "../src/internal/classify.js"
import type * as Outcome from "../src/Outcome.js"

const common: Outcome.Common = { key: "prices", label: "pricing-service", durationMillis: 250, attempts: 2 }
const commonFields = { key: "prices", label: "pricing-service", durationMillis: 250, attempts: 2 }

/** Every line of a stack that is a frame. */
const frames = (stack: string) => stack.split("\n").filter((line) => /^\s+at /.test(line))

class NotFound extends Data.TaggedError("NotFound")<{ readonly id: string }> {}

describe("outcomeOf", () => {
  describe("Success", () => {
    it.effect("a success exit is a Success with its value and the common fields", () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(Effect.succeed(42))
        expect(outcomeOf(exit, common, undefined)).toStrictEqual({ _tag: "Success", value: 42, ...commonFields })
      }))

    it("a success stays a Success when a time limit is given: the task finished before it", () => {
      expect(outcomeOf(Exit.succeed("done"), common, "Deadline")).toStrictEqual({
        _tag: "Success",
        value: "done",
        ...commonFields
      })
      expect(outcomeOf(Exit.succeed(undefined), common, "Timeout")._tag).toBe("Success")
    })

    it("copies the common fields one by one, so nothing else of the object given comes along", () => {
      const wider = { ...common, internal: "not part of an outcome" }
      expect(outcomeOf(Exit.succeed(1), wider, undefined)).toStrictEqual({ _tag: "Success", value: 1, ...commonFields })
      expect(Object.keys(outcomeOf(Exit.fail("e"), wider, undefined)).sort()).toStrictEqual(
        ["_tag", "attempts", "cause", "durationMillis", "error", "key", "label"]
      )
    })
  })

  describe("Failure", () => {
    it.effect("a typed failure is a Failure with its error and the whole cause", () =>
      Effect.gen(function*() {
        const error = new NotFound({ id: "c-1" })
        const exit = yield* Effect.exit(Effect.fail(error))
        assert(exit._tag === "Failure")
        const o = outcomeOf(exit, common, undefined)
        assert(o._tag === "Failure")
        expect(o.error).toBe(error)
        expect(o.cause).toBe(exit.cause)
        expect({ key: o.key, label: o.label, durationMillis: o.durationMillis, attempts: o.attempts }).toStrictEqual(
          commonFields
        )
      }))

    it("keeps an error of undefined as the error", () => {
      const o = outcomeOf(Exit.fail(undefined), common, undefined)
      assert(o._tag === "Failure")
      expect(o.error).toBeUndefined()
    })

    it("takes the first of several typed failures as the error, and keeps them all in the cause", () => {
      const cause = Cause.combine(Cause.fail("first"), Cause.fail("second"))
      const o = outcomeOf(Exit.failCause(cause), common, undefined)
      assert(o._tag === "Failure")
      expect(o.error).toBe("first")
      expect(o.cause.reasons.filter(Cause.isFailReason).map((reason) => reason.error)).toStrictEqual([
        "first",
        "second"
      ])
    })
  })

  describe("Defect", () => {
    it.effect("a thrown Error is a Defect with the thrown object, the whole cause and a stack of the user's frames", () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(Effect.sync((): number => {
          throw new Error("kaboom in user code")
        }))
        assert(exit._tag === "Failure")
        const o = outcomeOf(exit, common, undefined)
        assert(o._tag === "Defect")
        expect((o.defect as Error).message).toBe("kaboom in user code")
        expect(o.cause).toBe(exit.cause)
        // The stack was long: Effect's runtime was under the user's throw.
        expect((o.defect as Error).stack).toMatch(/node_modules[\\/]effect[\\/]/)
        expect(o.stack.split("\n")[0]).toBe("Error: kaboom in user code")
        expect(frames(o.stack).some((line) => line.includes("classify.test.ts"))).toBe(true)
        expect(o.stack).not.toMatch(/node_modules[\\/](@effect[\\/][^\\/]+|effect)[\\/]/)
        expect(o.durationMillis).toBe(250)
      }))

    it.effect("Effect.die with a value that is not an Error has a readable stack naming the value", () =>
      Effect.gen(function*() {
        const o = outcomeOf(yield* Effect.exit(Effect.die("plain string defect")), common, undefined)
        assert(o._tag === "Defect")
        expect(o.defect).toBe("plain string defect")
        expect(o.stack).toBe("Error: plain string defect")
      }))

    it("takes the first of several defects as the defect", () => {
      const first = new Error("first")
      const o = outcomeOf(Exit.failCause(Cause.combine(Cause.die(first), Cause.die("second"))), common, undefined)
      assert(o._tag === "Defect")
      expect(o.defect).toBe(first)
      expect(o.cause.reasons.filter(Cause.isDieReason).map((reason) => reason.defect)).toStrictEqual([
        first,
        "second"
      ])
    })

    it.effect("a defect wins over an interruption: an interrupted task whose finalizer died is a Defect", () =>
      Effect.gen(function*() {
        const started = yield* Deferred.make<void>()
        const fiber = yield* Effect.forkChild(
          Deferred.succeed(started, undefined).pipe(
            Effect.andThen(Effect.never),
            Effect.ensuring(Effect.die("finalizer crashed"))
          )
        )
        yield* Deferred.await(started)
        yield* Fiber.interrupt(fiber)
        const exit = yield* Fiber.await(fiber)
        assert(exit._tag === "Failure")
        expect(Cause.hasInterrupts(exit.cause)).toBe(true)
        const o = outcomeOf(exit, common, undefined)
        assert(o._tag === "Defect")
        expect(o.defect).toBe("finalizer crashed")
        expect(o.cause).toBe(exit.cause)
      }))
  })

  describe("a cause with both a typed failure and a defect", () => {
    it.effect("is a Failure: the typed failure wins, and the cause is kept whole", () =>
      Effect.gen(function*() {
        const crash = new Error("crash")
        const exit = yield* Effect.exit(Effect.failCause(Cause.combine(Cause.fail("bad"), Cause.die(crash))))
        assert(exit._tag === "Failure")
        expect(exit.cause.reasons.map((reason) => reason._tag)).toStrictEqual(["Fail", "Die"])
        const o = outcomeOf(exit, common, undefined)
        assert(o._tag === "Failure")
        expect(o.error).toBe("bad")
        expect(o.cause).toBe(exit.cause)
      }))

    it("is a Failure whatever the order of its reasons, and with an interruption beside them", () => {
      const cause = Cause.fromReasons<string>([
        Cause.makeInterruptReason(7),
        Cause.makeDieReason(new Error("crash")),
        Cause.makeFailReason("bad")
      ])
      const o = outcomeOf(Exit.failCause(cause), common, undefined)
      assert(o._tag === "Failure")
      expect(o.error).toBe("bad")
      expect(o.cause).toBe(cause)
    })

    it.effect("is never seen for a failed task whose finalizer died: Effect 4 makes its typed failure a defect", () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(Effect.fail("bad").pipe(Effect.ensuring(Effect.die("finalizer crashed"))))
        assert(exit._tag === "Failure")
        expect(exit.cause.reasons.map((reason) => reason._tag)).toStrictEqual(["Die", "Die"])
        const o = outcomeOf(exit, common, undefined)
        assert(o._tag === "Defect")
        expect(o.defect).toBe("bad")
        expect(o.cause.reasons.filter(Cause.isDieReason).map((reason) => reason.defect)).toStrictEqual([
          "bad",
          "finalizer crashed"
        ])
      }))
  })

  describe("TimedOut", () => {
    it.effect("a task its own timeout ended is TimedOut with reason Timeout, whatever its cause", () =>
      Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(Effect.exit(Effect.timeout(Effect.never, "1 second")))
        yield* TestClock.adjust("1 second")
        const exit = yield* Fiber.join(fiber)
        assert(exit._tag === "Failure")
        expect(Cause.hasFails(exit.cause)).toBe(true)
        expect(outcomeOf(exit, common, "Timeout")).toStrictEqual({
          _tag: "TimedOut",
          reason: "Timeout",
          ...commonFields
        })
        expect(outcomeOf(Exit.die("late crash"), common, "Timeout")._tag).toBe("TimedOut")
      }))

    it.effect("a task the fan-out's deadline cut off is TimedOut with reason Deadline", () =>
      Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(Effect.never)
        yield* Fiber.interrupt(fiber)
        const exit = yield* Fiber.await(fiber)
        assert(exit._tag === "Failure")
        expect(Cause.hasInterruptsOnly(exit.cause)).toBe(true)
        expect(outcomeOf(exit, common, "Deadline")).toStrictEqual({
          _tag: "TimedOut",
          reason: "Deadline",
          ...commonFields
        })
        expect(outcomeOf(Exit.fail("late"), common, "Deadline")).toStrictEqual({
          _tag: "TimedOut",
          reason: "Deadline",
          ...commonFields
        })
      }))
  })

  describe("Interrupted", () => {
    it.effect("a task that interrupted itself is Interrupted", () =>
      Effect.gen(function*() {
        const exit = yield* Effect.exit(Effect.interrupt)
        expect(outcomeOf(exit, common, undefined)).toStrictEqual({
          _tag: "Interrupted",
          ...commonFields,
          cancelReason: undefined
        })
      }))

    it.effect("a task interrupted from outside is Interrupted", () =>
      Effect.gen(function*() {
        const fiber = yield* Effect.forkChild(Effect.never)
        yield* Fiber.interrupt(fiber)
        const exit = yield* Fiber.await(fiber)
        expect(outcomeOf(exit, common, undefined)).toStrictEqual({
          _tag: "Interrupted",
          ...commonFields,
          cancelReason: undefined
        })
      }))

    it("an empty cause, and several interruptions, are Interrupted", () => {
      expect(outcomeOf(Exit.failCause(Cause.empty), common, undefined)._tag).toBe("Interrupted")
      const interrupts = Cause.combine(Cause.interrupt(1), Cause.interrupt(2))
      expect(outcomeOf(Exit.failCause(interrupts), common, undefined)._tag).toBe("Interrupted")
    })
  })

  it.prop(
    "a typed failure wins over a defect, a defect over an interruption; the first of each kind is kept",
    [Schema.Array(Schema.Literals(["Fail", "Die", "Interrupt"]))],
    ([tags]) => {
      const reasons = tags.map((tag, i) =>
        tag === "Fail"
          ? Cause.makeFailReason(`error ${i}`)
          : tag === "Die"
          ? Cause.makeDieReason(`defect ${i}`)
          : Cause.makeInterruptReason(i)
      )
      const o = outcomeOf(Exit.failCause(Cause.fromReasons(reasons)), common, undefined)
      const firstFail = tags.indexOf("Fail")
      const firstDie = tags.indexOf("Die")
      if (firstFail >= 0) {
        assert(o._tag === "Failure")
        expect(o.error).toBe(`error ${firstFail}`)
      } else if (firstDie >= 0) {
        assert(o._tag === "Defect")
        expect(o.defect).toBe(`defect ${firstDie}`)
        expect(o.stack).toBe(`Error: defect ${firstDie}`)
      } else {
        expect(o._tag).toBe("Interrupted")
      }
    },
    { arbitrary: { seed: 20261001, runs: 200 } }
  )
})
