/**
 * The engine: runs a fan-out's tasks on fibers of their own, at most `concurrency` at once, tells a policy how each
 * one ended, and stops — interrupting every task still running, starting no new one, and waiting for their
 * finalizers — when the policy says so, when the deadline passes or when the caller is interrupted. It answers with
 * the policy's result once no task it started is still running (with `detach`, as soon as it stops).
 *
 * Built on Effect 4's public API only: `Effect.withFiber` and `Effect.callback` to suspend the caller,
 * `Effect.runForkWith(caller.context)` for the tasks' fibers (so that they see the caller's services, span, clock,
 * scheduler and references), `addObserver` and `interruptUnsafe` on those fibers.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import { Alarms, clear } from "./alarms.js"
import type { Alarm } from "./alarms.js"

/** Why a task's fiber was stopped by a time limit: its own `timeout`, or the fan-out's `deadline`. */
export type Limit = "Timeout" | "Deadline"

/** What the fan-out does with its tasks' ends: fail fast, settle, quorum, stream. */
export interface Policy<A, E> {
  /**
   * A task ended while the fan-out was running (`limit`: the time limit that stopped it, if one did; `started` and
   * `ended`: the clock's times, when the fan-out is timed). Returns `true` to stop the fan-out.
   */
  readonly onExit: (
    index: number,
    exit: Exit.Exit<unknown, unknown>,
    limit: Limit | undefined,
    started: number,
    ended: number
  ) => boolean
  /** A task ended after the fan-out stopped: it was interrupted, or ended before the interruption reached it. */
  readonly onLateExit: (
    index: number,
    exit: Exit.Exit<unknown, unknown>,
    limit: Limit | undefined,
    started: number,
    ended: number
  ) => void
  /** The deadline passed; the fan-out stops after this call, its running tasks ending with `limit` "Deadline". */
  readonly onDeadline: () => void
  /** The fan-out's answer, once it has stopped or every task has ended. `started` is the count of tasks started. */
  readonly result: (started: number) => Exit.Exit<A, E>
}

/** The fan-out's alarms, made on first use, for time limits the tasks set themselves (attempts, hedge delays). */
export interface Timers {
  readonly alarms: () => Alarms
}

/** A fan-out to run. */
export interface Spec<A, E> {
  readonly size: number
  /** The task at `index`, called as it starts; a throw is that task's defect. */
  readonly task: (index: number, timers: Timers) => Effect.Effect<unknown, unknown, unknown>
  /** Tasks running at once: a positive integer or `Infinity`. */
  readonly concurrency: number
  /** Per-task time limit in milliseconds, set on each task's own fiber (undefined: none). */
  readonly timeout: number | undefined
  /** Whole fan-out time limit in milliseconds (undefined: none). */
  readonly deadline: number | undefined
  /** Answer as soon as the fan-out stops, leaving the interrupted tasks to end in the background. */
  readonly detach: boolean
  /** Read the clock as each task starts (for durations). */
  readonly timed: boolean
  /** The policy, made when the fan-out runs, with the caller's clock. */
  readonly policy: (clock: Clock.Clock) => Policy<A, E>
}

