import { describe, expect, it } from "@effect/vitest"
import { Cause, Effect, Exit, Fiber, Schema } from "effect"
import { TestClock } from "effect/testing"
import { outcomeOf } from "../src/internal/classify.js"
import * as Outcome from "../src/Outcome.js"

const common = { label: undefined, durationMillis: 0, attempts: 1 }
const success = <A>(key: Outcome.Key, value: A): Outcome.Outcome<A, never> => ({
  _tag: "Success",
  key,
  value,
  ...common
})
const failure = <E>(key: Outcome.Key, error: E): Outcome.Outcome<never, E> => ({
  _tag: "Failure",
  key,
  error,
  cause: Cause.fail(error),
  ...common
})
const defect = (key: Outcome.Key, thrown: unknown): Outcome.Outcome<never, never> => ({
  _tag: "Defect",
  key,
  defect: thrown,
  cause: Cause.die(thrown),
  stack: String(thrown),
  ...common
})
const timedOut = (key: Outcome.Key, label?: string): Outcome.Outcome<never, never> => ({
  _tag: "TimedOut",
  key,
  reason: "Timeout",
  ...common,
  label
})
const interrupted = (key: Outcome.Key): Outcome.Outcome<never, never> => ({ _tag: "Interrupted", key, ...common })

/**
 * The outcomes of real tasks, settled by hand as `FanOut.settle` does with a deadline of one second: every task runs
 * in its own fiber, the ones still running at the deadline are interrupted and read as `TimedOut`.
 */
const settleWithDeadline = <A, E>(tasks: ReadonlyArray<Effect.Effect<A, E>>) =>
  Effect.gen(function*() {
    const fibers = yield* Effect.forEach(tasks, (task) => Effect.forkChild(task))
    yield* TestClock.adjust("1 second")
    return yield* Effect.forEach(fibers, (fiber, key) =>
      Effect.gen(function*() {
        const cutOff = fiber.pollUnsafe() === undefined
        if (cutOff) yield* Fiber.interrupt(fiber)
        const exit = yield* Fiber.await(fiber)
        return outcomeOf(exit, { key, ...common }, cutOff ? "Deadline" : undefined)
      }))
  })

/** One outcome of every kind, made from real tasks. */
const everyKind = settleWithDeadline<number, "bad">([
  Effect.succeed(1),
  Effect.fail("bad" as const),
  Effect.die(new Error("crash")),
  Effect.never,
  Effect.interrupt,
  Effect.succeed(2)
])

