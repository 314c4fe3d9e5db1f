/**
 * Property tests of the Promise facade over random mixes of functions — answering or failing after a while, throwing
 * at once, hanging until their signal aborts them, or ignoring their signal — with random bounds, time-outs and a
 * deadline, under fake timers.
 *
 * Times never tie where a tie would make the outcome ambiguous: functions answer after multiples of 10 ms, a
 * time-out is 10·t + 2 ms (never a function's own answer time), and the deadline is odd (1005 ms) while every
 * event before it happens at an even time. So what each function did can be predicted by simulating the slots: each
 * function starts when the first slot is free, in input order, and keeps its slot until its promise settles (the
 * facade waits for functions that ignore their signal).
 */
import { afterEach, describe, expect, it, vi } from "@effect/vitest"
import { Arbitrary, Effect, Schema } from "effect"
import { FanOutTimeoutError } from "../src/FanOutError.js"
import * as P from "../src/promise.js"

type Kind =
  | { readonly _tag: "answer"; readonly ms: number }
  | { readonly _tag: "fail"; readonly ms: number }
  | { readonly _tag: "throw" }
  | { readonly _tag: "hang" }
  | { readonly _tag: "deaf" }

const integer = (minimum: number, maximum: number): Arbitrary.Arbitrary<number> =>
  Arbitrary.schema(Schema.Int.check(Schema.isBetween({ minimum, maximum })))

/** `some` or, as often, `other`. */
const either = <A, B>(some: Arbitrary.Arbitrary<A>, other: Arbitrary.Arbitrary<B>): Arbitrary.Arbitrary<A | B> =>
  Arbitrary.flatMap(Arbitrary.schema(Schema.Boolean), (first): Arbitrary.Arbitrary<A | B> => first ? some : other)

const tags = ["answer", "fail", "throw", "hang", "deaf"] as const
const kind: Arbitrary.Arbitrary<Kind> = Arbitrary.flatMap(
  Arbitrary.schema(Schema.Literals(tags)),
  (tag): Arbitrary.Arbitrary<Kind> =>
    tag === "answer" || tag === "fail"
      ? Arbitrary.map(integer(0, 40), (k) => ({ _tag: tag, ms: k * 10 }))
      : Arbitrary.Constant({ _tag: tag })
)
const kinds = Arbitrary.array(kind, { minLength: 0, maxLength: 12 })
const bound: Arbitrary.Arbitrary<number> = either(integer(1, 4), Arbitrary.Constant(Infinity))
const timeout: Arbitrary.Arbitrary<number | undefined> = either(
  Arbitrary.Constant(undefined),
  Arbitrary.map(integer(0, 30), (t) => t * 10 + 2)
)

const DEADLINE = 1005

/** The functions of one run, with what happened to each. */
const makeFns = (list: ReadonlyArray<Kind>) => {
  const calls = list.map(() => 0)
  const signals: Array<AbortSignal | undefined> = list.map(() => undefined)
  const settled = list.map(() => false)
  const deafReleases: Array<() => void> = []
  let running = 0
  let maxRunning = 0
  const fns = list.map((k, i) => (signal: AbortSignal): Promise<number> | number => {
    calls[i]!++
    signals[i] = signal
    if (k._tag === "throw") {
      settled[i] = true
      throw new Error(`function ${i} threw`)
    }
    running++
    maxRunning = Math.max(maxRunning, running)
    const promise = new Promise<number>((resolve, reject) => {
      if (k._tag === "deaf") {
        deafReleases.push(() => resolve(i))
        return
      }
      // Every other function honours its signal, as `fetch` does.
      const timer = k._tag === "hang" ? undefined : setTimeout(() => {
        if (k._tag === "answer") resolve(i)
        else reject(new Error(`function ${i} failed`))
      }, k.ms)
      signal.addEventListener("abort", () => {
        clearTimeout(timer)
        reject(signal.reason)
      })
    })
    return promise.finally(() => {
      running--
      settled[i] = true
    })
  })
  return {
    fns,
    calls,
    signals,
    settled,
    releaseDeaf: () => deafReleases.forEach((release) => release()),
    maxRunning: () => maxRunning
  }
}

/**
 * When each function starts and when it stops running (`Infinity`: not before the deadline), if nothing stopped the
 * run; `start >= DEADLINE`: never called. A function past its time-out stops then (it is aborted), except one that
 * ignores its signal, which keeps its slot.
 */
