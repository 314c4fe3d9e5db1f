/**
 * Property tests over random mixes of task behaviours and concurrency bounds, run under the TestClock.
 *
 * Every task sleeps a multiple of 10 ms, a per-task time limit is 10k + 4 ms and the deadline is 1005 ms, so no task
 * ever ends at the same instant as the deadline: what each task did can be predicted exactly by simulating the
 * scheduler (each task starts when the first worker is free, in input order).
 *
 * Each property also runs both ways a task can run: as it is (its time limit set by the engine on the task's own
 * fiber), or through the per-attempt path of `retry` (each attempt on a fiber of its own, limited by the fan-out's
 * alarms), with a schedule that never retries, so that both must give the same outcomes.
 */
import { describe, expect, it } from "@effect/vitest"
import { Arbitrary, type Cause, Duration, Effect, Fiber, Schedule, Schema } from "effect"
import { TestClock } from "effect/testing"
import { FanOut } from "../src/index.js"
import type { Outcome } from "../src/index.js"
import { recorded, Recorder } from "./support.js"

const between = (minimum: number, maximum: number) => Schema.Int.check(Schema.isBetween({ minimum, maximum }))

type Behaviour =
  | { readonly _tag: "succeed" }
  | { readonly _tag: "fail" }
  | { readonly _tag: "die" }
  | { readonly _tag: "sleep"; readonly ms: number }
  | { readonly _tag: "never" }

const behaviour: Arbitrary.Arbitrary<Behaviour> = Arbitrary.schema(Schema.Union([
  Schema.TaggedStruct("succeed", {}),
  Schema.TaggedStruct("fail", {}),
  Schema.TaggedStruct("die", {}),
  Schema.TaggedStruct("sleep", { ms: between(1, 150) }),
  Schema.TaggedStruct("never", {})
])).pipe(Arbitrary.map((b): Behaviour => b._tag === "sleep" ? { _tag: "sleep", ms: b.ms * 10 } : b))
const behaviours = Arbitrary.array(behaviour, { minLength: 0, maxLength: 20 })
const concurrency: Schema.Schema<number | "unbounded"> = Schema.Union([between(1, 5), Schema.Literal("unbounded")])

/** Whether tasks run through the per-attempt path of `retry` (a schedule that never retries), or as they are. */
const perAttempt = Schema.Boolean
const retryOf = (attempted: boolean) => attempted ? Schedule.recurs(0) : undefined

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
const timeout = Arbitrary.schema(Schema.UndefinedOr(between(0, 60))).pipe(
  Arbitrary.map((k) => k === undefined ? undefined : k * 10 + 4)
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

/** Runs `self` under a fresh `Recorder` while the clock moves past the deadline. */
const runUnderClock = <A, E>(self: Effect.Effect<A, E>) =>
  Effect.gen(function*() {
    const recorder = new Recorder()
    const fiber = yield* Effect.forkChild(Effect.exit(recorded(self, recorder)))
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

// Size 20 lets the task lists reach their 20 tasks (the default size, 10, caps collections at 10).
const options = { arbitrary: { runs: 50, size: 20 } }

/** Which task a reason comes from: a task fails with its index, or dies with an error naming it. */
const taskOfReason = (reason: Cause.Reason<unknown>): number => {
  if (reason._tag === "Fail") return reason.error as number
  if (reason._tag === "Die") return Number(/^task (\d+) crashed$/.exec((reason.defect as Error).message)?.[1])
  return NaN
}

/** The one typed error of a cause made of a single `Fail`. */
const onlyError = (cause: Cause.Cause<unknown>): unknown => {
  expect(cause.reasons).toHaveLength(1)
  const reason = cause.reasons[0]!
  return reason._tag === "Fail" ? reason.error : undefined
}

describe("properties", () => {
  it.effect.prop(
    "settle: shape and order are kept, each outcome is what its task did, finalizers run once, nothing outlives it",
    [behaviours, concurrency, perAttempt, timeout],
    ([list, bound, attempted, limit]) =>
      Effect.gen(function*() {
        const { probe, tasks } = makeTasks(list)
        const { exit, recorder } = yield* runUnderClock(
          FanOut.settle(tasks, { concurrency: bound, deadline: DEADLINE, retry: retryOf(attempted), timeout: limit })
        )
        expect(exit._tag).toBe("Success")
        if (exit._tag !== "Success") return
        const outcomes: Array<Outcome.Outcome<number, unknown>> = exit.value
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
    [behaviours, concurrency, Schema.Boolean, perAttempt],
    ([list, bound, report, attempted]) =>
      Effect.gen(function*() {
        const { probe, tasks } = makeTasks(list)
        const { exit, recorder } = yield* runUnderClock(
          FanOut.all(tasks, { concurrency: bound, deadline: DEADLINE, report, retry: retryOf(attempted) })
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
            const error = onlyError(exit.cause)
            expect(error).toBeInstanceOf(FanOut.FanOutFailure)
            const failure = error as FanOut.FanOutFailure<number>
            key = failure.key as number
            expect(failure.reason).toBe(list[key]!._tag === "fail" ? "Failure" : "Defect")
            if (failure.reason === "Failure") expect(failure.error).toBe(key)
            expect(failure.outcomes.map((o) => o.key)).toStrictEqual(list.map((_, i) => i))
            expect(failure.failures[0]?.key).toBe(key)
            seen = failure.failures.map((o) => o.key as number)
          } else {
            // The task's own reason first, then the other genuine failures; never an interruption.
            const reasons = exit.cause.reasons
            expect(reasons.every((reason) => reason._tag !== "Interrupt")).toBe(true)
            seen = reasons.map(taskOfReason)
            key = seen[0]!
            expect(reasons[0]!._tag).toBe(list[key]!._tag === "fail" ? "Fail" : "Die")
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
          const error = onlyError(exit.cause)
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
    [behaviours, concurrency, perAttempt],
    ([list, bound, attempted]) =>
      Effect.gen(function*() {
        const { probe, tasks } = makeTasks(list)
        const recorder = new Recorder()
        const fiber = yield* Effect.forkChild(
          recorded(FanOut.all(tasks, { concurrency: bound, retry: retryOf(attempted) }), recorder)
        )
        yield* TestClock.adjust("500 millis")
        yield* Fiber.interrupt(fiber)
        expectFinalizersOnce(probe)
        expect(recorder.running).toBe(0)
      }),
    options
  )

  it.effect.prop(
    "settle: interrupting the caller interrupts every task, runs each finalizer once and leaves nothing running",
    [behaviours, concurrency, timeout],
    ([list, bound, limit]) =>
      Effect.gen(function*() {
        const { probe, tasks } = makeTasks(list)
        const recorder = new Recorder()
        const fiber = yield* Effect.forkChild(
          recorded(FanOut.settle(tasks, { concurrency: bound, timeout: limit, deadline: DEADLINE }), recorder)
        )
        yield* TestClock.adjust("500 millis")
        yield* Fiber.interrupt(fiber)
        expectFinalizersOnce(probe)
        expect(recorder.running).toBe(0)
      }),
    options
  )
})
