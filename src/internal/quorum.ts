/**
 * Quorum: succeed as soon as `n` tasks have succeeded, fail as soon as `n` can no longer be reached.
 *
 * @internal
 */
import type * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { InvalidOptionError, QuorumError } from "../FanOutError.js"
import type * as Outcome from "../Outcome.js"
import type { Settings } from "./options.js"
import { runPolicy } from "./policy.js"
import type { Shape } from "./shape.js"
import { show } from "./show.js"

/** @internal */
export const quorum = (
  shape: Shape,
  needed: unknown,
  s: Settings,
  kind: "quorum" | "firstSuccess" = "quorum"
): Effect.Effect<Array<Outcome.Success<unknown>>, QuorumError<unknown>> => {
  const total = shape.keys.length
  if (typeof needed !== "number" || !Number.isInteger(needed) || needed < 1 || needed > total) {
    throw new InvalidOptionError({
      option: "n",
      reason: `must be an integer from 1 to the number of tasks (${total}), got ${show(needed)}`
    })
  }
  return runPolicy(kind, shape, s, { detach: false, discard: false }, (ledger) => {
    let succeeded = 0
    let ended = 0
    // The successes in the order they came: the result lists them so.
    const order: Array<number> = []
    return {
      onExit(index, exit) {
        ended++
        if (exit._tag === "Success") {
          succeeded++
          order.push(index)
          return succeeded >= needed
        }
        // Stop as soon as the tasks still to come cannot make up the difference.
        return succeeded + (total - ended) < needed
      },
      result() {
        const outcomes = ledger.outcomes()
        if (succeeded >= needed) return Exit.succeed(order.map((i) => outcomes[i] as Outcome.Success<unknown>))
        return Exit.fail(new QuorumError({ needed, succeeded, outcomes }))
      }
    }
  })
}