const simulate = (list: ReadonlyArray<Kind>, concurrency: number, limit: number | undefined) => {
  const width = Math.min(concurrency, Math.max(list.length, 1))
  const free: Array<number> = new Array(width).fill(0)
  return list.map((k) => {
    let w = 0
    for (let j = 1; j < free.length; j++) if (free[j]! < free[w]!) w = j
    const start = free[w]!
    const natural = k._tag === "answer" || k._tag === "fail" ? k.ms : k._tag === "throw" ? 0 : Infinity
    const timedOut = limit !== undefined && natural > limit
    const stop = k._tag === "deaf" ? Infinity : timedOut ? start + limit : start + natural
    free[w] = start >= DEADLINE ? Infinity : stop
    return { start, stop, timedOut: timedOut && start + limit < DEADLINE, ownEnd: start + natural }
  })
}

/** Watches a run's promise; `done` is which functions had settled when it did. */
const watch = <A>(promise: Promise<A>, settledFns: ReadonlyArray<boolean>) => {
  const state: { settled: boolean; value?: A; error?: unknown; done: ReadonlyArray<boolean> } = {
    settled: false,
    done: []
  }
  const end = () => {
    state.settled = true
    state.done = [...settledFns]
  }
  promise.then(
    (value) => {
      state.value = value
      end()
    },
    (error) => {
      state.error = error
      end()
    }
  )
  return state
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 20; i++) await new Promise<void>((resolve) => setImmediate(resolve))
}

const optionsFor = (concurrency: number, limit: number | undefined): P.Options =>
  limit === undefined ? { concurrency, deadline: DEADLINE } : { concurrency, deadline: DEADLINE, timeout: limit }

afterEach(() => {
  vi.useRealTimers()
})

/** The random functions, bounds and time-outs of every property. */
const inputs: [typeof kinds, typeof bound, typeof timeout] = [kinds, bound, timeout]

/** Runs `property` under fake timers (so that the facade's timers and Effect's clock both follow them). */
const underFakeTimers = (property: () => Promise<void>) =>
  Effect.promise(async () => {
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "Date"] })
    try {
      await property()
    } finally {
      vi.useRealTimers()
    }
  })

const checks = { arbitrary: { seed: 20261001, runs: 100 } }

/**
 * When the run settled, every function it had called had settled (those ignoring their signal included), and no more
 * ran at once than the bound.
 */
const expectWaitedWithinBound = (
  run: ReturnType<typeof makeFns>,
  done: ReadonlyArray<boolean>,
  concurrency: number
) => {
  expect(done.every((settled, i) => settled || run.calls[i] === 0)).toBe(true)
  expect(run.maxRunning()).toBeLessThanOrEqual(Math.min(concurrency, run.calls.length))
}

/** Starts `form` over `list`'s functions and lets the fake clock run past the deadline. */
const runPastDeadline = async <A>(
  form: (fns: ReadonlyArray<P.Fn<number>>, options: P.Options) => Promise<A>,
  list: ReadonlyArray<Kind>,
  concurrency: number,
  limit: number | undefined
) => {
  const run = makeFns(list)
  const result = watch(form(run.fns, optionsFor(concurrency, limit)), run.settled)
  await flush()
  await vi.advanceTimersByTimeAsync(DEADLINE + 10)
  return { run, result }
}

