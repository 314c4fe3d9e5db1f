/**
 * The fan-out engine: runs a list of effects concurrently and reports how each one ended.
 *
 * Every combinator of the library is this engine plus a policy (`onExit` decides when to stop). It is the only
 * module that knows how fibers are made, so it can be swapped without touching the public API.
 *
 * Why not `Effect.forkDaemon` / `Effect.all`: in Effect 3 every forked child copies the parent's fiber-local state
 * (`FiberRefs.forkAs`, once per child), registers in the parent's scope, and is joined back one by one
 * (`inheritAll`, once per child); interrupting N children is N sequential effects. Here:
 *
 * - the parent's `FiberRefs` are forked **once per fan-out** and shared by every child (they are immutable: a child
 *   that sets a `FiberRef` gets its own copy on write);
 * - children are plain `FiberRuntime`s of the running Effect, started synchronously (a task that never suspends
 *   finishes before the next one is created) and watched with `addObserver`, which costs one closure;
 * - with a bound (`concurrency: n`), n worker fibers pull task indices from a shared counter, so no fiber is made per
 *   task; a worker resets its `FiberRefs` after each task so that tasks stay isolated from one another;
 * - stopping (first failure, deadline, the caller's interruption) interrupts every running fiber in one pass and
 *   then waits for all of their observers, so finalizers have run before the fan-out returns.
 *
 * Fiber-local state: tasks see the caller's `FiberRef` values (context, services, log annotations, the current span),
 * and changes a task makes stay inside that task; they are not merged back into the caller.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import type * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRefs from "effect/FiberRefs"
import * as Option from "effect/Option"
import * as Supervisor from "effect/Supervisor"

/** @internal */
export interface Plan {
  readonly tasks: ReadonlyArray<Effect.Effect<any, any, any>>
  /** `Infinity` for unbounded. */
  readonly concurrency: number
  readonly deadline: Duration.Duration | undefined
  /** Return at once when a policy stops the fan-out, leaving the interrupted tasks to finish in the background. */
  readonly detach: boolean
  /**
   * Called once per task as it ends, in completion order, before the fan-out decides what to do next. Returning
   * `true` stops the fan-out: no task starts after that and the running ones are interrupted.
   */
  readonly onExit: (index: number, exit: Exit.Exit<any, any>, report: Report) => boolean
}

/** @internal */
export type StopReason = "Policy" | "Deadline"

/** @internal */
export interface Report {
  /** `undefined` for a task that never ended (never started, or still being interrupted under `detach`). */
  readonly exits: Array<Exit.Exit<any, any> | undefined>
  /** By the fan-out's `Clock`; `NaN` for a task that never started. */
  readonly startedAt: Array<number>
  readonly endedAt: Array<number>
  /** Whether the task was still pending (running or not started) when the fan-out was stopped. */
  readonly cut: Array<boolean>
  stop: StopReason | undefined
  /** The task whose exit made the policy stop the fan-out, or -1. */
  stoppedBy: number
}

type AnyFiber = Fiber.RuntimeFiber<any, any> & {
  start(effect: Effect.Effect<any, any, any>): void
  setFiberRefs(refs: FiberRefs.FiberRefs): void
}

interface FiberFactory {
  (effect: Effect.Effect<any, any, any>): AnyFiber
  readonly baseRefs: FiberRefs.FiberRefs
}

/**
 * Makes child fibers of the running Effect without the per-child bookkeeping of `fork`: same class, same runtime
 * flags, the caller's fiber refs forked once. A `Supervisor` installed by the caller still sees every child start
 * and end, as it would with `fork`.
 */
const fiberFactory = (parent: Fiber.RuntimeFiber<any, any>): FiberFactory => {
  const FiberRuntime = parent.constructor as new(
    id: FiberId.Runtime,
    refs: FiberRefs.FiberRefs,
    flags: unknown
  ) => AnyFiber
  const baseRefs = FiberRefs.forkAs(parent.getFiberRefs(), FiberId.unsafeMake())
  const flags = (parent as any).currentRuntimeFlags
  const supervisor = parent.currentSupervisor
  const supervised = supervisor !== Supervisor.none
  const context = parent.currentContext
  const parentOption = Option.some(parent)
  const make = (effect: Effect.Effect<any, any, any>): AnyFiber => {
    const fiber = new FiberRuntime(FiberId.unsafeMake(), baseRefs, flags)
    if (supervised) {
      supervisor.onStart(context, effect as Effect.Effect<unknown>, parentOption, fiber)
      fiber.addObserver((exit) => supervisor.onEnd(exit, fiber))
    }
    return fiber
  }
  return Object.assign(make, { baseRefs })
}

