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
import * as Context from "effect/Context"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import type { CancelReason } from "../../Cancellation.js"
import * as cancel from "../cancel.js"
import { CurrentDeadline, inheritedLead } from "../deadline.js"
import { Alarms, clear } from "./alarms.js"
import type { Alarm } from "./alarms.js"

/** Why a task's fiber was stopped by a time limit: its own `timeout`, or the fan-out's `deadline`. */
export type Limit = "Timeout" | "Deadline"

/** What the fan-out does with its tasks' ends: fail fast, settle, quorum, stream. */
export interface Policy<A, E> {
  /**
   * A task ended while the fan-out was running (`limit`: the time limit that stopped it, if one did; `started` and
   * `ended`: the clock's times, when the fan-out is timed; `waited`: it did not end as it started). Returns `true` to
   * stop the fan-out.
   */
  readonly onExit: (
    index: number,
    exit: Exit.Exit<unknown, unknown>,
    limit: Limit | undefined,
    started: number,
    ended: number,
    waited: boolean
  ) => boolean
  /** A task ended after the fan-out stopped: it was interrupted, or ended before the interruption reached it. */
  readonly onLateExit: (
    index: number,
    exit: Exit.Exit<unknown, unknown>,
    limit: Limit | undefined,
    started: number,
    ended: number,
    waited: boolean
  ) => void
  /**
   * `onExit` returned `true` for task `index`: why the running tasks are interrupted (the reason they read). Called
   * once, at the stop.
   */
  readonly stopReason?: ((index: number, exit: Exit.Exit<unknown, unknown>) => CancelReason) | undefined
  /** The deadline passed; the fan-out stops after this call, its running tasks ending with `limit` "Deadline". */
  readonly onDeadline: () => void
  /** The fan-out's answer, once it has stopped or every task has ended. `started` is the count of tasks started. */
  readonly result: (started: number) => Exit.Exit<A, E>
}

/**
 * A task that runs on no fiber of its own (the Promise facade's functions): `start(end)` begins it and returns how to
 * cancel it; it calls `end` once, with its exit (during `start` for a task that ends as it starts). Cancelling must
 * lead to a call of `end`, once the task has stopped.
 */
export interface CallbackTask {
  readonly [CallbackTaskId]: typeof CallbackTaskId
  readonly start: (end: (exit: Exit.Exit<unknown, unknown>) => void) => () => void
}

/** Brands a `CallbackTask`. */
export const CallbackTaskId: unique symbol = Symbol.for("effect-fanout/CallbackTask")

const isCallbackTask = (u: unknown): u is CallbackTask => typeof u === "object" && u !== null && CallbackTaskId in u

/** A running task as the engine holds it: a fiber, or a callback task's cancel and end. */
interface Running {
  readonly interruptUnsafe: (fiberId?: number, annotations?: Context.Context<never>) => void
  readonly addObserver: (f: (exit: Exit.Exit<unknown, unknown>) => void) => unknown
}

/**
 * What the fan-out lends the attempts its tasks run on fibers of their own (`hedge`, `retry` with `timeout`): its
 * alarms, made on first use, for the time limits they set themselves; and, once it has stopped for a reason, the
 * annotations that carry it, with which a task interrupted by the stop interrupts its attempts (their interruptions
 * name the task, not the fan-out's fiber, so they would not read it otherwise). Made once per stop.
 */
export interface Timers {
  readonly alarms: () => Alarms
  readonly stopped: () => Context.Context<never> | undefined
}

/** A fan-out to run. */
export interface Spec<A, E> {
  readonly size: number
  /** The task at `index`, called as it starts; a throw is that task's defect. */
  readonly task: (index: number, timers: Timers) => Effect.Effect<unknown, unknown, unknown> | CallbackTask
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
  /**
   * The policy, made when the fan-out runs, with the caller's clock and the deadline the fan-out runs under in
   * milliseconds: its own, or the enclosing one it adopted (undefined: none).
   */
  readonly policy: (clock: Clock.Clock, deadline: number | undefined) => Policy<A, E>
}

