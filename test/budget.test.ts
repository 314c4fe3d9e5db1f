/**
 * Retry and hedge budgets (src/Budget.ts): gRPC's retry-throttling token bucket, shared by the fan-outs given it.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Context, Effect, Exit, Fiber, Layer, Ref, Schedule } from "effect"
import { TestClock } from "effect/testing"
import { Budget, FanOut } from "../src/index.js"
import { makeLog } from "./support.js"

const defectOf = (exit: Exit.Exit<unknown, unknown>): unknown =>
  Exit.isFailure(exit) ? exit.cause.reasons.find(Cause.isDieReason)?.defect : undefined

const expectInvalid = (exit: Exit.Exit<unknown, unknown>, option: string) => {
  const error = Exit.isFailure(exit)
    ? exit.cause.reasons.find(Cause.isFailReason)?.error ?? defectOf(exit)
    : undefined
  expect(error).toBeInstanceOf(FanOut.InvalidOptionError)
  expect((error as FanOut.InvalidOptionError).option).toBe(option)
}

/** A task failing every call with "down", counting its calls. */
const failing = (calls: Ref.Ref<number>) => Effect.andThen(Ref.update(calls, (n) => n + 1), Effect.fail("down"))

describe("Budget.make", () => {
  it.effect("starts full and follows gRPC's bucket: a failure takes 1, a success gives tokenRatio, capped", () =>
    Effect.gen(function*() {
      const budget = yield* Budget.make({ maxTokens: 10, tokenRatio: 0.1 })
      expect(yield* Budget.tokens(budget)).toBe(10)
      yield* FanOut.settle([Effect.fail("a"), Effect.fail("b"), Effect.fail("c")], { budget })
      expect(yield* Budget.tokens(budget)).toBe(7)
      yield* FanOut.settle([Effect.succeed(1), Effect.succeed(2)], { budget })
      expect(yield* Budget.tokens(budget)).toBe(7.2)
      // Never above maxTokens.
      yield* FanOut.settle(Array.from({ length: 100 }, () => Effect.succeed(1)), { budget })
      expect(yield* Budget.tokens(budget)).toBe(10)
      // Never below zero, and an interrupted attempt takes nothing.
      yield* FanOut.settle(Array.from({ length: 30 }, () => Effect.fail("x")), { budget })
      expect(yield* Budget.tokens(budget)).toBe(0)
      yield* FanOut.settle([Effect.interrupt], { budget })
      expect(yield* Budget.tokens(budget)).toBe(0)
    }))

  it.effect("an attempt cut off by its own timeout takes a token; a task the deadline cut off takes none", () =>
    Effect.gen(function*() {
      const budget = yield* Budget.make({ maxTokens: 10, tokenRatio: 0.1 })
      const timedOut = yield* Effect.forkChild(FanOut.settle([Effect.never], { timeout: "10 millis", budget }))
      yield* TestClock.adjust("10 millis")
      expect((yield* Fiber.join(timedOut))[0]._tag).toBe("TimedOut")
      expect(yield* Budget.tokens(budget)).toBe(9)
      const cut = yield* Effect.forkChild(FanOut.settle([Effect.never], { deadline: "10 millis", budget }))
      yield* TestClock.adjust("10 millis")
      expect((yield* Fiber.join(cut))[0]).toMatchObject({ _tag: "TimedOut", reason: "Deadline" })
      expect(yield* Budget.tokens(budget)).toBe(9)
      // The same with a retry, where each attempt runs on a fiber of its own.
      const retried = yield* Effect.forkChild(
        FanOut.settle([Effect.never], { timeout: "10 millis", retry: Schedule.recurs(1), budget })
      )
      yield* TestClock.adjust("10 millis")
      yield* TestClock.adjust("10 millis")
      expect((yield* Fiber.join(retried))[0]).toMatchObject({ _tag: "TimedOut", attempts: 2 })
      expect(yield* Budget.tokens(budget)).toBe(7)
    }))

  it.effect("keeps three decimal places of tokenRatio, so that counts never drift", () =>
    Effect.gen(function*() {
      const budget = yield* Budget.make({ maxTokens: 2, tokenRatio: 0.1239 })
      expect(budget.tokenRatio).toBe(0.123)
      yield* FanOut.settle([Effect.fail("a"), Effect.fail("b")], { budget })
      yield* FanOut.settle(Array.from({ length: 3 }, () => Effect.succeed(1)), { budget })
      expect(yield* Budget.tokens(budget)).toBe(0.369)
    }))

  it.effect("a wrong setting fails with an InvalidOptionError naming it", () =>
    Effect.gen(function*() {
      expectInvalid(yield* Effect.exit(Budget.make({ maxTokens: 0, tokenRatio: 0.1 })), "budget.maxTokens")
      expectInvalid(yield* Effect.exit(Budget.make({ maxTokens: 1001, tokenRatio: 0.1 })), "budget.maxTokens")
      expectInvalid(yield* Effect.exit(Budget.make({ maxTokens: NaN, tokenRatio: 0.1 })), "budget.maxTokens")
      expectInvalid(yield* Effect.exit(Budget.make({ maxTokens: 10, tokenRatio: 0 })), "budget.tokenRatio")
      expectInvalid(yield* Effect.exit(Budget.make({ maxTokens: 10, tokenRatio: 1.5 })), "budget.tokenRatio")
      expectInvalid(yield* Effect.exit(Budget.make({ maxTokens: 10, tokenRatio: 0.0004 })), "budget.tokenRatio")
      expectInvalid(yield* Effect.exit(Budget.make(null as any)), "budget")
    }))
})

