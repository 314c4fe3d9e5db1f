/**
 * The engine's guarantees, through the public combinators: no fiber outlives the call, the finalizers of the tasks it
 * interrupts run exactly once, the concurrency bound holds and nothing starts after the fan-out has begun to stop,
 * interrupting the caller interrupts every task and waits for them, `detach` answers first, and tasks that end as they
 * start (and many tasks) are run without a fiber or a stack frame too many.
 *
 * (The Effect 3 line's engine tests drove its internal callback tasks, workers and run-time check of Effect's
 * internals; the Effect 4 engine has none of them, so each is here as the public guarantee it protected.)
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Deferred, Effect, Exit, Fiber, Ref, Schedule, Stream } from "effect"
import { TestClock } from "effect/testing"
import { FanOut } from "../src/index.js"
import { type Log, makeLog, recorded, recordedExit, Recorder } from "./support.js"

// ---------------------------------------------------------------------------------------------------------------
// helpers

/** What the tasks of one test did: which started, and how often each one's finalizer ran. */
const makeTrack = (n: number) =>
  Effect.map(
    Ref.make<{ readonly starts: ReadonlyArray<number>; readonly finalized: ReadonlyArray<number> }>({
      starts: [],
      finalized: new Array(n).fill(0)
    }),
    (ref) => ({
      get: Ref.get(ref),
      /** Task `i`: records its start, runs `body`, and records its finalizer however it ends. */
      task: <A, E>(i: number, body: Effect.Effect<A, E>) =>
        Ref.update(ref, (t) => ({ ...t, starts: [...t.starts, i] })).pipe(
          Effect.andThen(body),
          Effect.ensuring(Ref.update(ref, (t) => ({ ...t, finalized: t.finalized.map((c, j) => j === i ? c + 1 : c) })))
        )
    })
  )

/** Counts the tasks running at once: `task(body)` counts itself while `body` runs. */
const makePeak = Effect.map(Ref.make({ now: 0, most: 0 }), (ref) => ({
  most: Effect.map(Ref.get(ref), (p) => p.most),
  task: <A, E>(body: Effect.Effect<A, E>) =>
    Ref.update(ref, (p) => ({ now: p.now + 1, most: Math.max(p.most, p.now + 1) })).pipe(
      Effect.andThen(body),
      Effect.ensuring(Ref.update(ref, (p) => ({ ...p, now: p.now - 1 })))
    )
}))

/** A task that signals it has started, then runs until interrupted, recording both its interruption and its end. */
const hang = (log: Log, name: string, started: Deferred.Deferred<void>) =>
  Deferred.succeed(started, undefined).pipe(
    Effect.andThen(Effect.never),
    Effect.onInterrupt(() => log.add(`${name} interrupted`)),
    Effect.ensuring(log.add(`${name} finalized`))
  )

/** A task whose interruption takes until `release`: its cleanup signals `cleaning`, then waits. */
const slowCleanup = (log: Log, name: string, cleaning: Deferred.Deferred<void>, release: Deferred.Deferred<void>) =>
  Effect.never.pipe(
    Effect.onInterrupt(() =>
      Deferred.succeed(cleaning, undefined).pipe(
        Effect.andThen(Deferred.await(release)),
        Effect.andThen(log.add(`${name} cleaned up`))
      )
    )
  )

const failuresOf = (exit: Exit.Exit<unknown, unknown>): Array<unknown> =>
  Exit.isFailure(exit) ? exit.cause.reasons.filter(Cause.isFailReason).map((r) => r.error) : []

// ---------------------------------------------------------------------------------------------------------------

