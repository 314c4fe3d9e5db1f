/**
 * Property tests over random mixes of task behaviours and concurrency bounds, run under the TestClock.
 *
 * Every task sleeps a multiple of 10 ms, a per-task time limit is 10k + 4 ms and the deadline is 1005 ms, so no task
 * ever ends at the same instant as the deadline: what each task did can be predicted exactly by simulating the
 * scheduler (each task starts when the first worker is free, in input order).
 */
import { describe, expect, it } from "@effect/vitest"
import { type Cause, Duration, Effect, FastCheck, Fiber, TestClock } from "effect"
import { FanOut } from "../src/index.js"
import type { Outcome } from "../src/index.js"
import { Recorder } from "./support.js"

type Behaviour =
  | { readonly _tag: "succeed" }
  | { readonly _tag: "fail" }
  | { readonly _tag: "die" }
  | { readonly _tag: "sleep"; readonly ms: number }
  | { readonly _tag: "never" }

const behaviour: FastCheck.Arbitrary<Behaviour> = FastCheck.oneof(
  FastCheck.constant({ _tag: "succeed" } as const),
  FastCheck.constant({ _tag: "fail" } as const),
  FastCheck.constant({ _tag: "die" } as const),
  FastCheck.integer({ min: 1, max: 150 }).map((k) => ({ _tag: "sleep", ms: k * 10 }) as const),
  FastCheck.constant({ _tag: "never" } as const)
)
const behaviours = FastCheck.array(behaviour, { minLength: 0, maxLength: 20 })
const concurrency: FastCheck.Arbitrary<number | "unbounded"> = FastCheck.oneof(
  FastCheck.integer({ min: 1, max: 5 }),
  FastCheck.constant("unbounded" as const)
)

const DEADLINE = 1005

/** Counts starts and ends (by finalizer) of every task. */
interface Probe {
  readonly starts: Array<number>
  readonly ends: Array<number>
}

const makeTasks = (list: ReadonlyArray<Behaviour>): { probe: Probe; tasks: Array<Effect.Effect<number, number>> } => {
  const probe: Probe = { starts: list.map(() => 0), ends: list.map(() => 0) }
  const tasks = list.map((b, i) =>
    Effect.suspend((): Effect.Effect<number, number> => {
      probe.starts[i]!++
      switch (b._tag) {
        case "succeed":
          return Effect.succeed(i)
        case "fail":
          return Effect.fail(i)
        case "die":
          return Effect.die(new Error(`task ${i} crashed`))
        case "sleep":
          return Effect.as(Effect.sleep(Duration.millis(b.ms)), i)
        case "never":
          return Effect.never
      }
    }).pipe(Effect.ensuring(Effect.sync(() => probe.ends[i]!++)))
  )
  return { probe, tasks }
}

/**
 * A per-task time limit, or none: 10k + 4 ms, so that every instant a task starts or ends at stays even and never
 * meets the deadline's 1005 ms.
 */
const timeout: FastCheck.Arbitrary<number | undefined> = FastCheck.option(
  FastCheck.integer({ min: 0, max: 60 }).map((k) => k * 10 + 4),
  { nil: undefined }
)

/**
 * When each task would start and end if nothing stopped the fan-out (Infinity: never ends), a task past its time limit
 * ending at it.
 */
const simulate = (list: ReadonlyArray<Behaviour>, bound: number | "unbounded", limit = Infinity) => {
  const width = bound === "unbounded" ? Math.max(list.length, 1) : Math.min(bound, Math.max(list.length, 1))
  const free: Array<number> = new Array(width).fill(0)
  return list.map((b) => {
    let w = 0
    for (let j = 1; j < free.length; j++) if (free[j]! < free[w]!) w = j
    const start = free[w]!
    const duration = b._tag === "sleep" ? b.ms : b._tag === "never" ? Infinity : 0
    const end = start + Math.min(duration, limit)
    free[w] = end
    return { start, end, timedOut: duration > limit }
  })
}

