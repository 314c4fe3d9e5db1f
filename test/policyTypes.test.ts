/**
 * Static types of the policies: checked by `tsc --noEmit` (part of `npm test`); the runtime assertions only make
 * vitest count the file.
 */
import { describe, expect, expectTypeOf, it } from "@effect/vitest"
import { Data, Effect, pipe, Schedule, type Stream } from "effect"
import { FanOut, type FanOutError, type Outcome } from "../src/index.js"

class AccountDown extends Data.TaggedError("AccountDown")<{}> {}
class UsageDown extends Data.TaggedError("UsageDown")<{}> {}

const account = Effect.fail(new AccountDown()) as Effect.Effect<{ id: string }, AccountDown>
const usage = Effect.fail(new UsageDown()) as Effect.Effect<number, UsageDown>
const billing = Effect.succeed("paid") as Effect.Effect<string, never>

/** A schedule that is given only `UsageDown` errors. */
const onUsage = Schedule.recurs(2).pipe(Schedule.setInputType<UsageDown>())

describe("policy types", () => {
  it("required keys are checked and only their errors reach the error channel", () => {
    const settled = FanOut.settle({ account, usage, billing }, { required: ["account"] })
    expectTypeOf(settled).toEqualTypeOf<
      Effect.Effect<
        {
          account: Outcome.Outcome<{ id: string }, AccountDown>
          usage: Outcome.Outcome<number, UsageDown>
          billing: Outcome.Outcome<string, never>
        },
        AccountDown
      >
    >()
    const _withDeadline = FanOut.settle({ account, usage }, { required: ["account"], deadline: "1 second" })
    expectTypeOf<Effect.Error<typeof _withDeadline>>().toEqualTypeOf<
      AccountDown | FanOutError.FanOutTimeoutError
    >()
    const _tuple = FanOut.settle([account, usage] as const, { required: [1] })
    expectTypeOf<Effect.Error<typeof _tuple>>().toEqualTypeOf<UsageDown>()
    // @ts-expect-error "nope" is not a key of the tasks
    FanOut.settle({ account, usage }, { required: ["nope"] })
    // @ts-expect-error a tuple of two has no index 2
    FanOut.settle([account, usage] as const, { required: [2] })
    // A struct's numeric keys are strings, as Object.keys gives them
    const _numericKeys = FanOut.settle({ 0: account, 1: usage }, { required: ["1"] })
    expectTypeOf<Effect.Error<typeof _numericKeys>>().toEqualTypeOf<UsageDown>()
    // @ts-expect-error a struct's key is the string "1", not the number 1
    FanOut.settle({ 0: account, 1: usage }, { required: [1] })
    expectTypeOf<Effect.Error<ReturnType<typeof FanOut.settle<{ a: typeof usage }, {}>>>>().toEqualTypeOf<
      never
    >()
    expect(typeof settled).toBe("object")
  })

  it("quorum gives keyed successes (narrowing on key gives that task's value) and a QuorumError of the errors", () => {
    const q = FanOut.quorum({ account, usage, billing }, 2)
    type Keyed<A, K> = Outcome.Success<A> & { readonly key: K }
    expectTypeOf(q).toEqualTypeOf<
      Effect.Effect<
        Array<Keyed<{ id: string }, "account"> | Keyed<number, "usage"> | Keyed<string, "billing">>,
        FanOutError.QuorumError<AccountDown | UsageDown>
      >
    >()
    const onWinners = (winners: Effect.Success<typeof q>) =>
      winners.map((winner) => {
        if (winner.key === "usage") expectTypeOf(winner.value).toEqualTypeOf<number>()
        if (winner.key === "account") expectTypeOf(winner.value).toEqualTypeOf<{ id: string }>()
        return winner.key
      })
    const _numericKeys = FanOut.quorum({ 0: usage, 1: billing }, 1)
    expectTypeOf<Effect.Success<typeof _numericKeys>>().toEqualTypeOf<
      Array<Keyed<number, "0"> | Keyed<string, "1">>
    >()
    const _tuple = FanOut.quorum([usage, billing] as const, 1)
    expectTypeOf<Effect.Success<typeof _tuple>>().toEqualTypeOf<
      Array<Keyed<number, 0> | Keyed<string, 1>>
    >()
    const first = FanOut.firstSuccess([usage, billing])
    expectTypeOf(first).toEqualTypeOf<Effect.Effect<number | string, FanOutError.QuorumError<UsageDown>>>()
    const list: Array<typeof usage> = [usage]
    const dataLast = FanOut.quorum(1)(list)
    expectTypeOf(dataLast).toEqualTypeOf<
      Effect.Effect<Array<Keyed<number, number>>, FanOutError.QuorumError<UsageDown>>
    >()
    expect(typeof onWinners).toBe("function")
  })

  it("hedge keeps the task's type; stream emits the union of the tasks' outcomes", () => {
    expectTypeOf(FanOut.hedge(usage, { delay: 10 })).toEqualTypeOf<Effect.Effect<number, UsageDown>>()
    expectTypeOf(usage.pipe(FanOut.hedge({ delay: "10 millis", max: 3 }))).toEqualTypeOf<
      Effect.Effect<number, UsageDown>
    >()
    const s = FanOut.stream({ account, billing }, { retry: Schedule.recurs(2) })
    expectTypeOf(s).toEqualTypeOf<
      Stream.Stream<Outcome.Outcome<{ id: string }, AccountDown> | Outcome.Outcome<string, never>>
    >()
    expect(typeof s).toBe("object")
  })

  it("report: true turns the error channel into FanOutFailure of the tasks' errors", () => {
    const reported = FanOut.all({ account, usage }, { report: true, timeout: 100 })
    expectTypeOf<Effect.Error<typeof reported>>().toEqualTypeOf<
      FanOutError.FanOutFailure<AccountDown | UsageDown>
    >()
    expect(typeof reported).toBe("object")
  })

  it("required with report: true lists every task, so the FanOutFailure carries every task's error", () => {
    const reported = FanOut.settle({ account, usage, billing }, { required: ["account"], report: true })
    expectTypeOf<Effect.Error<typeof reported>>().toEqualTypeOf<
      FanOutError.FanOutFailure<AccountDown | UsageDown>
    >()
    expect(typeof reported).toBe("object")
  })

  it("settleForEach takes required item indices, and fails with their error only then", () => {
    const each = FanOut.settleForEach([1, 2], () => usage, { required: [0] })
    expectTypeOf<Effect.Error<typeof each>>().toEqualTypeOf<UsageDown>()
    const _timed = FanOut.settleForEach([1, 2], () => usage, { required: [0], timeout: 10 })
    expectTypeOf<Effect.Error<typeof _timed>>().toEqualTypeOf<UsageDown | FanOutError.FanOutTimeoutError>()
    const _optional = FanOut.settleForEach([1, 2], () => usage, { label: (n) => `item-${n}` })
    expectTypeOf<Effect.Error<typeof _optional>>().toEqualTypeOf<never>()
    expect(typeof each).toBe("object")
  })

  it("retry's schedule is checked against the tasks' errors, and time-outs when a timeout is set", () => {
    const onUsageOrTimeout = Schedule.recurs(2).pipe(
      Schedule.setInputType<UsageDown | FanOutError.FanOutTimeoutError>()
    )
    const ok = FanOut.all([usage], { retry: onUsage })
    // @ts-expect-error the schedule only reads UsageDown, but the tasks also fail with AccountDown
    FanOut.settle({ account, usage }, { retry: onUsage })
    // @ts-expect-error with a timeout, the schedule is also given FanOutTimeoutError
    FanOut.settle([usage], { retry: onUsage, timeout: 10 })
    FanOut.settle([usage], { retry: onUsageOrTimeout, timeout: 10 })
    // @ts-expect-error forEach: the tasks fail with AccountDown
    FanOut.forEach([1], () => account, { retry: onUsage })
    // @ts-expect-error quorum: one task fails with AccountDown
    FanOut.quorum([account, usage], 1, { retry: onUsage })
    // @ts-expect-error firstSuccess: the task fails with AccountDown
    FanOut.firstSuccess([account], { retry: onUsage })
    // @ts-expect-error stream: the task fails with AccountDown
    FanOut.stream([account], { retry: onUsage })
    // A schedule that reads no input fits every fan-out.
    FanOut.settleForEach([1], () => account, { retry: Schedule.recurs(2), timeout: 10 })
    expect(typeof ok).toBe("object")
  })

  it("data-last forms check required and retry against the tasks once they are given", () => {
    const _settled = FanOut.settle({ required: ["account"] })({ account, usage })
    expectTypeOf<Effect.Error<typeof _settled>>().toEqualTypeOf<AccountDown>()
    expectTypeOf<Effect.Success<typeof _settled>>().toEqualTypeOf<
      { account: Outcome.Outcome<{ id: string }, AccountDown>; usage: Outcome.Outcome<number, UsageDown> }
    >()
    const piped = pipe([usage, billing] as const, FanOut.settle({ required: [0] }))
    expectTypeOf<Effect.Error<typeof piped>>().toEqualTypeOf<UsageDown>()
    // @ts-expect-error "nope" is not a key of these tasks
    FanOut.settle({ required: ["nope"] })({ account, usage })
    const _retried = FanOut.all({ retry: onUsage })([usage])
    expectTypeOf<Effect.Error<typeof _retried>>().toEqualTypeOf<UsageDown>()
    // @ts-expect-error the schedule only reads UsageDown, but these tasks fail with AccountDown
    FanOut.all({ retry: onUsage })([account])
    // @ts-expect-error with a timeout the schedule is also given FanOutTimeoutError
    FanOut.settle({ retry: onUsage, timeout: 10 })([usage])
    // @ts-expect-error quorum: one task fails with AccountDown
    FanOut.quorum(1, { retry: onUsage })([account, usage])
    // @ts-expect-error forEach: the tasks fail with AccountDown
    pipe([1], FanOut.forEach(() => account, { retry: onUsage }))
    const _each = pipe([1], FanOut.forEach(() => usage, { retry: onUsage }))
    expectTypeOf<Effect.Error<typeof _each>>().toEqualTypeOf<UsageDown>()
    // @ts-expect-error firstSuccess: the task fails with AccountDown
    pipe([account], FanOut.firstSuccess({ retry: onUsage }))
    // @ts-expect-error stream: the task fails with AccountDown
    FanOut.stream({ retry: onUsage })({ account })
    const _quorum = FanOut.quorum(1, { retry: onUsage })([usage, usage])
    expectTypeOf<Effect.Error<typeof _quorum>>().toEqualTypeOf<FanOutError.QuorumError<UsageDown>>()
    const _first = pipe({ a: usage }, FanOut.firstSuccess({ retry: onUsage }))
    expectTypeOf<Effect.Success<typeof _first>>().toEqualTypeOf<number>()
    const _streamed = FanOut.stream({ retry: onUsage })([usage])
    expectTypeOf<Stream.Success<typeof _streamed>>().toEqualTypeOf<Outcome.Outcome<number, UsageDown>>()
    const _anyInput = FanOut.all({ retry: Schedule.recurs(1), timeout: 10 })({ account, usage })
    expectTypeOf<Effect.Error<typeof _anyInput>>().toEqualTypeOf<
      AccountDown | UsageDown | FanOutError.FanOutTimeoutError
    >()
    expect(typeof piped).toBe("object")
  })
})