describe("no fiber outlives the call", () => {
  // Every combinator, ended every way it can end, with every option that makes fibers of its own (each task's
  // fiber, attempt fibers for retry, the alarms' timer for timeouts and the deadline).
  const options = [
    { name: "plain" },
    { name: "bounded", concurrency: 2 },
    { name: "timeout and deadline", timeout: "1 second", deadline: "2 seconds" },
    { name: "retry with attempt timeouts", timeout: "1 second", retry: Schedule.recurs(1), concurrency: 2 }
  ] as const
  const combinators: Record<
    string,
    (ts: ReadonlyArray<Effect.Effect<number, string>>, o: FanOut.Options) => Effect.Effect<unknown, unknown>
  > = {
    all: (ts: ReadonlyArray<Effect.Effect<number, string>>, o: FanOut.Options) => FanOut.all(ts, o),
    settle: (ts: ReadonlyArray<Effect.Effect<number, string>>, o: FanOut.Options) => FanOut.settle(ts, o),
    settleRequired: (ts: ReadonlyArray<Effect.Effect<number, string>>, o: FanOut.Options) =>
      FanOut.settle(ts, { ...o, required: [1] }),
    quorum: (ts: ReadonlyArray<Effect.Effect<number, string>>, o: FanOut.Options) => FanOut.quorum(ts, 2, o),
    firstSuccess: (ts: ReadonlyArray<Effect.Effect<number, string>>, o: FanOut.Options) => FanOut.firstSuccess(ts, o),
    streamTakeTwo: (ts: ReadonlyArray<Effect.Effect<number, string>>, o: FanOut.Options) =>
      Stream.runCollect(Stream.take(FanOut.stream(ts, o), 2))
  }
  /** A task that runs until interrupted, and then takes 5 milliseconds to clean up, signalling `cleaning` first. */
  const slowToStop = (cleaning: Deferred.Deferred<void>) =>
    Effect.never.pipe(
      Effect.onInterrupt(() => Effect.andThen(Deferred.succeed(cleaning, undefined), Effect.sleep("5 millis")))
    )
  // Task sets: all succeed, one fails early while the rest hang, all hang (the time limits or the caller end them).
  const taskSets = {
    succeeding: (_: Deferred.Deferred<void>) => [
      Effect.as(Effect.sleep("10 millis"), 1),
      Effect.as(Effect.yieldNow, 2),
      Effect.succeed(0)
    ],
    failing: (_: Deferred.Deferred<void>) => [
      Effect.never,
      Effect.andThen(Effect.sleep("10 millis"), Effect.fail("down")),
      Effect.never
    ],
    hanging: (cleaning: Deferred.Deferred<void>) => [Effect.never, slowToStop(cleaning), Effect.never]
  }

  for (const o of options) {
    for (const [kind, make] of Object.entries(combinators)) {
      for (const [set, tasks] of Object.entries(taskSets)) {
        it.effect(`${kind}, ${o.name}, ${set} tasks: every fiber has ended when it returns`, () =>
          Effect.gen(function*() {
            const { name: _, ...opts } = o
            const recorder = new Recorder()
            const cleaning = yield* Deferred.make<void>()
            const fiber = yield* Effect.forkChild(Effect.exit(recorded(make(tasks(cleaning), opts), recorder)))
            // Past every time limit, and past the cleanup that sleeps.
            yield* TestClock.adjust("10 millis")
            yield* TestClock.adjust("3 seconds")
            yield* TestClock.adjust("3 seconds")
            if (fiber.pollUnsafe() === undefined) {
              // A fan-out that only its caller can end (no time limit, and tasks that hang): the caller ends it.
              expect(o.name === "plain" || o.name === "bounded").toBe(true)
              const interrupter = yield* Effect.forkChild(Fiber.interrupt(fiber))
              if (set === "hanging") {
                yield* Deferred.await(cleaning)
                yield* TestClock.adjust("5 millis")
              }
              yield* Fiber.join(interrupter)
            } else {
              const exit = yield* Fiber.join(fiber)
              expect(Exit.isSuccess(exit)).toBe(set === "succeeding" || kind === "settle" || kind === "streamTakeTwo")
            }
            expect(recorder.started).toBeGreaterThan(0)
            expect(recorder.running).toBe(0)
          }))
      }
    }
  }

  it.effect("when the caller is interrupted, every fiber has ended when the interruption returns", () =>
    Effect.gen(function*() {
      for (const [kind, make] of Object.entries(combinators)) {
        for (const o of options) {
          const { name: _, ...opts } = o
          const recorder = new Recorder()
          const started = yield* Deferred.make<void>()
          const cleaning = yield* Deferred.make<void>()
          const tasks = [
            Effect.andThen(Deferred.succeed(started, undefined), Effect.never),
            slowToStop(cleaning),
            Effect.never
          ]
          const fiber = yield* Effect.forkChild(recorded(make(tasks, opts), recorder))
          yield* Deferred.await(started)
          const interrupter = yield* Effect.forkChild(Fiber.interrupt(fiber))
          // The interruption waits for the task whose cleanup sleeps.
          yield* Deferred.await(cleaning)
          yield* TestClock.adjust("4 millis")
          expect(interrupter.pollUnsafe(), `${kind}, ${o.name}`).toBeUndefined()
          yield* TestClock.adjust("1 millis")
          yield* Fiber.join(interrupter)
          expect(recorder.started, `${kind}, ${o.name}`).toBeGreaterThanOrEqual(2)
          expect(recorder.running, `${kind}, ${o.name}`).toBe(0)
        }
      }
    }))

  it.effect("a task that ends a sibling as it starts is still interrupted and waited for when that sibling stops the fan-out", () =>
    Effect.gen(function*() {
      // Completing a Deferred resumes the fiber waiting on it at once, on the same stack: the sibling ends (and stops
      // the fan-out) while the task that completed it is still being started.
      const runs: ReadonlyArray<{
        readonly name: string
        readonly make: (
          first: Effect.Effect<number, string>,
          second: Effect.Effect<number, string>
        ) => Effect.Effect<unknown, unknown>
      }> = [
        {
          name: "all",
          make: (first: Effect.Effect<number, string>, second: Effect.Effect<number, string>) =>
            FanOut.all([first, second])
        },
        {
          name: "all, bounded",
          make: (first: Effect.Effect<number, string>, second: Effect.Effect<number, string>) =>
            FanOut.all([first, second, Effect.succeed(3)], { concurrency: 2 })
        },
        {
          name: "settle with required",
          make: (first: Effect.Effect<number, string>, second: Effect.Effect<number, string>) =>
            FanOut.settle([first, second], { required: [0] })
        }
      ]
      for (const { make, name } of runs) {
        const log = yield* makeLog
        const released = yield* Deferred.make<void>()
        const sibling = Effect.andThen(Deferred.await(released), Effect.fail("sibling failed"))
        const { exit, recorder } = yield* recordedExit(make(sibling, hang(log, "releasing task", released)))
        expect(failuresOf(exit), name).toStrictEqual(["sibling failed"])
        expect(yield* log.get, name).toStrictEqual(["releasing task interrupted", "releasing task finalized"])
        expect(recorder.running, name).toBe(0)
      }
      // The same when the sibling's success is what stops the fan-out.
      const log = yield* makeLog
      const released = yield* Deferred.make<void>()
      const { exit, recorder } = yield* recordedExit(FanOut.firstSuccess([
        Effect.as(Deferred.await(released), "sibling won"),
        hang(log, "releasing task", released)
      ]))
      expect(exit).toStrictEqual(Exit.succeed("sibling won"))
      expect(yield* log.get).toStrictEqual(["releasing task interrupted", "releasing task finalized"])
      expect(recorder.running).toBe(0)
    }))
})