const runUnderClock = <A, E>(self: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const recorder = new Recorder()
    const fiber = yield* Effect.fork(Effect.exit(Effect.supervised(self, recorder)))
    yield* TestClock.adjust(Duration.millis(DEADLINE))
    const exit = yield* Fiber.join(fiber)
    return { exit, recorder }
  })

const expectFinalizersOnce = (probe: Probe) => {
  for (let i = 0; i < probe.starts.length; i++) {
    expect(probe.starts[i]).toBeLessThanOrEqual(1)
    expect(probe.ends[i]).toBe(probe.starts[i])
  }
}

const options = { fastCheck: { numRuns: 50 } }

/** The leaves of a cause, left to right: the first one is the first failure. */
const leavesOf = (cause: Cause.Cause<unknown>): Array<Cause.Cause<unknown>> => {
  switch (cause._tag) {
    case "Sequential":
    case "Parallel":
      return [...leavesOf(cause.left), ...leavesOf(cause.right)]
    case "Empty":
      return []
    default:
      return [cause]
  }
}

/** Which task a leaf comes from: a task fails with its index, or dies with an error naming it. */
const taskOfLeaf = (leaf: Cause.Cause<unknown>): number => {
  if (leaf._tag === "Fail") return leaf.error as number
  if (leaf._tag === "Die") return Number(/^task (\d+) crashed$/.exec((leaf.defect as Error).message)?.[1])
  return NaN
}

