/**
 * The per-task `timeout` of one fan-out: each attempt runs on a fiber of its own, and one timer fiber per fan-out
 * interrupts the attempts that run past their limit.
 *
 * `Effect.timeoutFail` races every attempt against a sleep: two forked fibers, a timer and a race per attempt, about
 * a hundred times what the engine spends on a task. Every attempt of a fan-out has the same limit and attempts start
 * in clock order, so their ends are in start order too: a queue, whose head is the next attempt to run out of time, and
 * one fiber that sleeps until that head's end (through the fan-out's `Clock`, so `TestClock` drives it) are enough. An
 * attempt that ends in time only marks its entry done; the timer skips it when it gets there.
 *
 * As with `Effect.timeoutFail`: the attempt sees the task's fiber-local state; an attempt that runs out of time is
 * interrupted and waited for (its finalizers run), then the task fails with the time-out error, whatever the attempt
 * ended with (an uninterruptible one may still succeed, late); interrupting the task interrupts the attempt and waits
 * for it. Unlike
 * it, fiber-local changes made inside the attempt are not copied back into the task: nothing but the fan-out's own
 * code (retries, hedging, the task's span) runs in the task after the attempt, and the task's changes are dropped
 * when it ends.
 *
 * @internal
 */
import * as Clock from "effect/Clock"
import * as Context from "effect/Context"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as FiberId from "effect/FiberId"
import * as FiberRefs from "effect/FiberRefs"
import * as RuntimeFlags from "effect/RuntimeFlags"
import * as engine from "./engine.js"

/** One attempt in the queue. */
interface Entry {
  /** When its time is up, by the fan-out's clock. */
  readonly at: number
  /** Its fiber while it runs; cleared when it ends. */
  fiber: engine.AnyFiber | undefined
  timedOut: boolean
  /** How it ended, when it ended while starting. */
  exit: Exit.Exit<unknown, unknown> | undefined
  /** Resumes the task with the attempt's result, once the task waits for it. */
  resume: ((effect: Effect.Effect<any, any, any>) => void) | undefined
  /** Told when the attempt has ended (the task's interruption waits for it). */
  onEnd: (() => void) | undefined
}

/** @internal */
export interface TimeLimits {
  /** `attempt`, failing with `onTimeout()` when it has not ended within the limit. */
  readonly limit: <A, E, R, E2>(attempt: Effect.Effect<A, E, R>, onTimeout: () => E2) => Effect.Effect<A, E | E2, R>
  /** Interrupts the timer and waits for it: run when the fan-out has ended, so that no fiber outlives it. */
  readonly close: Effect.Effect<void>
}

/** @internal */
export const make = (limit: Duration.Duration): TimeLimits => {
  const millis = Duration.toMillis(limit)
  let spawn: engine.FiberFactory | undefined
  let timerId: FiberId.FiberId = FiberId.none
  const queue: Array<Entry> = []
  let head = 0
  let timer: engine.AnyFiber | undefined
  let closed = false
  // The attempts' fiber refs: the task's, forked once for every task whose refs are these (most tasks change none).
  let lastRefs: FiberRefs.FiberRefs | undefined
  let lastForked: FiberRefs.FiberRefs | undefined

  /** Drops the entries that have ended from the head; whether one is left. */
  const skipEnded = (): boolean => {
    while (head < queue.length && queue[head]!.fiber === undefined) head++
    if (head === queue.length) {
      queue.length = 0
      head = 0
      return false
    }
    if (head > 1024 && head * 2 > queue.length) {
      queue.splice(0, head)
      head = 0
    }
    return true
  }

  /** Interrupts the attempts whose time is up, then sleeps until the next one's; ends when none is left. */
  const watch: Effect.Effect<void> = Effect.clockWith((clock) =>
    Effect.suspend(() => {
      const now = clock.unsafeCurrentTimeMillis()
      while (head < queue.length && queue[head]!.at <= now) {
        const entry = queue[head++]!
        if (entry.fiber !== undefined) {
          entry.timedOut = true
          entry.fiber.unsafeInterruptAsFork(timerId)
        }
      }
      if (!skipEnded()) {
        timer = undefined
        return Effect.void
      }
      return Effect.zipRight(Effect.sleep(queue[head]!.at - now), watch)
    })
  )

  const startTimer = (parent: engine.AnyFiber) => {
    const factory = spawn!
    // Interruptible whatever the task's flags: the timer is the fan-out's own.
    const t = factory(watch, RuntimeFlags.enable(parent.currentRuntimeFlags, RuntimeFlags.Interruption))
    timer = t
    timerId = t.id()
    t.start(watch)
  }

  const run = <A, E, R, E2>(attempt: Effect.Effect<A, E, R>, onTimeout: () => E2) =>
    Effect.withFiberRuntime<A, E | E2, R>((fiber) => {
      if (closed) return attempt
      const parent = fiber as engine.AnyFiber
      spawn ??= engine.fiberFactory(parent)
      // Not `getFiberRefs()`, which first writes the runtime flags into them: a new `FiberRefs` per call.
      const refs = parent._fiberRefs
      if (refs !== lastRefs) {
        lastRefs = refs
        lastForked = FiberRefs.forkAs(refs, FiberId.unsafeMake())
      }
      const at = Context.get(parent.currentDefaultServices, Clock.Clock).unsafeCurrentTimeMillis() + millis
      const child = spawn(attempt, parent.currentRuntimeFlags, lastForked)
      const entry: Entry = { at, fiber: child, timedOut: false, exit: undefined, resume: undefined, onEnd: undefined }
      child.addObserver((exit) => {
        entry.fiber = undefined
        const onEnd = entry.onEnd
        if (onEnd !== undefined) {
          entry.onEnd = undefined
          onEnd()
        }
        const resume = entry.resume
        if (resume === undefined) entry.exit = exit
        else {
          entry.resume = undefined
          resume(entry.timedOut ? Exit.fail(onTimeout()) : exit)
        }
      })
      child.start(attempt)
      // Ended while starting (no timer can have run meanwhile): in time, and nothing to queue.
      if (entry.exit !== undefined) return entry.exit as Exit.Exit<A, E>
      queue.push(entry)
      if (timer === undefined) startTimer(parent)
      return Effect.async<A, E | E2, R>((resume) => {
        entry.resume = resume
        // The task is interrupted: so is the attempt, and the task waits for it to end.
        return Effect.async<void>((ended) => {
          if (entry.fiber === undefined) return ended(Effect.void)
          entry.onEnd = () => ended(Effect.void)
          entry.fiber.unsafeInterruptAsFork(parent.id())
        })
      })
    })

  const close = Effect.suspend(() => {
    closed = true
    const t = timer
    if (t === undefined) return Effect.void
    timer = undefined
    return Effect.async<void>((ended) => {
      t.addObserver(() => ended(Effect.void))
      t.unsafeInterruptAsFork(FiberId.none)
    })
  })

  return {
    limit: millis === Infinity ? (attempt) => attempt : run,
    close
  }
}