// ---------------------------------------------------------------------------------------------------------------

describe("the finalizers of interrupted tasks run exactly once, before the fan-out returns", () => {
  it.effect("when a failure stops it, started tasks' once, never-started tasks' never", () =>
    Effect.gen(function*() {
      // The task that fails waits for the first one, and is the last to start: with a bound of 2 the second, so that
      // two tasks never start; unbounded the fourth.
      for (const concurrency of [2, Infinity]) {
        const failing = Math.min(concurrency, 4) - 1
        const track = yield* makeTrack(4)
        const firstStarted = yield* Deferred.make<void>()
        const exit = yield* Effect.exit(FanOut.forEach([0, 1, 2, 3], (i) =>
          track.task(
            i,
            i === 0
              ? Effect.andThen(Deferred.succeed(firstStarted, undefined), Effect.never)
              : i === failing
              ? Effect.andThen(Deferred.await(firstStarted), Effect.fail("stop"))
              : Effect.never
          ), { concurrency }))
        expect(failuresOf(exit)).toStrictEqual(["stop"])
        const { finalized, starts } = yield* track.get
        expect(starts).toStrictEqual(concurrency === 2 ? [0, 1] : [0, 1, 2, 3])
        expect(finalized).toStrictEqual(concurrency === 2 ? [1, 1, 0, 0] : [1, 1, 1, 1])
      }
    }))

  it.effect("at the deadline, in every combinator", () =>
    Effect.gen(function*() {
      const runs: Record<string, (ts: ReadonlyArray<Effect.Effect<void>>) => Effect.Effect<unknown, unknown>> = {
        all: (ts: ReadonlyArray<Effect.Effect<void>>) => FanOut.all(ts, { deadline: "1 second", concurrency: 2 }),
        settle: (ts: ReadonlyArray<Effect.Effect<void>>) => FanOut.settle(ts, { deadline: "1 second", concurrency: 2 }),
        quorum: (ts: ReadonlyArray<Effect.Effect<void>>) =>
          FanOut.quorum(ts, 1, { deadline: "1 second", concurrency: 2 }),
        stream: (ts: ReadonlyArray<Effect.Effect<void>>) =>
          Stream.runDrain(FanOut.stream(ts, { deadline: "1 second", concurrency: 2 }))
      }
      for (const [kind, run] of Object.entries(runs)) {
        const track = yield* makeTrack(3)
        const tasks = [0, 1, 2].map((i) => track.task(i, Effect.never))
        const fiber = yield* Effect.forkChild(Effect.exit(run(tasks)))
        yield* TestClock.adjust("1 second")
        yield* Fiber.join(fiber)
        const { finalized, starts } = yield* track.get
        expect(starts, kind).toStrictEqual([0, 1])
        expect(finalized, kind).toStrictEqual([1, 1, 0])
      }
    }))

  it.effect("when their own timeout passes, with and without retries", () =>
    Effect.gen(function*() {
      for (const retry of [undefined, Schedule.recurs(2)]) {
        const track = yield* makeTrack(2)
        const fiber = yield* Effect.forkChild(FanOut.settle([
          track.task(0, Effect.never),
          track.task(1, Effect.as(Effect.sleep("500 millis"), 1))
        ], { timeout: "1 second", ...(retry === undefined ? {} : { retry }) }))
        yield* TestClock.adjust("3 seconds")
        const outcomes = yield* Fiber.join(fiber)
        expect(outcomes.map((o) => [o._tag, o.attempts])).toStrictEqual([
          ["TimedOut", retry === undefined ? 1 : 3],
          ["Success", 1]
        ])
        // An attempt's finalizer runs once per attempt.
        expect((yield* track.get).finalized).toStrictEqual([retry === undefined ? 1 : 3, 1])
      }
    }))

  it.effect("when a quorum is reached, a required task fails or a stream is ended early", () =>
    Effect.gen(function*() {
      const runs: Record<
        string,
        (ts: ReadonlyArray<Effect.Effect<number, string>>) => Effect.Effect<unknown, unknown>
      > = {
        quorum: (ts: ReadonlyArray<Effect.Effect<number, string>>) => FanOut.quorum(ts, 1),
        required: (ts: ReadonlyArray<Effect.Effect<number, string>>) => FanOut.settle(ts, { required: [2] }),
        stream: (ts: ReadonlyArray<Effect.Effect<number, string>>) =>
          Stream.runCollect(Stream.take(FanOut.stream(ts), 1))
      }
      for (const [kind, run] of Object.entries(runs)) {
        const track = yield* makeTrack(3)
        const othersStarted = yield* Deferred.make<void>()
        const ends = kind === "required" ? Effect.fail("required failed") : Effect.succeed(2)
        yield* Effect.exit(run([
          track.task(0, Effect.never),
          track.task(1, Effect.andThen(Deferred.succeed(othersStarted, undefined), Effect.never)),
          track.task(2, Effect.andThen(Deferred.await(othersStarted), ends))
        ]))
        expect((yield* track.get).finalized, kind).toStrictEqual([1, 1, 1])
      }
    }))
})

