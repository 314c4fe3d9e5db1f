/**
 * The per-task `timeout` of one fan-out, for attempts that are not the whole task (retried, hedged, inside a task span,
 * or in a batching fan-out; a task that is its one attempt is limited by the engine on its worker, `engine.TimeLimit`):
 * each attempt runs on a fiber of its own, and an alarm of the fan-out's (`attempts.Alarms`, one timer fiber for all)
 * interrupts the attempts that run past their limit. An attempt that ends in time clears its alarm; one that ends while
 * it starts sets none.
 *
 * As with `Effect.timeoutFail`: the attempt sees the task's fiber-local state; an attempt that runs out of time is
 * interrupted and waited for (its finalizers run), then the task fails with the time-out error, whatever the attempt
 * ended with (an uninterruptible one may still succeed, late); interrupting the task interrupts the attempt and waits
 * for it. Unlike it, fiber-local changes made inside the attempt are not copied back into the task: nothing but the
 * fan-out's own code (retries, hedging, the task's span) runs in the task after the attempt, and the task's changes
 * are dropped when it ends.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as attempts from "./attempts.js"
import type * as engine from "./engine.js"

/** @internal */
export interface TimeLimits {
  /** `attempt`, failing with `onTimeout()` when it has not ended within the limit. */
  readonly limit: <A, E, R, E2>(attempt: Effect.Effect<A, E, R>, onTimeout: () => E2) => Effect.Effect<A, E | E2, R>
  /** Interrupts the timer and waits for it: run when the fan-out has ended, so that no fiber outlives it. */
  readonly close: Effect.Effect<void>
  /** The alarms `limit` sets (for the engine to set its own instead); none for an infinite limit. */
  readonly alarms: attempts.Alarms | undefined
}

/** @internal */
export const make = (limit: Duration.Duration, spawner: attempts.Spawner): TimeLimits => {
  const millis = Duration.toMillis(limit)
  if (millis === Infinity) return { limit: (attempt) => attempt, close: Effect.void, alarms: undefined }
  const alarms = new attempts.Alarms(millis, spawner)

  const run = <A, E, R, E2>(attempt: Effect.Effect<A, E, R>, onTimeout: () => E2) =>
    Effect.withFiberRuntime<A, E | E2, R>((fiber) => {
      const parent = fiber as engine.AnyFiber
      const child = spawner.fiber(parent, attempt)
      let running = true
      let timedOut = false
      let exit: Exit.Exit<unknown, unknown> | undefined
      let resume: ((effect: Effect.Effect<any, any, any>) => void) | undefined
      // Told when the attempt has ended: the task's interruption waits for it.
      let onEnd: (() => void) | undefined
      let alarm: attempts.Alarm | undefined = undefined
      // How the task goes on from the attempt's end: a time-out error once its time was up, whatever it ended with.
      const outcome = (end: Exit.Exit<unknown, unknown>) => timedOut ? Exit.fail(onTimeout()) : end as Exit.Exit<A, E>
      child.addObserver((end) => {
        running = false
        if (alarm !== undefined) alarms.clear(alarm)
        if (onEnd !== undefined) onEnd()
        if (resume === undefined) exit = end
        else resume(outcome(end))
      })
      child.start(attempt)
      // Ended while starting (no alarm can have rung meanwhile): in time.
      if (exit !== undefined) return exit as Exit.Exit<A, E>
      alarm = alarms.set(parent, () => {
        timedOut = true
        child.unsafeInterruptAsFork(FiberId.none)
      })
      return Effect.async<A, E | E2, R>((resumeTask) => {
        // The task's fiber may have yielded before it got here, and the attempt ended meanwhile.
        if (exit !== undefined) return resumeTask(outcome(exit))
        resume = resumeTask
        // The task is interrupted: so is the attempt, and the task waits for it to end.
        return Effect.async<void>((ended) => {
          if (!running) return ended(Effect.void)
          onEnd = () => ended(Effect.void)
          child.unsafeInterruptAsFork(parent.id())
        })
      })
    })

  return { limit: run, close: alarms.close, alarms }
}