describe("the budget option", () => {
  it.effect("a retry starts only while more than half the tokens are left; the task says the budget refused it", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const budget = yield* Budget.make({ maxTokens: 4, tokenRatio: 0.5 })
      // 4 tokens: the first call fails (3 left, above 2: a retry), the retry fails (2 left: no more).
      const [first] = yield* FanOut.settle([failing(calls)], { retry: Schedule.recurs(5), budget })
      expect(first).toMatchObject({ _tag: "Failure", error: "down", attempts: 2, refused: "budget" })
      expect(yield* Ref.get(calls)).toBe(2)
      // Shared: the next fan-out's task gets no retry at all, and its first attempt still runs.
      const [second] = yield* FanOut.settle([failing(calls)], { retry: Schedule.recurs(5), budget })
      expect(second).toMatchObject({ _tag: "Failure", error: "down", attempts: 1, refused: "budget" })
      expect(yield* Ref.get(calls)).toBe(3)
      // First attempts that succeed earn the retries back: 1 + 6 × 0.5 = 4 tokens, the bucket full again.
      yield* FanOut.settle(Array.from({ length: 6 }, () => Effect.succeed(1)), { budget })
      expect(yield* Budget.tokens(budget)).toBe(4)
      const [third] = yield* FanOut.settle([failing(calls)], { retry: Schedule.recurs(5), budget })
      expect(third).toMatchObject({ _tag: "Failure", attempts: 2, refused: "budget" })
    }))

  it.effect("fail fast fails with the task's own error when the budget refuses its retry", () =>
    Effect.gen(function*() {
      const calls = yield* Ref.make(0)
      const budget = yield* Budget.make({ maxTokens: 1, tokenRatio: 1 })
      const exit = yield* Effect.exit(FanOut.all([failing(calls)], { retry: Schedule.recurs(3), budget }))
      expect(exit).toStrictEqual(Exit.fail("down"))
      expect(yield* Ref.get(calls)).toBe(1)
    }))

  it.effect("an outcome has no refused mark when the budget allowed every attempt, or without a budget", () =>
    Effect.gen(function*() {
      const budget = yield* Budget.make({ maxTokens: 100, tokenRatio: 1 })
      const calls = yield* Ref.make(0)
      const [limited] = yield* FanOut.settle([failing(calls)], { retry: Schedule.recurs(2), budget })
      expect(limited).toMatchObject({ _tag: "Failure", attempts: 3 })
      expect("refused" in limited).toBe(false)
      const [plain] = yield* FanOut.settle([failing(calls)], { retry: Schedule.recurs(2) })
      expect("refused" in plain).toBe(false)
    }))

  it.effect("a hedge waits for the budget's leave: with too few tokens the slow attempt runs alone", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      let n = 0
      const slow = Effect.suspend(() => {
        const k = ++n
        return log.add(`start ${k}`).pipe(Effect.andThen(Effect.sleep("50 millis")), Effect.as(k))
      })
      const budget = yield* Budget.make({ maxTokens: 2, tokenRatio: 1 })
      // With all its tokens the budget lets the backup start at 10 ms.
      const allowed = yield* Effect.forkChild(FanOut.settle([slow], { hedge: { delay: "10 millis" }, budget }))
      yield* TestClock.adjust("10 millis")
      expect(yield* log.get).toStrictEqual(["start 1", "start 2"])
      yield* TestClock.adjust("40 millis")
      const [won] = yield* Fiber.join(allowed)
      expect(won).toMatchObject({ _tag: "Success", value: 1, attempts: 2 })
      expect("refused" in won).toBe(false)
      // One failure leaves 1 token of 2: no hedge.
      yield* FanOut.settle([Effect.fail("x")], { budget })
      const refused = yield* Effect.forkChild(FanOut.settle([slow], { hedge: { delay: "10 millis" }, budget }))
      yield* TestClock.adjust("10 millis")
      expect(yield* log.get).toStrictEqual(["start 1", "start 2", "start 3"])
      yield* TestClock.adjust("40 millis")
      const [alone] = yield* Fiber.join(refused)
      expect(alone).toMatchObject({ _tag: "Success", value: 3, attempts: 1, refused: "budget" })
    }))

  it.effect("a hedged task's attempts are told to the budget: a failed one takes a token, the winner gives some back, a loser interrupted neither", () =>
    Effect.gen(function*() {
      const budget = yield* Budget.make({ maxTokens: 10, tokenRatio: 0.5 })
      // Attempts 1 and 2 fail at once (each starting the next), attempt 3 answers.
      let n = 0
      const third = Effect.suspend(() => ++n < 3 ? Effect.fail("down") : Effect.succeed(n))
      const [out] = yield* FanOut.settle([third], { hedge: { delay: "1 hour", max: 3 }, budget })
      expect(out).toMatchObject({ _tag: "Success", value: 3, attempts: 3 })
      expect(yield* Budget.tokens(budget)).toBe(10 - 1 - 1 + 0.5)
      // The first attempt answers at 50 ms; its backup, started at 10 ms, never does and is interrupted.
      let m = 0
      const slow = Effect.suspend(() => ++m === 1 ? Effect.as(Effect.sleep("50 millis"), "first") : Effect.never)
      const fiber = yield* Effect.forkChild(FanOut.settle([slow], { hedge: { delay: "10 millis" }, budget }))
      yield* TestClock.adjust("50 millis")
      const [won] = yield* Fiber.join(fiber)
      expect(won).toMatchObject({ _tag: "Success", value: "first", attempts: 2 })
      expect(yield* Budget.tokens(budget)).toBe(8.5 + 0.5)
    }))

  it.effect("a function gives each task its own budget by key: one downstream's failures leave the other's alone", () =>
    Effect.gen(function*() {
      const calls = { pricing: yield* Ref.make(0), stock: yield* Ref.make(0) }
      const budgets = {
        pricing: yield* Budget.make({ maxTokens: 2, tokenRatio: 1 }),
        stock: yield* Budget.make({ maxTokens: 10, tokenRatio: 1 })
      }
      const out = yield* FanOut.settle({ pricing: failing(calls.pricing), stock: failing(calls.stock) }, {
        retry: Schedule.recurs(2),
        budget: (key) => budgets[key as keyof typeof budgets]
      })
      expect(out.pricing).toMatchObject({ attempts: 1, refused: "budget" })
      expect(out.stock).toMatchObject({ attempts: 3 })
      expect([yield* Budget.tokens(budgets.pricing), yield* Budget.tokens(budgets.stock)]).toStrictEqual([1, 7])
      // `undefined` for a task: no budget, its retries are the schedule's alone.
      const none = yield* FanOut.settle([failing(calls.pricing)], {
        retry: Schedule.recurs(2),
        budget: () => undefined
      })
      expect(none[0]).toMatchObject({ attempts: 3 })
    }))

  it.effect("Budget.layer makes one budget per layer, shared by every request it is provided to", () =>
    Effect.gen(function*() {
      const PricingBudget = Context.Service<Budget.Budget>("test/PricingBudget")
      const calls = yield* Ref.make(0)
      const request = Effect.gen(function*() {
        const budget = yield* PricingBudget
        return yield* FanOut.settle([failing(calls)], { retry: Schedule.recurs(3), budget })
      })
      const [a, b] = yield* Effect.all([request, request]).pipe(
        Effect.provide(Budget.layer(PricingBudget, { maxTokens: 4, tokenRatio: 0.1 }))
      )
      // One bucket for both requests: 2 calls, then 1, as in one fan-out after another.
      expect([a[0].attempts, b[0].attempts]).toStrictEqual([2, 1])
      expect(yield* Ref.get(calls)).toBe(3)
      const exit = yield* Effect.exit(
        Layer.build(Budget.layer(PricingBudget, { maxTokens: -1, tokenRatio: 0.1 })).pipe(Effect.scoped)
      )
      expectInvalid(exit, "budget.maxTokens")
    }))

  it.effect("a budget that is not one, or a function giving something else, is an InvalidOptionError naming budget", () =>
    Effect.gen(function*() {
      expectInvalid(yield* Effect.exit(FanOut.settle([Effect.succeed(1)], { budget: 5 as any })), "budget")
      expectInvalid(
        yield* Effect.exit(FanOut.settle([Effect.succeed(1)], { budget: (() => ({ tokens: 3 })) as any })),
        "budget"
      )
    }))
})