describe("properties", () => {
  it.effect.prop(
    "settle: shape and order are kept, each outcome is what its task did, finalizers run once, nothing outlives it",
    [behaviours, concurrency, FastCheck.boolean(), timeout],
    ([list, bound, batching, limit]) =>
      Effect.gen(function*() {
        const { probe, tasks } = makeTasks(list)
        const { exit, recorder } = yield* runUnderClock(
          FanOut.settle(tasks, { concurrency: bound, deadline: DEADLINE, batching, timeout: limit })
        )
        expect(exit._tag).toBe("Success")
        if (exit._tag !== "Success") return
        const outcomes: Array<Outcome.Outcome<number, number>> = exit.value
        expect(outcomes.length).toBe(list.length)
        const plan = simulate(list, bound, limit)
        list.forEach((b, i) => {
          const o = outcomes[i]!
          const { end, start, timedOut } = plan[i]!
          expect(o.key).toBe(i)
          if (start > DEADLINE) {
            expect(o).toMatchObject({ _tag: "TimedOut", reason: "Deadline", attempts: 0, durationMillis: 0 })
            expect(probe.starts[i]).toBe(0)
          } else if (end > DEADLINE) {
            expect(o).toMatchObject({ _tag: "TimedOut", reason: "Deadline", attempts: 1 })
            expect(o.durationMillis).toBe(DEADLINE - start)
          } else if (timedOut) {
            expect(o).toMatchObject({ _tag: "TimedOut", reason: "Timeout", attempts: 1, durationMillis: limit })
          } else {
            expect(o.attempts).toBe(1)
            expect(o.durationMillis).toBe(end - start)
            switch (b._tag) {
              case "succeed":
              case "sleep":
                expect(o).toMatchObject({ _tag: "Success", value: i })
                break
              case "fail":
                expect(o).toMatchObject({ _tag: "Failure", error: i })
                break
              case "die":
                expect(o._tag).toBe("Defect")
                expect(o._tag === "Defect" && (o.defect as Error).message).toBe(`task ${i} crashed`)
                break
              case "never":
                expect.fail("a never-ending task cannot end before the deadline")
            }
          }
        })
        expectFinalizersOnce(probe)
        expect(recorder.running).toBe(0)
      }),
    options
  )

  it.effect.prop(
    "all: succeeds in order, or fails with the earliest failure, starts nothing after it, and leaves nothing running",
    [behaviours, concurrency, FastCheck.boolean(), FastCheck.boolean()],
    ([list, bound, report, batching]) =>
      Effect.gen(function*() {
        const { probe, tasks } = makeTasks(list)
        const { exit, recorder } = yield* runUnderClock(
          FanOut.all(tasks, { concurrency: bound, deadline: DEADLINE, report, batching })
        )
        const plan = simulate(list, bound)
        const failing = list.flatMap((b, i) =>
          (b._tag === "fail" || b._tag === "die") && plan[i]!.end < DEADLINE ? [i] : []
        )
        const firstFailureAt = Math.min(...failing.map((i) => plan[i]!.end))
        const lateTask = plan.some(({ end }) => end > DEADLINE)
        const failedOnItsOwn = (i: number) =>
          (list[i]!._tag === "fail" || list[i]!._tag === "die") && probe.starts[i] === 1

        if (failing.length > 0) {
          expect(exit._tag).toBe("Failure")
          if (exit._tag !== "Failure") return
          // The task the fan-out failed with, and every failure the error holds, by task index.
          let key: number
          let seen: ReadonlyArray<number>
          if (report) {
            const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
            expect(error).toBeInstanceOf(FanOut.FanOutFailure)
            const failure = error as FanOut.FanOutFailure<number>
            key = failure.key as number
            expect(failure.reason).toBe(list[key]!._tag === "fail" ? "Failure" : "Defect")
            if (failure.reason === "Failure") expect(failure.error).toBe(key)
            expect(failure.outcomes.map((o) => o.key)).toStrictEqual(list.map((_, i) => i))
            expect(failure.failures[0]?.key).toBe(key)
            seen = failure.failures.map((o) => o.key as number)
          } else {
            // The task's own error first, then in parallel the other genuine failures; never an interruption.
            const leaves = leavesOf(exit.cause)
            expect(leaves.every((leaf) => leaf._tag !== "Interrupt")).toBe(true)
            seen = leaves.map(taskOfLeaf)
            key = seen[0]!
            expect(leaves[0]!._tag).toBe(list[key]!._tag === "fail" ? "Fail" : "Die")
          }
          // the fan-out failed with one of the tasks that failed first
          expect(failing.filter((i) => plan[i]!.end === firstFailureAt)).toContain(key)
          // every failure it reports is one a task made, and no task is reported twice
          expect(seen.every(failedOnItsOwn)).toBe(true)
          expect(new Set(seen).size).toBe(seen.length)
          // no task was started after the first failure: neither later in time, nor, at time 0 (where every task
          // starts in input order in one pass), after the failing task in input order
          plan.forEach(({ start }, i) => {
            if (start > firstFailureAt || (firstFailureAt === 0 && start === 0 && i > key)) {
              expect(probe.starts[i]).toBe(0)
            }
          })
          if (firstFailureAt === 0) expect(key).toBe(Math.min(...failing.filter((i) => plan[i]!.end === 0)))
        } else if (lateTask) {
          expect(exit._tag).toBe("Failure")
          if (exit._tag !== "Failure") return
          const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
          if (report) {
            expect(error).toBeInstanceOf(FanOut.FanOutFailure)
            expect((error as FanOut.FanOutFailure<number>).reason).toBe("Deadline")
          } else {
            expect(error).toMatchObject({ _tag: "FanOutTimeoutError", reason: "Deadline" })
          }
        } else {
          expect(exit._tag).toBe("Success")
          if (exit._tag === "Success") expect(exit.value).toStrictEqual(list.map((_, i) => i))
        }
        expectFinalizersOnce(probe)
        expect(recorder.running).toBe(0)
      }),
    options
  )

  it.effect.prop(
    "all: interrupting the caller interrupts every task, runs each finalizer once and leaves nothing running",
    [behaviours, concurrency],
    ([list, bound]) =>
      Effect.gen(function*() {
        const { probe, tasks } = makeTasks(list)
        const recorder = new Recorder()
        const fiber = yield* Effect.fork(Effect.supervised(FanOut.all(tasks, { concurrency: bound }), recorder))
        yield* TestClock.adjust("500 millis")
        yield* Fiber.interrupt(fiber)
        expectFinalizersOnce(probe)
        expect(recorder.running).toBe(0)
      }),
    options
  )
})