describe("Outcome", () => {
  describe("guards", () => {
    it.effect("tell every kind of outcome apart", () =>
      Effect.gen(function*() {
        const outcomes = yield* everyKind
        expect(outcomes.map((o) => o._tag)).toStrictEqual([
          "Success",
          "Failure",
          "Defect",
          "TimedOut",
          "Interrupted",
          "Success"
        ])
        const guards = [
          Outcome.isSuccess,
          Outcome.isFailure,
          Outcome.isDefect,
          Outcome.isTimedOut,
          Outcome.isInterrupted
        ] as const
        const table = outcomes.slice(0, 5).map((o) => guards.map((guard) => guard(o)))
        expect(table).toStrictEqual([
          [true, false, false, false, false],
          [false, true, false, false, false],
          [false, false, true, false, false],
          [false, false, false, true, false],
          [false, false, false, false, true]
        ])
      }))
  })

  describe("match", () => {
    const show = Outcome.match({
      onSuccess: (value: number) => `ok ${value}`,
      onFailure: (error: string) => `failed ${error}`,
      onDefect: (thrown) => `crashed ${(thrown as Error).message}`,
      onTimedOut: (o) => `timed out ${o.reason}`,
      onInterrupted: (o) => `interrupted ${o.key}`
    })

    it("calls the handler of the outcome's case", () => {
      expect(show(success(0, 1))).toBe("ok 1")
      expect(show(failure(0, "bad"))).toBe("failed bad")
      expect(show(defect(0, new Error("boom")))).toBe("crashed boom")
      expect(show(timedOut(0))).toBe("timed out Timeout")
      expect(show(interrupted(3))).toBe("interrupted 3")
    })

    it("has a data-first form", () => {
      const result = Outcome.match(success("k", "v"), {
        onSuccess: (value, o) => `${String(o.key)}=${value}`,
        onFailure: () => "",
        onDefect: () => "",
        onTimedOut: () => "",
        onInterrupted: () => ""
      })
      expect(result).toBe("k=v")
    })

    it("gives each handler the outcome itself beside its value", () => {
      const o = failure("k", "bad")
      const seen = Outcome.match(o, {
        onSuccess: () => undefined,
        onFailure: (_, outcome) => outcome,
        onDefect: () => undefined,
        onTimedOut: () => undefined,
        onInterrupted: () => undefined
      })
      expect(seen).toBe(o)
    })
  })

  describe("settled results", () => {
    it.effect("successes, failures and defects keep input order", () =>
      Effect.gen(function*() {
        const outcomes = yield* everyKind
        expect(Outcome.successes(outcomes).map((o) => [o.key, o.value])).toStrictEqual([[0, 1], [5, 2]])
        expect(Outcome.failures(outcomes).map((o) => [o.key, o.error])).toStrictEqual([[1, "bad"]])
        expect(Outcome.defects(outcomes).map((o) => [o.key, (o.defect as Error).message])).toStrictEqual([[
          2,
          "crash"
        ]])
      }))

    it("work over a struct of outcomes, in key order", () => {
      const settled = { b: success("b", 2), a: failure("a", "x"), c: success("c", 3) }
      expect(Outcome.successes(settled).map((o) => o.value)).toStrictEqual([2, 3])
      expect(Outcome.failures(settled).map((o) => o.key)).toStrictEqual(["a"])
      expect(Outcome.defects(settled)).toStrictEqual([])
    })

    it("partition splits successes from the rest, both in input order", () => {
      const settled = [interrupted(0), success(1, "a"), failure(2, "e"), success(3, "b"), timedOut(4)]
      const [ok, notOk] = Outcome.partition(settled)
      expect(ok.map((o) => o.key)).toStrictEqual([1, 3])
      expect(notOk.map((o) => o.key)).toStrictEqual([0, 2, 4])
    })

    it("allSucceeded is true only when every outcome is a success, and for no outcomes", () => {
      expect(Outcome.allSucceeded([success(0, 1), success(1, 2)])).toBe(true)
      expect(Outcome.allSucceeded([])).toBe(true)
      expect(Outcome.allSucceeded({})).toBe(true)
      expect(Outcome.allSucceeded([success(0, 1), interrupted(1)])).toBe(false)
      expect(Outcome.allSucceeded({ a: success("a", 1), b: failure("b", "e") })).toBe(false)
    })

    it("allSucceeded narrows a struct to its successes", () => {
      const settled: { a: Outcome.Outcome<number, string>; b: Outcome.Outcome<string, string> } = {
        a: success("a", 1),
        b: success("b", "two")
      }
      if (Outcome.allSucceeded(settled)) {
        const a: number = settled.a.value
        const b: string = settled.b.value
        expect([a, b]).toStrictEqual([1, "two"])
      } else {
        expect.fail("expected every outcome to be a success")
      }
    })

    it("errors is index-aligned, with undefined where a task succeeded", () => {
      const crash = new Error("crash")
      const errors = Outcome.errors([
        success(0, 1),
        failure(1, "bad"),
        defect(2, crash),
        defect(3, "not an error"),
        timedOut(4, "slow-service"),
        interrupted(5),
        failure(6, undefined),
        failure(7, null)
      ])
      expect(errors.length).toBe(8)
      expect(errors[0]).toBeUndefined()
      expect(errors[1]).toBe("bad")
      expect(errors[2]).toBe(crash)
      expect(errors[3]).toBeInstanceOf(Error)
      expect((errors[3] as Error).message).toContain("not an error")
      expect((errors[3] as Error).cause).toBe("not an error")
      expect((errors[4] as Error).message).toContain("slow-service")
      expect((errors[4] as Error).message).toContain("timed out")
      expect((errors[5] as Error).message).toContain("interrupted")
      // A failure with undefined must not read as a success.
      expect(errors[6]).toBeInstanceOf(Error)
      expect((errors[6] as Error).message).toBe("task 6 failed with undefined")
      expect(errors[7]).toBeNull()
    })

    it("errors names a task by its label and its key when they differ, by its key alone otherwise", () => {
      const errors = Outcome.errors({
        prices: { ...timedOut("prices"), label: "pricing-service" },
        usage: { ...interrupted("usage"), label: "usage" }
      })
      expect((errors[0] as Error).message).toBe("task pricing-service (prices) timed out (Timeout)")
      expect((errors[1] as Error).message).toBe("task usage was interrupted")
    })

    it.effect("errors over the outcomes of real tasks", () =>
      Effect.gen(function*() {
        const outcomes = yield* settleWithDeadline<number, string>([Effect.succeed(1), Effect.fail("boom")])
        expect(Outcome.errors(outcomes)).toStrictEqual([undefined, "boom"])
      }))

    it("errors gives an Error saying so for a task cut off at the deadline", () => {
      const o = outcomeOf(
        Exit.interrupt(),
        { key: 2, label: "inventory", durationMillis: 1000, attempts: 1 },
        "Deadline"
      )
      expect(Outcome.errors([o]).map((error) => (error as Error).message)).toStrictEqual([
        "task inventory (2) timed out (Deadline)"
      ])
    })
  })

  describe("settled results, for any mix of outcomes", () => {
    const Tag = Schema.Literals(["Success", "Failure", "Defect", "TimedOut", "Interrupted"])
    const make = (tag: Outcome.Outcome<unknown, unknown>["_tag"], key: number): Outcome.Outcome<number, string> => {
      switch (tag) {
        case "Success":
          return success(key, key)
        case "Failure":
          return failure(key, `error ${key}`)
        case "Defect":
          return defect(key, new Error(`crash ${key}`))
        case "TimedOut":
          return timedOut(key)
        case "Interrupted":
          return interrupted(key)
      }
    }

    it.prop(
      "partition, successes, failures, defects, allSucceeded and errors agree with the outcomes' tags",
      [Schema.Array(Tag)],
      ([tags]) => {
        const settled = tags.map(make)
        const keysOf = (outcomes: ReadonlyArray<Outcome.Outcome<unknown, unknown>>) => outcomes.map((o) => o.key)
        const keysWith = (tag: string) => settled.filter((o) => o._tag === tag).map((o) => o.key)
        const [ok, notOk] = Outcome.partition(settled)
        expect(keysOf(ok)).toStrictEqual(keysWith("Success"))
        expect(keysOf(notOk)).toStrictEqual(settled.filter((o) => o._tag !== "Success").map((o) => o.key))
        expect(keysOf(Outcome.successes(settled))).toStrictEqual(keysWith("Success"))
        expect(keysOf(Outcome.failures(settled))).toStrictEqual(keysWith("Failure"))
        expect(keysOf(Outcome.defects(settled))).toStrictEqual(keysWith("Defect"))
        expect(Outcome.allSucceeded(settled)).toBe(notOk.length === 0)
        const errors = Outcome.errors(settled)
        expect(errors.length).toBe(settled.length)
        expect(errors.map((error) => error === undefined)).toStrictEqual(settled.map((o) => o._tag === "Success"))
      },
      { arbitrary: { seed: 20261001, runs: 200 } }
    )
  })
})
