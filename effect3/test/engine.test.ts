import { describe, expect, it } from "@effect/vitest"
import { Cause, Duration, Effect, Exit, Fiber, FiberId, Option, TestClock } from "effect"
import * as batching from "../src/internal/batching.js"
import * as engine from "../src/internal/engine.js"

// The engine's callback tasks (what the Promise facade runs), on the paths the facade's tests do not pin down.

// ---------------------------------------------------------------------------------------------------------------
// helpers

/** A callback task under the test's control: it ends only when the test says so, even after it was cancelled. */
class Manual implements engine.CallbackTask {
  registered = 0
  cancelled = 0
  private done: engine.Done | undefined = undefined
  readonly register = (done: engine.Done): () => void => {
    this.registered++
    this.done = done
    return () => {
      this.cancelled++
    }
  }
  end(exit: Exit.Exit<any, any>): void {
    this.done!.exit(exit)
  }
}

const manuals = (n: number): Array<Manual> => Array.from({ length: n }, () => new Manual())

const plan = (tasks: ReadonlyArray<engine.Task>, options: Partial<engine.Plan> = {}): engine.Plan => ({
  size: tasks.length,
  task: (i) => tasks[i]!,
  callbacks: true,
  concurrency: Infinity,
  deadline: undefined,
  detach: false,
  onExit: (_, cause) => cause !== undefined,
  ...options
})

const interrupted = Exit.interrupt(FiberId.none)

/** How the report says each task ended, as `Exit`s (`undefined`: never ended). */
const exitsOf = (report: engine.Report): Array<Exit.Exit<unknown, unknown> | undefined> =>
  Array.from(report.status, (status, i) =>
    status === engine.Pending
      ? undefined
      : status === engine.Succeeded
      ? Exit.succeed(report.results[i])
      : Exit.failCause(report.results[i] as Cause.Cause<unknown>))

/** Lets the forked fan-out run up to its next suspension. */
const settle = Effect.repeatN(Effect.yieldNow(), 4)

// ---------------------------------------------------------------------------------------------------------------
// tests