/** @internal */
export const run = (plan: Plan): Effect.Effect<Report> =>
  Effect.withFiberRuntime<Report>((parent) => {
    const tasks = plan.tasks
    const n = tasks.length
    const report: Report = {
      exits: new Array(n).fill(undefined),
      startedAt: new Array(n).fill(NaN),
      endedAt: new Array(n).fill(0),
      cut: new Array(n).fill(false),
      stop: undefined,
      stoppedBy: -1
    }
    if (n === 0) return Effect.succeed(report)
    const spawn = fiberFactory(parent)
    const clock = Context.get(parent.currentDefaultServices, Clock.Clock)
    const parentId = parent.id()
    const bounded = plan.concurrency < n
    const width = bounded ? plan.concurrency : n

    return Effect.async<Report>((resume) => {
      // Fibers that have been started and whose observer has not run yet: tasks (or workers) and the deadline timer.
      let live = 0
      // Tasks that have not ended and were not cut off before starting.
      let pending = n
      // Next task index to start.
      let next = 0
      let starting = true
      let stopped = false
      let cancelled = false
      let resumed = false
      let waiter: (() => void) | undefined = undefined
      // Unbounded: the fiber of each task. Bounded: the fiber of each worker, and the task it is running (-1: none).
      const fibers: Array<AnyFiber | undefined> = new Array(width).fill(undefined)
      const running: Array<number> = bounded ? new Array(width).fill(-1) : []
      let timer: AnyFiber | undefined = undefined

      const finishIfDone = () => {
        if (starting) return
        if (pending === 0 && timer !== undefined) {
          const t = timer
          timer = undefined
          t.unsafeInterruptAsFork(parentId)
        }
        if (live === 0) {
          if (waiter !== undefined) {
            const w = waiter
            waiter = undefined
            w()
          } else if (!resumed) {
            resumed = true
            resume(Effect.succeed(report))
          }
        } else if (stopped && plan.detach && !cancelled && !resumed) {
          resumed = true
          resume(Effect.succeed(report))
        }
      }

      const stop = (reason: StopReason, by: number) => {
        if (stopped) return
        stopped = true
        report.stop = reason
        report.stoppedBy = by
        for (let i = 0; i < n; i++) {
          if (report.exits[i] === undefined) report.cut[i] = true
        }
        // Tasks that never started are done as far as waiting goes.
        pending -= n - next
        next = n
        for (let i = 0; i < fibers.length; i++) {
          const fiber = fibers[i]
          if (fiber !== undefined) fiber.unsafeInterruptAsFork(parentId)
        }
        if (timer !== undefined) {
          const t = timer
          timer = undefined
          t.unsafeInterruptAsFork(parentId)
        }
      }

      const taskEnded = (index: number, exit: Exit.Exit<any, any>) => {
        report.exits[index] = exit
        report.endedAt[index] = clock.unsafeCurrentTimeMillis()
        pending--
        if (!stopped && plan.onExit(index, exit, report)) stop("Policy", index)
      }

      if (plan.deadline !== undefined) {
        const sleep = Effect.sleep(plan.deadline)
        const t = spawn(sleep)
        timer = t
        live++
        t.addObserver((exit) => {
          live--
          if (timer === t) timer = undefined
          if (exit._tag === "Success") stop("Deadline", -1)
          finishIfDone()
        })
        t.start(sleep)
      }

      if (!bounded) {
        for (let i = 0; i < n && !stopped; i++) {
          const task = tasks[i]!
          const fiber = spawn(task)
          fibers[i] = fiber
          live++
          next = i + 1
          report.startedAt[i] = clock.unsafeCurrentTimeMillis()
          fiber.addObserver((exit) => {
            live--
            fibers[i] = undefined
            taskEnded(i, exit)
            finishIfDone()
          })
          fiber.start(task)
        }
      } else {
        const baseRefs = spawn.baseRefs
        for (let w = 0; w < width && !stopped; w++) {
          const worker = Effect.suspend(() => loop())
          const fiber = spawn(worker)
          fibers[w] = fiber
          live++
          const loop = (): Effect.Effect<void, never, any> => {
            if (stopped || next >= n) return Effect.void
            const index = next++
            running[w] = index
            report.startedAt[index] = clock.unsafeCurrentTimeMillis()
            return Effect.flatMap(Effect.exit(tasks[index]!), (exit) => {
              running[w] = -1
              // Tasks must not see each other's fiber-local changes: give the worker back the caller's refs.
              fiber.setFiberRefs(baseRefs)
              taskEnded(index, exit)
              return loop()
            })
          }
          fiber.addObserver((exit) => {
            live--
            fibers[w] = undefined
            // A worker only ends with a failure when it was interrupted in the middle of a task.
            const index = running[w]!
            if (index >= 0) {
              running[w] = -1
              taskEnded(index, exit)
            }
            finishIfDone()
          })
          fiber.start(worker)
        }
      }
      starting = false
      finishIfDone()

      // The caller was interrupted: interrupt every task and wait for all of them, whatever `detach` says.
      return Effect.async<void>((resumeCanceler) => {
        cancelled = true
        stop("Policy", -1)
        if (live === 0) {
          resumeCanceler(Effect.void)
        } else {
          waiter = () => resumeCanceler(Effect.void)
        }
      })
    })
  })
