/**
 * Static types of the fan-outs. The assertions are checked by `tsc --noEmit` (part of `npm test`); at run time they
 * are no-ops (the effects are built, never run), so each `it` only proves that the file type-checks. (The types of
 * outcomes themselves are in `Outcome.types.test.ts`.)
 */
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import { Context, Data, Duration, Effect, Layer, Metric, Option, pipe } from "effect"
import { Attempt, Budget, Deadline, FanOut, FanOutError, Hedge } from "../src/index.js"
import type { Outcome } from "../src/index.js"

class NotFound extends Data.TaggedError("NotFound")<{}> {}
class Unavailable extends Data.TaggedError("Unavailable")<{}> {}
class Db extends Context.Service<Db, { readonly query: Effect.Effect<number> }>()("Db") {}
class Cache extends Context.Service<Cache, { readonly get: Effect.Effect<string> }>()("Cache") {}

const num: Effect.Effect<number, NotFound> = Effect.succeed(1)
const str: Effect.Effect<string, Unavailable> = Effect.succeed("s")
const needsDb: Effect.Effect<number, never, Db> = Effect.gen(function*() {
  const db = yield* Db
  return yield* db.query
})
const needsCache: Effect.Effect<string, never, Cache> = Effect.gen(function*() {
  const cache = yield* Cache
  return yield* cache.get
})

const successOf = <A, E, R>(_: Effect.Effect<A, E, R>) => expectTypeOf<A>()
const errorOf = <A, E, R>(_: Effect.Effect<A, E, R>) => expectTypeOf<E>()
const contextOf = <A, E, R>(_: Effect.Effect<A, E, R>) => expectTypeOf<R>()