// ---------------------------------------------------------------------------------------------------------------

describe("the concurrency bound", () => {
  it.effect("holds for tasks that suspend, end as they start, or mix both, and every task runs", () =>
    Effect.gen(function*() {
      const bodies = [
        Effect.yieldNow,
        Effect.void,
        Effect.sleep("1 millis"),
        Effect.sync(() => undefined)
      ]
      for (const concurrency of [1, 2, 3, 7]) {
        const peak = yield* makePeak
        const fiber = yield* Effect.forkChild(
          FanOut.forEach(Array.from({ length: 40 }, (_, i) => i), (i) => Effect.as(peak.task(bodies[i % 4]!), i), {
            concurrency
          })
        )
        yield* TestClock.adjust("40 millis")
        expect(yield* Fiber.join(fiber)).toStrictEqual(Array.from({ length: 40 }, (_, i) => i))
        expect(yield* peak.most).toBe(concurrency)
      }
    }))

  it.effect("holds when a task's start ends a sibling, freeing its slot while the task is still being started", () =>
    Effect.gen(function*() {
      // Completing a Deferred resumes its waiter on the same stack: the waiting task ends inside the start of the task
      // that completed it, and its slot goes to the next task before that start has finished.
      for (const mode of ["all", "settle"] as const) {
        const peak = yield* makePeak
        const released = yield* Deferred.make<void>()
        const tasks = [
          peak.task(Deferred.await(released)),
          peak.task(Effect.andThen(Deferred.succeed(released, undefined), Effect.yieldNow)),
          peak.task(Effect.yieldNow),
          peak.task(Effect.yieldNow),
          peak.task(Effect.yieldNow)
        ]
        yield* mode === "all" ? FanOut.all(tasks, { concurrency: 2 }) : FanOut.settle(tasks, { concurrency: 2 })
        expect(yield* peak.most, mode).toBe(2)
      }
    }))

  it.effect("no task starts once a failure has stopped the fan-out", () =>
    Effect.gen(function*() {
      // Tasks start in order; task 2 fails as it starts, so that nothing after it may start, whatever the bound.
      for (const concurrency of [1, 2, 3, Infinity]) {
        const track = yield* makeTrack(6)
        const exit = yield* Effect.exit(FanOut.forEach(
          [0, 1, 2, 3, 4, 5],
          (i) => track.task(i, i === 2 ? Effect.fail("stop") : Effect.as(Effect.yieldNow, i)),
          { concurrency }
        ))
        expect(failuresOf(exit)).toStrictEqual(["stop"])
        const { finalized, starts } = yield* track.get
        expect(starts, `${concurrency}`).toStrictEqual([0, 1, 2])
        expect(finalized, `${concurrency}`).toStrictEqual([1, 1, 1, 0, 0, 0])
      }
    }))

  it.effect("a policy that stops on a success stops between two tasks: nothing after it starts", () =>
    Effect.gen(function*() {
      // quorum(3) over tasks that succeed as they start: the third success stops it before the fourth task starts.
      for (const concurrency of [1, 2, Infinity]) {
        const track = yield* makeTrack(5)
        const winners = yield* FanOut.quorum(
          [0, 1, 2, 3, 4].map((i) => track.task(i, i === 4 ? Effect.never : Effect.succeed(i))),
          3,
          { concurrency }
        )
        expect(winners.map((w) => w.key)).toStrictEqual([0, 1, 2])
        expect((yield* track.get).starts).toStrictEqual([0, 1, 2])
      }
    }))

  it.effect("the deadline interrupts the running tasks, starts no other, and waits for the interrupted ones", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const track = yield* makeTrack(4)
      const cleaning = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const fiber = yield* Effect.forkChild(FanOut.settle([
        track.task(0, Effect.succeed(0)),
        track.task(1, slowCleanup(log, "one", cleaning, release)),
        track.task(2, Effect.never),
        track.task(3, Effect.never)
      ], { concurrency: 2, deadline: "10 millis" }))
      yield* TestClock.adjust("10 millis")
      yield* Deferred.await(cleaning)
      expect(fiber.pollUnsafe()).toBeUndefined()
      yield* Deferred.succeed(release, undefined)
      const outcomes = yield* Fiber.join(fiber)
      expect(outcomes.map((o) => [o._tag, o.attempts])).toStrictEqual([
        ["Success", 1],
        ["TimedOut", 1],
        ["TimedOut", 1],
        ["TimedOut", 0]
      ])
      expect(yield* log.get).toStrictEqual(["one cleaned up"])
      expect((yield* track.get).starts).toStrictEqual([0, 1, 2])
    }))
})

