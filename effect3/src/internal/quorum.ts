/**
 * Quorum: succeed as soon as `n` tasks have succeeded, fail as soon as `n` can no longer be reached.
 *
 * @internal
 */
import type * as Cause from "effect/Cause"
import * as Effect from "effect/Effect"
import { InvalidOptionError, QuorumError } from "../FanOutError.js"
import type * as Outcome from "../Outcome.js"
import * as fanOut from "./fanOut.js"
import * as options from "./options.js"

/** @internal */
export const quorum = (
  shape: fanOut.Shape,
  needed: unknown,
  s: fanOut.Settings,
  mode = "quorum"
): Effect.Effect<Array<Outcome.Success<unknown>>, QuorumError<unknown>> => {
  const total = shape.keys.length
  if (typeof needed !== "number" || !Number.isInteger(needed) || needed < 1 || needed > total) {
    throw new InvalidOptionError({
      option: "n",
      reason: `must be an integer from 1 to the number of tasks (${total}), got ${options.show(needed)}`
    })
  }
  let succeeded = 0
  let ended = 0
  // Completion order of the successes: the result lists them as they came.
  const order: Array<number> = []
  const onExit = (index: number, cause: Cause.Cause<unknown> | undefined): boolean => {
    ended++
    if (cause === undefined) {
      succeeded++
      order.push(index)
      return succeeded >= needed
    }
    // Stop as soon as the tasks still to come cannot make up the difference.
    return succeeded + (total - ended) < needed
  }
  return fanOut.runObserved(
    { mode, shape, settings: s, failFast: false, onExit },
    (finished) => {
      const outcomes = fanOut.outcomesOf(shape, finished.prepared, finished.report, finished.now)
      if (succeeded >= needed) {
        return [Effect.succeed(order.map((i) => outcomes[i] as Outcome.Success<unknown>)), outcomes]
      }
      return [Effect.fail(new QuorumError({ needed, succeeded, outcomes })), outcomes]
    }
  )
}
