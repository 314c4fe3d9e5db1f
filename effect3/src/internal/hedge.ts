/**
 * Hedged requests: when an attempt is slow, start another and keep whichever succeeds first.
 *
 * A new attempt starts when the latest one has run for `delay` without an answer, and at once when an attempt fails;
 * at most `max` attempts run in all. The first success wins and the attempts still running are interrupted (and
 * waited for). The task fails only when every attempt has failed, with all their causes (the first attempt's first);
 * when some failed with typed errors, the attempts that only died are left out.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import * as Predicate from "effect/Predicate"
import { InvalidOptionError } from "../FanOutError.js"
import * as attempts from "./attempts.js"
import * as engine from "./engine.js"
import * as options from "./options.js"

/** @internal */
export interface Hedge {
  readonly delay: Duration.Duration
  readonly max: number
}

/**
 * The most attempts `max` may ask for: every attempt may become a fiber running at once, so an unbounded count is a
 * way to exhaust memory, not a policy.
 *
 * @internal
 */
export const maxAttempts = 100

/** @internal */
export const settings = (raw: unknown, option: string): Hedge => {
  if (!Predicate.isRecord(raw)) {
    throw new InvalidOptionError({ option, reason: `must be { delay, max? }, got ${options.show(raw)}` })
  }
  for (const key of Object.keys(raw)) {
    if (key !== "delay" && key !== "max" && raw[key] !== undefined) {
      throw new InvalidOptionError({
        option: `${option}.${key}`,
        reason: "is not a hedging option (they are: delay, max)"
      })
    }
  }
  const delay = options.duration(raw.delay, `${option}.delay`)
  if (delay === undefined) {
    throw new InvalidOptionError({ option: `${option}.delay`, reason: "is required" })
  }
  const max = raw.max === undefined ? 2 : raw.max
  if (typeof max !== "number" || !Number.isInteger(max) || max < 1 || max > maxAttempts) {
    throw new InvalidOptionError({
      option: `${option}.max`,
      reason: `must be an integer from 1 to ${maxAttempts}, got ${options.show(max)}`
    })
  }
  return { delay, max }
}

/** `FanOut.hedge(task, options)`: checks both before the first attempt. @internal */
export const hedged = <A, E, R>(task: Effect.Effect<A, E, R>, raw: unknown): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    if (!Effect.isEffect(task)) {
      throw new InvalidOptionError({ option: "task", reason: `hedge needs an Effect, got ${options.show(task)}` })
    }
    const hedging = hedger(settings(raw, "hedge"), new attempts.Spawner())
    return Effect.ensuring(hedging.run(task), hedging.close)
  })

/** `causes[from..to)` in parallel, left to right, as a tree of depth log2(n). */
const joined = <E>(causes: ReadonlyArray<Cause.Cause<E>>, from: number, to: number): Cause.Cause<E> => {
  if (to - from === 1) return causes[from]!
  const middle = (from + to) >>> 1
  return Cause.parallel(joined(causes, from, middle), joined(causes, middle, to))
}

/** @internal */
export interface Hedger {
  readonly run: <A, E, R>(task: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Stops the alarms' timer: run when the fan-out (or the hedged call) has ended. */
  readonly close: Effect.Effect<void>
}

/**
 * Hedging for the tasks of one fan-out: each attempt on a fiber of its own (`attempts.Spawner`), the delays by one
 * queue of alarms (`attempts.Alarms`) for all of them.
 *
 * @internal
 */
export const hedger = (hedge: Hedge, spawner: attempts.Spawner): Hedger => {
  const delay = Duration.toMillis(hedge.delay)
  // An infinite delay starts no backup: no alarm to set (a failure still starts the next attempt).
  const alarms = delay === Infinity ? undefined : new attempts.Alarms(delay, spawner)
  const run = <A, E, R>(task: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.withFiberRuntime<A, E, R>((fiber) => {
      const parent = fiber as engine.AnyFiber
      const running = new Set<engine.AnyFiber>()
      // The causes of the attempts that failed, by attempt.
      const causes: Array<Cause.Cause<E>> = []
      let started = 0
      // Set once an attempt has won, every attempt has failed, or the task is interrupted: start nothing more.
      let decided = false
      let won: Exit.Exit<A, E> | undefined
      let result: Exit.Exit<A, E> | undefined
      let resume: ((effect: Effect.Effect<A, E, R>) => void) | undefined
      // Told when the last attempt has ended: the task's interruption waits for it.
      let onEnd: (() => void) | undefined

      /**
       * Every attempt has ended and the answer is known: the winner's, or every failure, the first attempt's first. A
       * typed failure wins over a crash, as in outcomes: when some attempts failed with typed errors, the attempts that
       * only died (or were interrupted) are left out, so that the task stays recoverable (`catchAll`, `retry` leave a
       * cause with a defect in it to the defect channel). The causes are joined as a balanced tree, not a chain one
       * level deeper per attempt, for whoever walks it.
       */
      const allEnded = () => {
        // (No cause at all: the task was interrupted before any attempt failed, and nobody reads this result.)
        const failed = causes.filter((cause) => cause !== undefined)
        const typed = failed.filter((cause) => Option.isSome(Cause.failureOption(cause)))
        const kept = typed.length > 0 ? typed : failed
        result = won ?? (kept.length === 0 ? Exit.interrupt(parent.id()) : Exit.failCause(joined(kept, 0, kept.length)))
        if (onEnd !== undefined) onEnd()
        if (resume !== undefined) resume(result)
      }

      // Set while attempts are being started: one that fails at once asks for the next instead of starting it from
      // inside its own end, so that no `max` makes the stack grow.
      let starting = false
      let wanted = false
      /** Starts the next attempt (or, while attempts are being started, asks for it). */
      const launch = (): void => {
        wanted = true
        if (starting) return
        starting = true
        while (wanted && !decided && started < hedge.max) {
          wanted = false
          startOne()
        }
        starting = false
      }

      const startOne = (): void => {
        const k = started++
        const child = spawner.fiber(parent, task)
        running.add(child)
        let alarm: attempts.Alarm | undefined
        child.addObserver((exit) => {
          running.delete(child)
          if (alarm !== undefined) alarms?.clear(alarm)
          if (!decided) {
            if (exit._tag === "Success") {
              decided = true
              won = exit as Exit.Exit<A, E>
              for (const other of running) other.unsafeInterruptAsFork(parent.id())
            } else {
              causes[k] = exit.cause as Cause.Cause<E>
              // A failed attempt starts the next one at once.
              if (started < hedge.max) launch()
              else if (running.size === 0) decided = true
            }
          }
          if (decided && running.size === 0 && result === undefined) allEnded()
        })
        engine.startFiber(child, task)
        // Still running: the next attempt starts if this one has not answered within the delay.
        if (alarms !== undefined && running.has(child) && !decided && started < hedge.max) {
          alarm = alarms.set(parent, () => {
            alarm = undefined
            if (!decided && started === k + 1) launch()
          })
        }
      }

      launch()
      if (result !== undefined) return result
      return Effect.async<A, E, R>((resumeTask) => {
        // The task's fiber may have yielded before it got here, and the attempts ended meanwhile.
        if (result !== undefined) return resumeTask(result)
        resume = resumeTask
        // The task is interrupted: so is every attempt, and the task waits for them all.
        return Effect.async<void>((ended) => {
          decided = true
          if (running.size === 0) return ended(Effect.void)
          onEnd = () => ended(Effect.void)
          for (const attempt of running) attempt.unsafeInterruptAsFork(parent.id())
        })
      })
    })
  return { run, close: alarms?.close ?? Effect.void }
}
