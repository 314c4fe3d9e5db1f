/**
 * Property tests over random mixes of task behaviours and concurrency bounds, run under the TestClock.
 *
 * Every task sleeps a multiple of 10 ms and the deadline is 1005 ms, so no task ever ends at the same instant as the
 * deadline: what each task did can be predicted exactly by simulating the scheduler (each task starts when the first
 * worker is free, in input order).
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, FastCheck, Fiber, Option, Supervisor, TestClock } from "effect"
import { FanOut } from "../src/index.js"
import type { Outcome } from "../src/index.js"

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

/** When each task would start and end if nothing stopped the fan-out (Infinity: never ends). */
const simulate = (list: ReadonlyArray<Behaviour>, bound: number | "unbounded") => {
  const width = bound === "unbounded" ? Math.max(list.length, 1) : Math.min(bound, Math.max(list.length, 1))
  const free: Array<number> = new Array(width).fill(0)
  return list.map((b) => {
    let w = 0
    for (let j = 1; j < free.length; j++) if (free[j]! < free[w]!) w = j
    const start = free[w]!
    const duration = b._tag === "sleep" ? b.ms : b._tag === "never" ? Infinity : 0
    const end = start + duration
    free[w] = end
    return { start, end }
  })
}

/** Remembers every fiber started under it, so that the test can check they have all ended. */
class Recorder extends Supervisor.AbstractSupervisor<void> {
  readonly fibers: Array<{ readonly unsafePoll: () => unknown }> = []
  readonly value = Effect.void
  override onStart<A, E, R>(
    _context: unknown,
    _effect: Effect.Effect<A, E, R>,
    _parent: Option.Option<unknown>,
    fiber: Fiber.RuntimeFiber<A, E>
  ): void {
    this.fibers.push(fiber)
  }
  get running(): number {
    return this.fibers.filter((fiber) => fiber.unsafePoll() === null).length
  }
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

describe("properties", () => {
  it.effect.prop(
    "settle: shape and order are kept, each outcome is what its task did, finalizers run once, nothing outlives it",
    [behaviours, concurrency],
    ([list, bound]) =>
      Effect.gen(function*() {
        const { probe, tasks } = makeTasks(list)
        const { exit, recorder } = yield* runUnderClock(
          FanOut.settle(tasks, { concurrency: bound, deadline: DEADLINE })
        )
        expect(exit._tag).toBe("Success")
        if (exit._tag !== "Success") return
        const outcomes: Array<Outcome.Outcome<number, number>> = exit.value
        expect(outcomes.length).toBe(list.length)
        const plan = simulate(list, bound)
        list.forEach((b, i) => {
          const o = outcomes[i]!
          const { end, start } = plan[i]!
          expect(o.key).toBe(i)
          if (start > DEADLINE) {
            expect(o).toMatchObject({ _tag: "TimedOut", reason: "Deadline", attempts: 0, durationMillis: 0 })
            expect(probe.starts[i]).toBe(0)
          } else if (end > DEADLINE) {
            expect(o).toMatchObject({ _tag: "TimedOut", reason: "Deadline", attempts: 1 })
            expect(o.durationMillis).toBe(DEADLINE - start)
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
    [behaviours, concurrency],
    ([list, bound]) =>
      Effect.gen(function*() {
        const { probe, tasks } = makeTasks(list)
        const { exit, recorder } = yield* runUnderClock(
          FanOut.all(tasks, { concurrency: bound, deadline: DEADLINE, report: true })
        )
        const plan = simulate(list, bound)
        const failing = list.flatMap((b, i) =>
          (b._tag === "fail" || b._tag === "die") && plan[i]!.end < DEADLINE ? [i] : []
        )
        const firstFailureAt = Math.min(...failing.map((i) => plan[i]!.end))
        const lateTask = plan.some(({ end }) => end > DEADLINE)

        if (failing.length > 0) {
          expect(exit._tag).toBe("Failure")
          if (exit._tag !== "Failure") return
          const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
          expect(error).toBeInstanceOf(FanOut.FanOutFailure)
          const failure = error as FanOut.FanOutFailure<number>
          const key = failure.key as number
          // the fan-out failed with one of the tasks that failed first
          expect(failing.filter((i) => plan[i]!.end === firstFailureAt)).toContain(key)
          expect(failure.reason).toBe(list[key]!._tag === "fail" ? "Failure" : "Defect")
          if (failure.reason === "Failure") expect(failure.error).toBe(key)
          expect(failure.outcomes.map((o) => o.key)).toStrictEqual(list.map((_, i) => i))
          expect(failure.failures[0]?.key).toBe(key)
          // no task was started after the first failure
          plan.forEach(({ start }, i) => {
            if (start > firstFailureAt) expect(probe.starts[i]).toBe(0)
          })
        } else if (lateTask) {
          expect(exit._tag).toBe("Failure")
          if (exit._tag !== "Failure") return
          const error = exit.cause._tag === "Fail" ? exit.cause.error : undefined
          expect(error).toBeInstanceOf(FanOut.FanOutFailure)
          expect((error as FanOut.FanOutFailure<number>).reason).toBe("Deadline")
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