// ---------------------------------------------------------------------------------------------------------------

describe("interrupting the caller", () => {
  it.effect("interrupts every running task, starts no other, and returns only once every one has ended", () =>
    Effect.gen(function*() {
      for (const mode of ["all", "settle", "quorum"] as const) {
        const log = yield* makeLog
        const track = yield* makeTrack(3)
        const started = yield* Deferred.make<void>()
        const cleaning = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const tasks = [
          track.task(0, hang(log, "zero", started)),
          track.task(1, slowCleanup(log, "one", cleaning, release)),
          track.task(2, Effect.never)
        ]
        const fanOut: Effect.Effect<unknown> = mode === "all"
          ? FanOut.all(tasks, { concurrency: 2 })
          : mode === "settle"
          ? FanOut.settle(tasks, { concurrency: 2 })
          : Effect.orDie(FanOut.quorum(tasks, 1, { concurrency: 2 }))
        const fiber = yield* Effect.forkChild(fanOut)
        yield* Deferred.await(started)
        const interrupter = yield* Effect.forkChild(Fiber.interrupt(fiber))
        yield* Deferred.await(cleaning)
        expect(interrupter.pollUnsafe(), mode).toBeUndefined()
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(interrupter)
        expect(Exit.hasInterrupts(yield* Fiber.await(fiber)), mode).toBe(true)
        expect([...(yield* log.get)].sort(), mode).toStrictEqual([
          "one cleaned up",
          "zero finalized",
          "zero interrupted"
        ])
        expect(yield* track.get, mode).toStrictEqual({ starts: [0, 1], finalized: [1, 1, 0] })
      }
    }))

  it.effect("reaches every task even when it arrives while the tasks are still starting", () =>
    Effect.gen(function*() {
      // The first task's start resumes the test's fiber on the same stack, which interrupts the fan-out at once: the
      // tasks after it have not been started yet.
      const track = yield* makeTrack(3)
      const started = yield* Deferred.make<void>()
      const tasks = [
        track.task(0, Effect.andThen(Deferred.succeed(started, undefined), Effect.never)),
        track.task(1, Effect.never),
        track.task(2, Effect.never)
      ]
      const recorder = new Recorder()
      const fiber = yield* Effect.forkChild(recorded(FanOut.all(tasks), recorder))
      yield* Deferred.await(started)
      yield* Fiber.interrupt(fiber)
      const { finalized, starts } = yield* track.get
      expect(starts[0]).toBe(0)
      expect(finalized).toStrictEqual(finalized.map((_, i) => starts.includes(i) ? 1 : 0))
      expect(recorder.running).toBe(0)
    }))

  it.effect("interrupts a fan-out waiting for its interrupted tasks after a failure, and still waits for them", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const started = yield* Deferred.make<void>()
      const cleaning = yield* Deferred.make<void>()
      const release = yield* Deferred.make<void>()
      const fiber = yield* Effect.forkChild(FanOut.all([
        Effect.andThen(Deferred.succeed(started, undefined), slowCleanup(log, "one", cleaning, release)),
        Effect.andThen(Deferred.await(started), Effect.fail("failed"))
      ]))
      yield* Deferred.await(cleaning)
      const interrupter = yield* Effect.forkChild(Fiber.interrupt(fiber))
      yield* TestClock.adjust("1 second")
      expect(interrupter.pollUnsafe()).toBeUndefined()
      yield* Deferred.succeed(release, undefined)
      yield* Fiber.join(interrupter)
      expect(yield* log.get).toStrictEqual(["one cleaned up"])
    }))
})