describe("Promise facade properties", () => {
  it.live.prop(
    "settle: every function's result is what it did, in input order, and nothing runs on after the run",
    inputs,
    ([list, concurrency, limit]) =>
      underFakeTimers(async () => {
        const { result, run } = await runPastDeadline(P.settle, list, concurrency, limit)
        const plan = simulate(list, concurrency, limit)
        const deafCalled = list.some((k, i) => k._tag === "deaf" && plan[i]!.start < DEADLINE)
        // A function that ignores its signal is waited for: the run settles only once it has.
        expect(result.settled).toBe(!deafCalled)
        run.releaseDeaf()
        await flush()
        expect(result.settled).toBe(true)
        const settled = result.value!
        expect(settled).toHaveLength(list.length)
        list.forEach((k, i) => {
          const { start, timedOut } = plan[i]!
          const got = settled[i]!
          const where = `function ${i} (${k._tag}, starts at ${start})`
          expect(got.index, where).toBe(i)
          if (start >= DEADLINE) {
            expect([got.status, run.calls[i]], where).toEqual(["timedOut", 0])
            return
          }
          expect(run.calls[i], where).toBe(1)
          if (k._tag === "throw") {
            expect(got, where).toMatchObject({ status: "rejected", reason: { message: `function ${i} threw` } })
          } else if (timedOut) {
            expect(got, where).toMatchObject({ status: "timedOut", limit: "timeout" })
            // Aborted for its own timeout, with the error it is reported with as the cause.
            expect(run.signals[i]!.reason, where).toBeInstanceOf(P.CancelledError)
            expect(run.signals[i]!.reason, where).toMatchObject({ cancelReason: { _tag: "Timeout" } })
            expect((run.signals[i]!.reason as P.CancelledError).cause, where).toBe((got as P.TimedOut).reason)
            expect((got as P.TimedOut).reason, where).toBeInstanceOf(FanOutTimeoutError)
          } else if ((k._tag === "answer" || k._tag === "fail") && start + k.ms < DEADLINE) {
            expect(got, where).toMatchObject(
              k._tag === "answer"
                ? { status: "fulfilled", value: i }
                : { status: "rejected", reason: { message: `function ${i} failed` } }
            )
          } else {
            expect(got, where).toMatchObject({ status: "timedOut", limit: "deadline" })
            expect(run.signals[i]!.aborted, where).toBe(true)
            expect(run.signals[i]!.reason, where).toMatchObject({
              cancelReason: { _tag: "Deadline" },
              cause: (got as P.TimedOut).reason
            })
          }
        })
        expectWaitedWithinBound(run, result.done, concurrency)
      }),
    checks
  )

  it.live.prop(
    "all: the first failure rejects the run, aborts every function still running and calls no other",
    inputs,
    ([list, concurrency, limit]) =>
      underFakeTimers(async () => {
        const { result, run } = await runPastDeadline(P.all, list, concurrency, limit)
        run.releaseDeaf()
        await flush()
        expect(result.settled).toBe(true)
        const plan = simulate(list, concurrency, limit)
        // When each function would fail (a throw, its own failure, its time-out); the deadline fails the run too.
        const failures = list.map((k, i) => {
          const { start, timedOut } = plan[i]!
          if (start >= DEADLINE) return Infinity
          if (k._tag === "throw") return start
          if (timedOut) return start + limit!
          if (k._tag === "fail" && plan[i]!.ownEnd < DEADLINE) return plan[i]!.ownEnd
          return Infinity
        })
        const first = Math.min(DEADLINE, ...failures)
        const allAnswered = list.length === 0 ||
          list.every((k, i) => k._tag === "answer" && !plan[i]!.timedOut && plan[i]!.ownEnd < DEADLINE)
        if (allAnswered) {
          expect(result.error).toBeUndefined()
          expect(result.value).toEqual(list.map((_, i) => i))
          expectWaitedWithinBound(run, result.done, concurrency)
          return
        }
        expect(result.error).toBeDefined()
        const error = result.error as Error
        if (first === DEADLINE) {
          expect(error).toMatchObject({ _tag: "FanOutTimeoutError", reason: "Deadline" })
        } else {
          // Every failure at that instant is a candidate: which one the run saw first is the timers' order.
          const candidates = list.flatMap((k, i) =>
            failures[i] !== first ? [] : [
              k._tag === "throw"
                ? `function ${i} threw`
                : plan[i]!.timedOut
                ? `function ${i} timed out after ${limit}ms`
                : `function ${i} failed`
            ]
          )
          expect(candidates).toContain(error.message)
        }
        list.forEach((_, i) => {
          const { start } = plan[i]!
          const where = `function ${i} (${list[i]!._tag}, starts at ${start}, first failure at ${first})`
          // No function is called once the run has failed, and none is called twice.
          if (start < first) expect(run.calls[i], where).toBe(1)
          else if (start > first) expect(run.calls[i], where).toBe(0)
          else expect(run.calls[i], where).toBeLessThanOrEqual(1)
          // A function still running at the failure has its signal aborted, with the run's error as the cause: the
          // deadline, or the failing function named.
          if (run.calls[i] === 1 && plan[i]!.stop > first && failures[i] !== first) {
            const reason = run.signals[i]!.reason as P.CancelledError
            expect(reason, where).toBeInstanceOf(P.CancelledError)
            expect(reason.cause, where).toBe(error)
            if (first === DEADLINE) expect(reason.cancelReason, where).toStrictEqual({ _tag: "Deadline" })
            else expect(reason.cancelReason._tag, where).toBe("SiblingFailed")
          }
        })
        expectWaitedWithinBound(run, result.done, concurrency)
      }),
    checks
  )
})