describe("engine: callback tasks", () => {
  it.effect("a callback takes a slot: with a bound, the next task starts when one ends", () =>
    Effect.gen(function*() {
      const tasks = manuals(5)
      const fiber = yield* Effect.fork(engine.run(plan(tasks, { concurrency: 2 })))
      yield* settle
      expect(tasks.map((t) => t.registered)).toEqual([1, 1, 0, 0, 0])
      tasks[1]!.end(Exit.succeed(1))
      expect(tasks.map((t) => t.registered)).toEqual([1, 1, 1, 0, 0])
      tasks[0]!.end(Exit.succeed(0))
      tasks[2]!.end(Exit.succeed(2))
      expect(tasks.map((t) => t.registered)).toEqual([1, 1, 1, 1, 1])
      tasks[4]!.end(Exit.succeed(4))
      tasks[3]!.end(Exit.succeed(3))
      const report = yield* Fiber.join(fiber)
      expect(exitsOf(report)).toEqual([0, 1, 2, 3, 4].map((i) => Exit.succeed(i)))
      expect(report.stop).toBeUndefined()
      expect(report.startedAt.every((t) => !Number.isNaN(t))).toBe(true)
      expect(tasks.every((t) => t.cancelled === 0)).toBe(true)
    }))

  it.effect("the first failure cancels every running callback, starts nothing more and waits for every done", () =>
    Effect.gen(function*() {
      const tasks = manuals(4)
      const fiber = yield* Effect.fork(engine.run(plan(tasks, { concurrency: 3 })))
      yield* settle
      tasks[1]!.end(Exit.fail("boom"))
      expect(tasks.map((t) => t.cancelled)).toEqual([1, 0, 1, 0])
      expect(tasks[3]!.registered).toBe(0)
      yield* settle
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      tasks[0]!.end(interrupted)
      yield* settle
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      tasks[2]!.end(Exit.succeed(2))
      const report = yield* Fiber.join(fiber)
      expect(report.stop).toBe("Policy")
      expect(report.stoppedBy).toBe(1)
      expect(report.cut).toEqual([true, false, true, true])
      expect(exitsOf(report)[3]).toBeUndefined()
      expect(report.startedAt[3]).toBeNaN()
    }))

  it.effect("the deadline cancels the running callbacks, cuts the rest off and waits for the cancelled ones", () =>
    Effect.gen(function*() {
      const tasks = manuals(4)
      const fiber = yield* Effect.fork(engine.run(plan(tasks, { concurrency: 2, deadline: Duration.millis(10) })))
      yield* settle
      tasks[0]!.end(Exit.succeed(0))
      yield* TestClock.adjust("10 millis")
      yield* settle
      expect(tasks.map((t) => t.cancelled)).toEqual([0, 1, 1, 0])
      expect(tasks[3]!.registered).toBe(0)
      expect(Option.isNone(yield* Fiber.poll(fiber))).toBe(true)
      tasks[1]!.end(interrupted)
      tasks[2]!.end(interrupted)
      const report = yield* Fiber.join(fiber)
      expect(report.stop).toBe("Deadline")
      expect(report.cut).toEqual([false, true, true, true])
      expect(exitsOf(report)[0]).toEqual(Exit.succeed(0))
      expect(exitsOf(report)[1]).toEqual(interrupted)
      expect(exitsOf(report)[3]).toBeUndefined()
    }))

  it.effect("interrupting the caller cancels every callback and waits for their done", () =>
    Effect.gen(function*() {
      const tasks = manuals(3)
      const fiber = yield* Effect.fork(engine.run(plan(tasks, { concurrency: 2 })))
      yield* settle
      const interruption = yield* Effect.fork(Fiber.interrupt(fiber))
      yield* settle
      expect(tasks.map((t) => t.cancelled)).toEqual([1, 1, 0])
      expect(Option.isNone(yield* Fiber.poll(interruption))).toBe(true)
      tasks[0]!.end(interrupted)
      yield* settle
      expect(Option.isNone(yield* Fiber.poll(interruption))).toBe(true)
      tasks[1]!.end(Exit.succeed(1))
      const exit = yield* Fiber.join(interruption)
      expect(Exit.isInterrupted(exit)).toBe(true)
      expect(tasks[2]!.registered).toBe(0)
    }))

  it.effect("detach: a stopped fan-out returns at once, the cancelled callbacks end in the background", () =>
    Effect.gen(function*() {
      const tasks = manuals(3)
      const fiber = yield* Effect.fork(engine.run(plan(tasks, { detach: true })))
      yield* settle
      tasks[2]!.end(Exit.fail("boom"))
      const report = yield* Fiber.join(fiber)
      expect(report.stop).toBe("Policy")
      expect(report.stoppedBy).toBe(2)
      expect(tasks.map((t) => t.cancelled)).toEqual([1, 1, 0])
      expect(exitsOf(report)[0]).toBeUndefined()
      expect(exitsOf(report)[1]).toBeUndefined()
      tasks[0]!.end(interrupted)
      tasks[1]!.end(interrupted)
    }))

  it.effect("done may report inside register, more than once (later reports are ignored), for many tasks in a row", () =>
    Effect.gen(function*() {
      const n = 100_000
      const tasks = Array.from({ length: n }, (_, i): engine.CallbackTask => ({
        register: (done, index) => {
          expect(index).toBe(i)
          if (i % 2 === 0) done.succeed(i)
          else done.exit(Exit.succeed(i))
          done.exit(Exit.fail("again"))
          done.succeed("again")
          return () => {
            throw new Error("a task that has ended is never cancelled")
          }
        }
      }))
      for (const concurrency of [1, 16, Infinity]) {
        const report = yield* engine.run(plan(tasks, { concurrency }))
        expect(report.stop).toBeUndefined()
        expect(exitsOf(report).every((exit, i) => Exit.isSuccess(exit!) && exit.value === i)).toBe(true)
      }
    }))

  it.effect("a register that throws ends its task as a defect", () =>
    Effect.gen(function*() {
      const boom = new Error("boom")
      const report = yield* engine.run(plan([{
        register: () => {
          throw boom
        }
      }], { onExit: () => false }))
      const exit = exitsOf(report)[0]!
      expect(Exit.isFailure(exit) && Cause.squash(exit.cause)).toBe(boom)
    }))

  it.effect("effects and callback tasks mix under one bound", () =>
    Effect.gen(function*() {
      const manual = new Manual()
      const fiber = yield* Effect.fork(engine.run(plan([
        Effect.succeed("a"),
        manual,
        Effect.as(Effect.sleep("5 millis"), "c"),
        { register: (done) => (done.succeed("d"), () => {}) },
        Effect.succeed("e")
      ], { concurrency: 2 })))
      yield* settle
      expect(manual.registered).toBe(1)
      yield* TestClock.adjust("5 millis")
      yield* settle
      manual.end(Exit.succeed("b"))
      const report = yield* Fiber.join(fiber)
      expect(exitsOf(report)).toEqual(["a", "b", "c", "d", "e"].map((v) => Exit.succeed(v)))
    }))
})