// ---------------------------------------------------------------------------------------------------------------

describe("detach", () => {
  it.effect("a stopped fan-out answers at once; its interrupted tasks end in the background, and are Interrupted", () =>
    Effect.gen(function*() {
      const log = yield* makeLog
      const started = yield* Deferred.make<void>()
      const cleaning = [yield* Deferred.make<void>(), yield* Deferred.make<void>()] as const
      const release = yield* Deferred.make<void>()
      const fibers = yield* Ref.make<ReadonlyArray<Fiber.Fiber<unknown, unknown>>>([])
      const own = Effect.withFiber((fiber) => Ref.update(fibers, (fs) => [...fs, fiber]))
      const recorder = new Recorder()
      const error = yield* recorded(
        Effect.flip(FanOut.all({
          a: Effect.andThen(own, slowCleanup(log, "a", cleaning[0], release)),
          b: Effect.andThen(own, Deferred.succeed(started, undefined)).pipe(
            Effect.andThen(slowCleanup(log, "b", cleaning[1], release))
          ),
          c: Effect.andThen(Deferred.await(started), Effect.fail("failed"))
        }, { detach: true, report: true })),
        recorder
      )
      expect([error.reason, error.key]).toStrictEqual(["Failure", "c"])
      expect(error.outcomes.map((o) => o._tag)).toStrictEqual(["Interrupted", "Interrupted", "Failure"])
      expect(yield* log.get).toStrictEqual([])
      expect(recorder.running).toBe(2)
      // The interruption has reached both: they are cleaning up, and end once released.
      yield* Effect.forEach(cleaning, Deferred.await)
      yield* Deferred.succeed(release, undefined)
      yield* Effect.forEach(yield* Ref.get(fibers), Fiber.await)
      expect([...(yield* log.get)].sort()).toStrictEqual(["a cleaned up", "b cleaned up"])
      expect(recorder.running).toBe(0)
    }))

  it.effect("without a stop, a detached fan-out waits for its tasks as any other", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.forkChild(
        FanOut.all([Effect.as(Effect.sleep("1 second"), 1), Effect.succeed(2)], { detach: true })
      )
      yield* TestClock.adjust("999 millis")
      expect(fiber.pollUnsafe()).toBeUndefined()
      yield* TestClock.adjust("1 millis")
      expect(yield* Fiber.join(fiber)).toStrictEqual([1, 2])
    }))
})