describe("types", () => {
  describe("FanOut.all", () => {
    it("maps a tuple to a tuple", () => {
      const run = FanOut.all([num, str])
      successOf(run).toEqualTypeOf<[number, string]>()
      errorOf(run).toEqualTypeOf<NotFound | Unavailable>()
      expect(Effect.isEffect(run)).toBe(true)
    })

    it("keeps a struct's keys", () => {
      const run = FanOut.all({ count: num, name: str })
      successOf(run).toEqualTypeOf<{ count: number; name: string }>()
      errorOf(run).toEqualTypeOf<NotFound | Unavailable>()
    })

    it("maps an iterable to an array", () => {
      const run = FanOut.all(new Set([num]))
      successOf(run).toEqualTypeOf<Array<number>>()
      errorOf(run).toEqualTypeOf<NotFound>()
      const list: Array<Effect.Effect<number, NotFound | Unavailable>> = []
      const fromArray = FanOut.all(list)
      successOf(fromArray).toEqualTypeOf<Array<number>>()
      errorOf(fromArray).toEqualTypeOf<NotFound | Unavailable>()
    })

    it("keeps the union of the tasks' requirements", () => {
      const run = FanOut.all([needsDb, needsCache])
      contextOf(run).toEqualTypeOf<Db | Cache>()
      const struct = FanOut.settle({ a: needsDb, b: needsCache })
      contextOf(struct).toEqualTypeOf<Db | Cache>()
    })

    it("adds FanOutTimeoutError only when a timeout or a deadline is given", () => {
      const plain = FanOut.all([num], { concurrency: 2 })
      errorOf(plain).toEqualTypeOf<NotFound>()
      const timed = FanOut.all([num], { timeout: "1 second" })
      errorOf(timed).toEqualTypeOf<NotFound | FanOut.FanOutTimeoutError>()
      const deadline = FanOut.all({ a: num, b: str }, { deadline: 1000 })
      errorOf(deadline).toEqualTypeOf<NotFound | Unavailable | FanOut.FanOutTimeoutError>()
    })

    it("fails with FanOutFailure<E> with report: true", () => {
      const run = FanOut.all([num, str], { report: true })
      errorOf(run).toEqualTypeOf<FanOut.FanOutFailure<NotFound | Unavailable>>()
      const withDeadline = FanOut.all([num], { report: true, deadline: "1 second" })
      errorOf(withDeadline).toEqualTypeOf<FanOut.FanOutFailure<NotFound>>()
    })

    it("keeps every error that options held in a variable may cause", () => {
      const options: FanOut.AllOptions = {}
      errorOf(FanOut.all([num], options)).toEqualTypeOf<
        NotFound | FanOut.FanOutTimeoutError | FanOut.FanOutFailure<NotFound>
      >()
      const timeout: { timeout?: number } = {}
      errorOf(FanOut.all([num], timeout)).toEqualTypeOf<NotFound | FanOut.FanOutTimeoutError>()
      const report: { report: boolean } = { report: false }
      errorOf(FanOut.all([num], report)).toEqualTypeOf<NotFound | FanOut.FanOutFailure<NotFound>>()
      const settleOptions: FanOut.SettleOptions<0> = {}
      errorOf(FanOut.settle([num, str], settleOptions)).toEqualTypeOf<
        NotFound | FanOut.FanOutTimeoutError | FanOut.FanOutFailure<NotFound | Unavailable>
      >()
      const none: { concurrency: number } = { concurrency: 2 }
      errorOf(FanOut.settle([num, str], none)).toEqualTypeOf<never>()
    })

    it("has data-last forms with the same types", () => {
      const tasks = [num, str] as const
      const noOptions = FanOut.all()(tasks)
      successOf(noOptions).toEqualTypeOf<[number, string]>()
      errorOf(noOptions).toEqualTypeOf<NotFound | Unavailable>()
      const bounded = FanOut.all({ concurrency: 2 })(tasks)
      successOf(bounded).toEqualTypeOf<[number, string]>()
      const piped = pipe({ a: num }, FanOut.all({ timeout: "1 second" }))
      successOf(piped).toEqualTypeOf<{ a: number }>()
      errorOf(piped).toEqualTypeOf<NotFound | FanOut.FanOutTimeoutError>()
    })
  })

  describe("FanOut.forEach", () => {
    it("gives an array of the function's success and its error", () => {
      const run = FanOut.forEach(["a", "b"], (s: string) => s.length > 0 ? num : num)
      successOf(run).toEqualTypeOf<Array<number>>()
      errorOf(run).toEqualTypeOf<NotFound>()
      const timed = FanOut.forEach([1], () => str, { timeout: 10, label: (n: number) => String(n) })
      errorOf(timed).toEqualTypeOf<Unavailable | FanOut.FanOutTimeoutError>()
      const piped = pipe([1, 2], FanOut.forEach((n: number) => Effect.succeed(n * 2)))
      successOf(piped).toEqualTypeOf<Array<number>>()
      errorOf(piped).toEqualTypeOf<never>()
    })
  })

  describe("FanOut.settle", () => {
    it("cannot fail, and gives an Outcome per task in a tuple", () => {
      const run = FanOut.settle([num, str])
      errorOf(run).toEqualTypeOf<never>()
      successOf(run).toEqualTypeOf<
        [Outcome.Outcome<number, NotFound>, Outcome.Outcome<string, Unavailable>]
      >()
    })

    it("keeps a struct's keys, each with its own Outcome type", () => {
      const run = FanOut.settle({ a: num, b: Effect.fail("bad" as const) })
      errorOf(run).toEqualTypeOf<never>()
      successOf(run).toEqualTypeOf<
        { a: Outcome.Outcome<number, NotFound>; b: Outcome.Outcome<never, "bad"> }
      >()
    })

    it("cannot fail even with a timeout or a deadline", () => {
      const run = FanOut.settle([num], { timeout: "1 second", deadline: "2 seconds", concurrency: 1 })
      errorOf(run).toEqualTypeOf<never>()
    })

    it("maps an iterable to an array of outcomes", () => {
      const run = FanOut.settle(new Set([num, num]))
      successOf(run).toEqualTypeOf<Array<Outcome.Outcome<number, NotFound>>>()
    })

    it("has data-last forms with the same types", () => {
      const run = pipe([num, str] as const, FanOut.settle({ deadline: "1 second" }))
      errorOf(run).toEqualTypeOf<never>()
      successOf(run).toEqualTypeOf<
        [Outcome.Outcome<number, NotFound>, Outcome.Outcome<string, Unavailable>]
      >()
      const noOptions = FanOut.settle()({ a: str })
      successOf(noOptions).toEqualTypeOf<{ a: Outcome.Outcome<string, Unavailable> }>()
    })
  })

  describe("FanOut.settleForEach", () => {
    it("gives an array of outcomes and cannot fail", () => {
      const run = FanOut.settleForEach([1, 2], (n: number) => n > 1 ? num : num, { concurrency: 2 })
      successOf(run).toEqualTypeOf<Array<Outcome.Outcome<number, NotFound>>>()
      errorOf(run).toEqualTypeOf<never>()
      const piped = pipe(["a"], FanOut.settleForEach((s: string) => Effect.succeed(s)))
      successOf(piped).toEqualTypeOf<Array<Outcome.Outcome<string, never>>>()
      errorOf(piped).toEqualTypeOf<never>()
    })
  })

  describe("options", () => {
    it("discard: true succeeds with void, a boolean not known statically with either", () => {
      const discarded = FanOut.all([num, str], { discard: true })
      successOf(discarded).toEqualTypeOf<void>()
      errorOf(discarded).toEqualTypeOf<NotFound | Unavailable>()
      successOf(FanOut.forEach([1], () => num, { discard: true })).toEqualTypeOf<void>()
      successOf(pipe([num], FanOut.all({ discard: true }))).toEqualTypeOf<void>()
      successOf(FanOut.all([num], { discard: false })).toEqualTypeOf<[number]>()
      const maybe: boolean = Math.random() > 2
      successOf(FanOut.forEach([1], () => num, { discard: maybe })).toEqualTypeOf<Array<number> | void>()
      // @ts-expect-error settle keeps its outcomes: it has no discard
      FanOut.settle([num], { discard: true })
      expect(Effect.isEffect(discarded)).toBe(true)
    })

    it("outcomes: true gives each task's Success in the tasks' shape, also data-last; a boolean gives either", () => {
      successOf(pipe({ a: num }, FanOut.all({ outcomes: true }))).toEqualTypeOf<{ a: Outcome.Success<number> }>()
      successOf(pipe([1], FanOut.forEach(() => str, { outcomes: true }))).toEqualTypeOf<
        Array<Outcome.Success<string>>
      >()
      const maybe: boolean = Math.random() > 2
      successOf(FanOut.all(new Set([num]), { outcomes: maybe })).toEqualTypeOf<
        Array<Outcome.Success<number>> | Array<number>
      >()
      // @ts-expect-error settle gives outcomes already: it has no outcomes option
      FanOut.settle([num], { outcomes: true })
    })

    it("concurrency takes a positive integer or \"unbounded\"; Effect 3's \"inherit\" is not one", () => {
      const bounded = FanOut.all({ a: num, b: str }, { concurrency: 4 })
      successOf(bounded).toEqualTypeOf<{ a: number; b: string }>()
      const unbounded = FanOut.settle([num], { concurrency: "unbounded" })
      successOf(unbounded).toEqualTypeOf<[Outcome.Outcome<number, NotFound>]>()
      // @ts-expect-error Effect 4 has no inherited concurrency
      FanOut.all([num], { concurrency: "inherit" })
      // @ts-expect-error nor does any combinator
      FanOut.forEach([1], () => num, { concurrency: "inherit" })
      // @ts-expect-error nor a string other than "unbounded"
      FanOut.settle([num], { concurrency: "8" })
      expect(Effect.isEffect(bounded)).toBe(true)
    })

    it("batching, an option of the Effect 3 line, is no option here", () => {
      // @ts-expect-error Effect 4 batches requests by their resolver's window: there is no batching option
      FanOut.all([num], { batching: true })
      // @ts-expect-error in no combinator
      FanOut.settle({ a: num }, { batching: "inherit" })
      // @ts-expect-error in the data-last forms neither
      FanOut.forEach(() => num, { batching: true })
    })

    it("hedge.nonFatal is given the tasks' errors; budget takes a Budget or a function of the task's key", () => {
      const budget = Budget.makeUnsafe({ maxTokens: 10, tokenRatio: 0.1 })
      const run = FanOut.settle({ a: num, b: str }, {
        hedge: {
          delay: Hedge.adaptive({ percentile: 0.9, window: 10, min: "1 millis", max: "1 second" }),
          nonFatal: (error) => {
            expectTypeOf(error).toEqualTypeOf<NotFound | Unavailable | FanOut.FanOutTimeoutError>()
            return error._tag === "Unavailable"
          }
        },
        budget: (key) => key === "a" ? budget : undefined
      })
      successOf(run).toEqualTypeOf<{ a: Outcome.Outcome<number, NotFound>; b: Outcome.Outcome<string, Unavailable> }>()
      // In every combinator.
      FanOut.all([num], {
        hedge: {
          delay: "10 millis",
          nonFatal: (error) => {
            expectTypeOf(error).toEqualTypeOf<NotFound | FanOut.FanOutTimeoutError>()
            return true
          }
        }
      })
      // The data-last forms type the functions' parameters too (the errors are not known yet there).
      pipe(
        [num],
        FanOut.settle({
          budget: (key) => key === 0 ? budget : undefined,
          hedge: { delay: "1 millis", nonFatal: (error) => error !== undefined }
        })
      )
      // @ts-expect-error a budget is a Budget, not its settings
      FanOut.all([num], { budget: { maxTokens: 10, tokenRatio: 0.1 } })
      // @ts-expect-error nonFatal decides on an error: it returns a boolean
      FanOut.all([num], { hedge: { delay: "10 millis", nonFatal: () => "yes" } })
      expectTypeOf<Outcome.Outcome<number, NotFound>["refused"]>().toEqualTypeOf<"budget" | undefined>()
      expect(Effect.isEffect(run)).toBe(true)
    })
  })

  describe("deadline budgets, retry budgets, adaptive hedging and attempt telemetry", () => {
    it("Deadline.remaining is an Option of a Duration, failing never and needing nothing", () => {
      successOf(Deadline.remaining).toEqualTypeOf<Option.Option<Duration.Duration>>()
      errorOf(Deadline.remaining).toEqualTypeOf<never>()
      contextOf(Deadline.remaining).toEqualTypeOf<never>()
    })

    it("Budget.make fails with the invalid option; Budget.layer provides the service it is given", () => {
      const made = Budget.make({ maxTokens: 10, tokenRatio: 0.1 })
      successOf(made).toEqualTypeOf<Budget.Budget>()
      errorOf(made).toEqualTypeOf<FanOutError.InvalidOptionError>()
      const Downstream = Context.Service<Budget.Budget>("test/Downstream")
      const layer = Budget.layer(Downstream, { maxTokens: 10, tokenRatio: 0.1 })
      expectTypeOf(layer).toEqualTypeOf<Layer.Layer<Budget.Budget, FanOutError.InvalidOptionError>>()
      // @ts-expect-error a budget is settings of numbers
      Budget.make({ maxTokens: "10", tokenRatio: 0.1 })
    })

    it("Hedge.adaptive is a delay the hedge option takes, as a duration is", () => {
      const p95 = Hedge.adaptive({ percentile: 0.95, window: 100, min: "1 millis", max: "1 second" })
      expectTypeOf(p95).toEqualTypeOf<Hedge.Adaptive>()
      FanOut.settle([num], { hedge: { delay: p95 } })
      FanOut.settle([num], { hedge: { delay: Duration.millis(5) } })
      // A delay per task, by its key and index; only in a fan-out's options.
      FanOut.settle({ a: num, b: str }, {
        hedge: {
          delay: (key, index) => {
            expectTypeOf(key).toEqualTypeOf<PropertyKey>()
            expectTypeOf(index).toEqualTypeOf<number>()
            return key === "a" ? p95 : "10 millis"
          }
        }
      })
      // @ts-expect-error FanOut.hedge hedges one effect: no task's key to give a function
      FanOut.hedge(num, { delay: () => "10 millis" })
      // @ts-expect-error adaptive settings are not a delay themselves
      FanOut.settle([num], { hedge: { delay: { percentile: 0.95, window: 100, min: "1 millis", max: "1 second" } } })
    })

    it("attempt types and refusals are closed unions; the metrics are counters and histograms", () => {
      expectTypeOf<Attempt.Type>().toEqualTypeOf<"original" | "retry" | "hedge">()
      expectTypeOf<Attempt.Refusal>().toEqualTypeOf<"budget" | "limit" | "deadline">()
      expectTypeOf(Attempt.metrics).toEqualTypeOf<{
        readonly started: Metric.Counter<number>
        readonly retries: Metric.Histogram<number>
        readonly hedges: Metric.Histogram<number>
        readonly retryDelay: Metric.Histogram<number>
        readonly refused: Metric.Counter<number>
      }>()
      expectTypeOf(Attempt.layerMetrics).toEqualTypeOf<Layer.Layer<never>>()
    })
  })
})
