/**
 * Hedged requests: when an attempt is slow, start another and keep whichever succeeds first.
 *
 * Attempt k+1 starts when attempt k has run for `delay` without an answer, or at once when it fails; at most `max`
 * attempts run in all. The first success wins and the attempts still running are interrupted (and waited for). The
 * task fails only when every attempt has failed, with all their causes (the first attempt's first).
 *
 * @internal
 */
import * as Deferred from "effect/Deferred"
import type * as Duration from "effect/Duration"
import * as Effect from "effect/Effect"
import * as Predicate from "effect/Predicate"
import { InvalidOptionError } from "../FanOutError.js"
import * as options from "./options.js"

/** @internal */
export interface Hedge {
  readonly delay: Duration.Duration
  readonly max: number
}

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
  const max = raw.max === undefined ? 2 : options.positiveInteger(raw.max, `${option}.max`)
  return { delay, max }
}

/** `FanOut.hedge(task, options)`: checks both before the first attempt. @internal */
export const hedged = <A, E, R>(task: Effect.Effect<A, E, R>, raw: unknown): Effect.Effect<A, E, R> =>
  Effect.suspend(() => {
    if (!Effect.isEffect(task)) {
      throw new InvalidOptionError({ option: "task", reason: `hedge needs an Effect, got ${options.show(task)}` })
    }
    return run(task, settings(raw, "hedge"))
  })

/** @internal */
export const run = <A, E, R>(task: Effect.Effect<A, E, R>, hedge: Hedge): Effect.Effect<A, E, R> => {
  // The wait for the next attempt is interruptible even when the caller is not (a hedge in a finalizer, or inside
  // `Effect.uninterruptible`): once an attempt has won, the wait is the hedge's own to stop, not something to sit out.
  const wait = (failed: Deferred.Deferred<void>) =>
    Effect.interruptible(Effect.race(Effect.sleep(hedge.delay), Deferred.await(failed)))
  const attempt = (k: number): Effect.Effect<A, E, R> => {
    if (k >= hedge.max) return task
    return Effect.flatMap(Deferred.make<void>(), (failed) =>
      Effect.race(
        Effect.onError(task, () => Deferred.succeed(failed, undefined)),
        Effect.zipRight(wait(failed), attempt(k + 1))
      ))
  }
  return attempt(1)
}