// ---------------------------------------------------------------------------------------------------------------

describe("tasks that end as they start, and many tasks", () => {
  const n = 100_000

  it.effect("100,000 tasks that end as they start, as Exits or on a fiber, at any bound, keep their order", () =>
    Effect.gen(function*() {
      for (const concurrency of [1, 16, Infinity]) {
        for (const kind of ["Exit", "sync"] as const) {
          const tasks = Array.from({ length: n }, (_, i) => kind === "Exit" ? Effect.succeed(i) : Effect.sync(() => i))
          const results = yield* FanOut.all(tasks, { concurrency })
          expect(results.length).toBe(n)
          expect(results.every((value, i) => value === i), `${kind}, ${concurrency}`).toBe(true)
          const outcomes = yield* FanOut.settle(tasks, { concurrency })
          expect(outcomes.every((o, i) => o._tag === "Success" && o.value === i)).toBe(true)
        }
      }
    }))

  it.effect("a task that ends as it starts makes no fiber when it is an Exit, and one that ends at once otherwise", () =>
    Effect.gen(function*() {
      for (const concurrency of [1, Infinity]) {
        const exits = yield* recordedExit(FanOut.all([Effect.succeed(1), Effect.fail("x")], { concurrency }))
        expect(failuresOf(exits.exit)).toStrictEqual(["x"])
        expect(exits.recorder.started).toBe(0)
        const syncs = yield* recordedExit(FanOut.settle([Effect.sync(() => 1), Effect.sync(() => 2)], { concurrency }))
        expect(Exit.isSuccess(syncs.exit)).toBe(true)
        expect([syncs.recorder.started, syncs.recorder.running]).toStrictEqual([2, 0])
      }
    }))

  it.effect("20,000 tasks that suspend, at any bound, keep their order", () =>
    Effect.gen(function*() {
      const m = 20_000
      for (const concurrency of [1, 64, Infinity]) {
        const results = yield* FanOut.forEach(
          Array.from({ length: m }, (_, i) => i),
          (i) => Effect.as(Effect.yieldNow, i),
          { concurrency }
        )
        expect(results.length).toBe(m)
        expect(results.every((value, i) => value === i), `${concurrency}`).toBe(true)
      }
    }))

  it.effect("the first of many tasks that fail as they start stops the fan-out, and nothing after it starts", () =>
    Effect.gen(function*() {
      for (const concurrency of [1, 16, Infinity]) {
        let called = 0
        const exit = yield* Effect.exit(FanOut.forEach(Array.from({ length: n }, (_, i) => i), (i) => {
          called++
          return i === n / 2 ? Effect.fail(`failed ${i}`) : Effect.succeed(i)
        }, { concurrency }))
        expect(failuresOf(exit)).toStrictEqual([`failed ${n / 2}`])
        expect(called).toBe(n / 2 + 1)
      }
    }))

  it.effect("a forEach function that throws as a task starts ends that task as a defect; the others run", () =>
    Effect.gen(function*() {
      const boom = new Error("boom")
      const outcomes = yield* FanOut.settleForEach([0, 1, 2], (i) => {
        if (i === 1) throw boom
        return Effect.succeed(i)
      }, { concurrency: 1 })
      expect(outcomes.map((o) => o._tag)).toStrictEqual(["Success", "Defect", "Success"])
      expect(outcomes[1]?._tag === "Defect" && outcomes[1].defect).toBe(boom)
    }))

  it.effect("tasks that end as they start and tasks that suspend mix under one bound", () =>
    Effect.gen(function*() {
      const release = yield* Deferred.make<string>()
      const fiber = yield* Effect.forkChild(FanOut.all([
        Effect.succeed("a"),
        Deferred.await(release),
        Effect.as(Effect.sleep("5 millis"), "c"),
        Effect.sync(() => "d"),
        Effect.succeed("e")
      ], { concurrency: 2 }))
      yield* TestClock.adjust("5 millis")
      expect(fiber.pollUnsafe()).toBeUndefined()
      yield* Deferred.succeed(release, "b")
      expect(yield* Fiber.join(fiber)).toStrictEqual(["a", "b", "c", "d", "e"])
    }))

  it.effect("discard: all succeed with void on every path; a failure still fails with its cause", () =>
    Effect.gen(function*() {
      for (const concurrency of [1, 2, Infinity]) {
        const ok = [Effect.succeed("a"), Effect.as(Effect.yieldNow, "b"), Effect.sync(() => "c")]
        expect(yield* FanOut.all(ok, { concurrency, discard: true })).toBeUndefined()
        const exit = yield* Effect.exit(
          FanOut.all([...ok, Effect.andThen(Effect.yieldNow, Effect.fail("d"))], { concurrency, discard: true })
        )
        expect(failuresOf(exit)).toStrictEqual(["d"])
      }
    }))
})