/** Runs a fan-out. */
export const run = <A, E>(spec: Spec<A, E>): Effect.Effect<A, E> =>
  Effect.withFiber((caller) => {
    const { concurrency, size } = spec
    const clock = caller.getRef(Clock.Clock)
    const policy = spec.policy(clock)
    if (size === 0) return policy.result(0)
    const fork = Effect.runForkWith(caller.context)
    const timed = spec.timed || spec.timeout !== undefined || spec.deadline !== undefined
    let alarms: Alarms | undefined = undefined
    const alarmsOf = () => alarms ??= new Alarms(fork as any, () => clock.currentTimeMillisUnsafe())
    const timers: Timers = { alarms: alarmsOf }

    // The running tasks' fibers by index, and how many run: a task's slot is cleared when it ends.
    const fibers: Array<Fiber.Fiber<unknown, unknown> | undefined> = new Array(size)
    let running = 0
    // The time limit that stopped each task, when one did; made only when there are limits.
    const limits: Array<Limit | undefined> | undefined = timed && (spec.timeout !== undefined || spec.deadline !== undefined)
      ? new Array(size)
      : undefined
    let next = 0
    let stopped = false
    let answered = false
    let resume: ((effect: Effect.Effect<A, E>) => void) | undefined = undefined
    let deadlineAlarm: Alarm | undefined = undefined

    const forEachRunning = (f: (fiber: Fiber.Fiber<unknown, unknown>, index: number) => void) => {
      for (let i = 0; i < next && running > 0; i++) {
        const fiber = fibers[i]
        if (fiber !== undefined) f(fiber, i)
      }
    }

    const stop = () => {
      if (stopped) return
      stopped = true
      clear(deadlineAlarm)
      forEachRunning((fiber) => fiber.interruptUnsafe(caller.id))
    }

    /** Answers the caller once nothing the fan-out started still runs (or at once, detached, when stopped). */
    const settleIfDone = () => {
      if (answered || resume === undefined) return
      if (running > 0 && !(stopped && spec.detach)) return
      if (!stopped && next < size) return
      answered = true
      const answer = resume
      const started = next
      if (alarms === undefined) return answer(policy.result(started))
      alarms.close(() => answer(policy.result(started)))
    }

    const ended = (index: number, exit: Exit.Exit<unknown, unknown>, started: number, end: number) => {
      const limit = limits?.[index]
      if (stopped) policy.onLateExit(index, exit, limit, started, end)
      else if (policy.onExit(index, exit, limit, started, end)) stop()
    }

    /**
     * Starts tasks until `concurrency` run, all have started, or the fan-out stops. The clock is read once every 32
     * tasks started in one go (it counts milliseconds; a task that ends as it starts ends at its start time).
     */
    const fill = () => {
      let now = 0
      for (let burst = 0; !stopped && next < size && running < concurrency; burst++) {
        const index = next++
        if (timed && (burst & 31) === 0) now = clock.currentTimeMillisUnsafe()
        const started = now
        let effect: Effect.Effect<unknown, unknown, unknown>
        try {
          effect = spec.task(index, timers)
        } catch (defect) {
          effect = Exit.die(defect)
        }
        if (Exit.isExit(effect)) {
          ended(index, effect, started, started)
          continue
        }
        const fiber = fork(effect as Effect.Effect<unknown, unknown>)
        const exit = fiber.pollUnsafe()
        if (exit !== undefined) {
          ended(index, exit, started, started)
          continue
        }
        fibers[index] = fiber
        running++
        const timeoutAlarm = spec.timeout === undefined ? undefined : alarmsOf().set(spec.timeout, () => {
          if (stopped || fibers[index] === undefined) return
          limits![index] = "Timeout"
          fiber.interruptUnsafe(caller.id)
        })
        fiber.addObserver((exit) => {
          fibers[index] = undefined
          running--
          clear(timeoutAlarm)
          ended(index, exit, started, timed ? clock.currentTimeMillisUnsafe() : 0)
          fill()
          settleIfDone()
        })
      }
    }

    if (spec.deadline !== undefined) {
      deadlineAlarm = alarmsOf().set(spec.deadline, () => {
        if (stopped) return
        forEachRunning((_, index) => limits![index] = "Deadline")
        policy.onDeadline()
        stop()
        settleIfDone()
      })
    }
    fill()
    if (running === 0 && (stopped || next === size) && alarms === undefined) return policy.result(next)

    return Effect.callback<A, E>((resumeWith) => {
      resume = resumeWith
      settleIfDone()
      if (answered) return
      // The caller is interrupted: interrupt every task and wait for all of them (and the timer) to end.
      return Effect.callback<void>((done) => {
        stop()
        if (answered) return done(Effect.void)
        resume = () => done(Effect.void)
        settleIfDone()
      })
    })
  })