/** Runs a fan-out. */
export const run = <A, E>(spec: Spec<A, E>): Effect.Effect<A, E> =>
  Effect.withFiber((caller) => {
    const { concurrency, size } = spec
    const clock = caller.getRef(Clock.Clock)
    // With a deadline, the tasks run under the smaller of it and the deadline around the fan-out (a nested fan-out
    // never outlives the enclosing one); without, they see the caller's, at no cost per task. Under the enclosing
    // deadline, the fan-out ends a millisecond before it, so that its result (settle's partial results) reaches the
    // task that runs it before the enclosing fan-out's deadline stops that task.
    let deadline = spec.deadline
    let context = caller.context
    if (deadline !== undefined) {
      const now = clock.currentTimeMillisUnsafe()
      const enclosing = caller.getRef(CurrentDeadline)
      if (enclosing - now - inheritedLead < deadline) deadline = Math.max(0, enclosing - now - inheritedLead)
      context = Context.add(context, CurrentDeadline, now + deadline)
    }
    const policy = spec.policy(clock, deadline)
    if (size === 0) return policy.result(0)
    const fork = Effect.runForkWith(context)
    const timed = spec.timed || spec.timeout !== undefined || spec.deadline !== undefined
    let alarms: Alarms | undefined = undefined
    const alarmsOf = () => alarms ??= new Alarms(fork as any, () => clock.currentTimeMillisUnsafe())
    // Why the fan-out stopped (see internal/cancel.ts): told once under the caller's id (`told`), or, detached (its
    // tasks outlive its answer), carried by each interruption. Its annotations are made on first use (`why`).
    let reason: CancelReason | undefined = undefined
    let why: Context.Context<never> | undefined = undefined
    const annotationsOf = () => reason === undefined ? undefined : why ??= cancel.annotations(reason)
    const told = () => reason !== undefined && !spec.detach
    /** The annotations the fan-out's own tasks are interrupted with once it has stopped. */
    const interruption = () => spec.detach ? annotationsOf() : undefined
    const timers: Timers = { alarms: alarmsOf, stopped: annotationsOf }

    // The running tasks' fibers by index, and how many run: a task's slot is cleared when it ends.
    const fibers: Array<Running | undefined> = new Array(size)
    let running = 0
    // The time limit that stopped each task, when one did; made only when there are limits.
    const limits: Array<Limit | undefined> | undefined =
      timed && (spec.timeout !== undefined || spec.deadline !== undefined)
        ? new Array(size)
        : undefined
    let next = 0
    let stopped = false
    let answered = false
    let resume: ((effect: Effect.Effect<A, E>) => void) | undefined = undefined
    let deadlineAlarm: Alarm | undefined = undefined
    // A throw in the fan-out's own bookkeeping (a stack overflow in a deep nest of fan-outs): the fan-out stops, and
    // dies with it once its tasks have ended, rather than answering with what a half-done step left behind.
    let broken: { readonly defect: unknown } | undefined = undefined
    // While the tasks start inside the registration, the caller has not suspended yet: answering it then is a return.
    let registering = true
    const answerOf = (started: number): Exit.Exit<A, E> | Effect.Effect<A, E> => {
      if (broken !== undefined) return Exit.die(broken.defect)
      try {
        return policy.result(started)
      } catch (defect) {
        return Exit.die(defect)
      }
    }

    const forEachRunning = (f: (task: Running, index: number) => void) => {
      for (let i = 0; i < next && running > 0; i++) {
        const fiber = fibers[i]
        if (fiber !== undefined) f(fiber, i)
      }
    }

    const stop = (stopReason?: CancelReason) => {
      if (stopped) return
      stopped = true
      reason = stopReason
      if (told()) cancel.stopped(caller.id, reason!)
      clear(deadlineAlarm)
      const annotations = interruption()
      forEachRunning((fiber) => fiber.interruptUnsafe(caller.id, annotations))
    }
    /** The fan-out's answer: once it is made, no task it interrupted is left to read why. */
    const finalAnswer = (started: number): Exit.Exit<A, E> | Effect.Effect<A, E> => {
      try {
        return answerOf(started)
      } finally {
        if (told()) cancel.answered(caller.id)
      }
    }

    /** Answers the caller once nothing the fan-out started still runs (or at once, detached, when stopped). */
    const settleIfDone = () => {
      if (answered || resume === undefined) return
      if (running > 0 && !(stopped && spec.detach)) return
      if (!stopped && next < size) return
      answered = true
      const answer = resume
      const started = next
      if (alarms === undefined) return answer(finalAnswer(started))
      alarms.close(() => answer(finalAnswer(started)))
    }

    /**
     * Runs a step of the fan-out's bookkeeping outside the caller's registration (a task's end, an alarm); a throw
     * there breaks the fan-out (see `broken`). If even stopping fails on this stack (a stack overflow leaves little
     * room), the stop and the answer run from the scheduler, on a fresh stack.
     */
    const guarded = (step: () => void) => {
      try {
        step()
      } catch (defect) {
        broken ??= { defect }
        try {
          recover()
        } catch {
          try {
            caller.currentDispatcher.scheduleTask(recover, 0)
          } catch {
            // Not even the scheduler can be called on this stack; the next task to end answers the caller.
          }
        }
      }
    }
    const recover = () => {
      stop()
      settleIfDone()
    }

    const ended = (index: number, exit: Exit.Exit<unknown, unknown>, started: number, end: number, waited: boolean) => {
      const limit = limits?.[index]
      if (stopped) policy.onLateExit(index, exit, limit, started, end, waited)
      else if (policy.onExit(index, exit, limit, started, end, waited)) stop(policy.stopReason?.(index, exit))
    }

    /**
     * Starts tasks until `concurrency` run, all have started, or the fan-out stops. The clock is read once every 32
     * tasks started in one go (it counts milliseconds; a task that ends as it starts ends at its start time).
     */
    const fill = () => {
      starting++
      try {
        fillOn()
      } finally {
        starting--
      }
    }
    const fillOn = () => {
      let now = 0
      for (let burst = 0; !stopped && next < size && running < concurrency; burst++) {
        const index = next++
        if (timed && (burst & 31) === 0) now = clock.currentTimeMillisUnsafe()
        const started = now
        let effect: Effect.Effect<unknown, unknown, unknown> | CallbackTask
        try {
          effect = spec.task(index, timers)
        } catch (defect) {
          effect = Exit.die(defect)
        }
        if (Exit.isExit(effect)) {
          ended(index, effect, started, started, false)
          continue
        }
        // The slot is taken before the task runs: a task's first step may end a sibling (completing a `Deferred`
        // resumes its waiters at once), and what that sibling's end does — stop, fill the free slot, answer — must
        // count this task as running.
        running++
        let exit: Exit.Exit<unknown, unknown> | undefined = undefined
        let task: Running
        if (isCallbackTask(effect)) {
          let starting = true
          let end: ((exit: Exit.Exit<unknown, unknown>) => void) | undefined = undefined
          const cancel = effect.start((result) => {
            if (starting) exit ??= result
            else end?.(result)
          })
          starting = false
          task = { interruptUnsafe: cancel, addObserver: (f) => end = f }
        } else {
          const fiber = fork(
            starting > maxStartingDepth
              ? Effect.andThen(Effect.yieldNow, effect as Effect.Effect<unknown, unknown>)
              : effect as Effect.Effect<unknown, unknown>
          )
          exit = fiber.pollUnsafe()
          task = fiber
        }
        if (exit !== undefined) {
          running--
          ended(index, exit, started, started, false)
          continue
        }
        fibers[index] = task
        if (stopped) task.interruptUnsafe(caller.id, interruption())
        const timeoutAlarm = spec.timeout === undefined ? undefined : alarmsOf().set(spec.timeout, () => {
          if (stopped || fibers[index] === undefined) return
          limits![index] = "Timeout"
          task.interruptUnsafe(caller.id, cancel.timeout)
        })
        let done = false
        task.addObserver((exit) =>
          guarded(() => {
            if (done) return
            done = true
            fibers[index] = undefined
            running--
            clear(timeoutAlarm)
            ended(index, exit, started, timed ? clock.currentTimeMillisUnsafe() : 0, true)
            fill()
            settleIfDone()
          })
        )
      }
    }

    // Tasks start inside the callback's registration: once a task runs, the caller is waiting for it, so that an
    // interruption of the caller always reaches the cleanup below (between two effects the caller may yield, and be
    // interrupted there).
    return Effect.callback<A, E>((resumeWith) => {
      resume = (answer) => registering ? resumeWith(answer) : resumeCaller(caller, () => resumeWith(answer))
      if (deadline !== undefined) {
        deadlineAlarm = alarmsOf().set(deadline, () =>
          guarded(() => {
            if (stopped) return
            forEachRunning((_, index) => limits![index] = "Deadline")
            policy.onDeadline()
            stop(cancel.deadlineReason)
            settleIfDone()
          }))
      }
      try {
        fill()
        settleIfDone()
      } catch (defect) {
        // A throw while the tasks start (a stack overflow in a deep nest of fan-outs): the tasks started are
        // interrupted, and the caller dies with it at once, through Effect's own handling of a throwing registration.
        broken ??= { defect }
        stop()
        if (told()) cancel.answered(caller.id)
        throw defect
      }
      registering = false
      if (answered) return
      // The caller is interrupted: interrupt every task and wait for all of them (and the timer) to end.
      return Effect.callback<void>((done) => {
        stop(cancel.callerReason)
        if (answered) return done(Effect.void)
        resume = () => done(Effect.void)
        guarded(settleIfDone)
      })
    })
  })

/**
 * How many fan-outs are starting tasks on this stack right now. A task's fiber starts on the stack that forks it, so
 * a nest of fan-outs (a task that runs a fan-out whose task runs a fan-out ...) would start every level on one
 * ever-deeper stack and overflow it a few hundred levels down. Past `maxStartingDepth` levels, a task's fiber yields
 * to the scheduler before its first step: its level goes on from a fresh stack, and a nest of any depth costs one
 * scheduler task per `maxStartingDepth` levels. Fan-outs that do not nest never reach it.
 */
let starting = 0
const maxStartingDepth = 64

/**
 * How many callers are being resumed on this stack right now. A fan-out that ends inside another's resumption (a
 * nest of fan-outs ending one after the other) resumes its caller from the scheduler instead, so that a deep nest
 * unwinds one level per scheduler task rather than one stack frame group per level: Node's async-context bookkeeping
 * does not survive a stack overflow in the middle of a resumption.
 */
let resuming = 0

const resumeCaller = (caller: Fiber.Fiber<unknown, unknown>, answer: () => void): void => {
  if (resuming > 0) return caller.currentDispatcher.scheduleTask(answer, 0)
  resuming++
  try {
    answer()
  } finally {
    resuming--
  }
}