describe("engine: workers", () => {
  it.effect("a policy that stops on a success stops the worker between two tasks: nothing after it starts", () =>
    Effect.gen(function*() {
      // With a bound of one, the second and third tasks run in the worker's loop; the stop comes from inside it.
      const starts: Array<number> = []
      const task = (i: number) => Effect.sync(() => starts.push(i)).pipe(Effect.as(i))
      for (const concurrency of [1, 2]) {
        starts.length = 0
        const report = yield* engine.run({
          size: 5,
          task: (i) => i === 4 ? Effect.never : task(i),
          concurrency,
          deadline: undefined,
          detach: false,
          onExit: (index) => index === 2
        })
        expect(report.stop).toBe("Policy")
        expect(report.stoppedBy).toBe(2)
        expect(starts).toEqual([0, 1, 2])
        expect(exitsOf(report)).toEqual([Exit.succeed(0), Exit.succeed(1), Exit.succeed(2), undefined, undefined])
        expect(report.cut).toEqual([false, false, false, true, true])
      }
    }))

  it.effect("discard: a success leaves no value in the report, a failure keeps its cause, on every path", () =>
    Effect.gen(function*() {
      const tasks = [Effect.succeed("a"), Effect.yieldNow().pipe(Effect.as("b")), Effect.fail("c"), Effect.succeed("d")]
      const runs = [
        { name: "unbounded", run: engine.run, concurrency: Infinity },
        { name: "a worker's loop", run: engine.run, concurrency: 1 },
        { name: "batched", run: batching.run, concurrency: 2 }
      ]
      for (const { concurrency, name, run } of runs) {
        const report = yield* run({
          size: tasks.length,
          task: (i) => tasks[i]!,
          concurrency,
          deadline: undefined,
          detach: false,
          discard: true,
          onExit: () => false
        }, engine.makeReport(tasks.length))
        expect(Array.from(report.status), name).toEqual([
          engine.Succeeded,
          engine.Succeeded,
          engine.Failed,
          engine.Succeeded
        ])
        expect(report.results.map((r) => Cause.isCause(r) ? Cause.squash(r) : r), name).toEqual([
          undefined,
          undefined,
          "c",
          undefined
        ])
      }
    }))

  it.effect("the runtime check passes on this effect version, and names what a runtime without its internals lacks", () =>
    Effect.gen(function*() {
      const fiber = yield* Effect.withFiberRuntime<Fiber.RuntimeFiber<unknown, unknown>>((f) => Effect.succeed(f))
      expect(engine.runtimeProblem(fiber)).toBeUndefined()
      // A runtime of another shape: a two-argument constructor, no stack, no `_steps`.
      class OtherRuntime {
        constructor(readonly id: unknown, readonly refs: unknown) {}
        start() {}
        resume() {}
        setFiberRefs() {}
        getFiberRefs() {}
        interruptAllChildren() {}
        addObserver() {}
        unsafeInterruptAsFork() {}
        readonly _fiberRefs = undefined
        readonly _children = null
        readonly currentRuntimeFlags = 0
      }
      const problem = engine.runtimeProblem(new OtherRuntime(0, 0) as unknown as Fiber.RuntimeFiber<unknown, unknown>)
      expect(problem).toContain("(a constructor of (id, fiber refs, runtime flags), pushStack(), _steps)")
      expect(problem).toContain("please report your effect version")
    }))
})
