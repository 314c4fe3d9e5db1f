/**
 * The tightest deadline around a fiber: the clock's instant (milliseconds, as `Clock.currentTimeMillis`) at which
 * the innermost fan-out with a `deadline` stops, `Infinity` where there is none. A fan-out with a deadline forks its
 * tasks with it in their context; one without leaves its tasks the caller's (so an enclosing deadline reaches them).
 *
 * @internal
 */
import * as Context from "effect/Context"

/** @internal */
export const CurrentDeadline: Context.Reference<number> = Context.Reference<number>("effect-fanout/CurrentDeadline", {
  defaultValue: () => Infinity
})

/**
 * How long before the enclosing deadline a nested fan-out (or facade run) that adopts it ends, in milliseconds: its
 * result then reaches the task that runs it before the enclosing deadline stops that task. @internal
 */
export const inheritedLead = 1
