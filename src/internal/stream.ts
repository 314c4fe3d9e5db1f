/**
 * Outcomes as a `Stream`, in the order the tasks finish.
 *
 * The fan-out runs in the stream's scope and offers each outcome to the stream's queue as its task ends; the stream
 * ends after one outcome per task. Ending the stream early closes its scope, which interrupts the fan-out, which
 * interrupts its running tasks and waits for their finalizers.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import type * as Outcome from "../Outcome.js"
import type { Settings } from "./options.js"
import { runPolicy } from "./policy.js"
import type { Shape } from "./shape.js"

/** @internal */
export const stream = (shape: Shape, s: Settings): Stream.Stream<Outcome.Outcome<unknown, unknown>> =>
  Stream.callback<Outcome.Outcome<unknown, unknown>>((queue) =>
    Effect.andThen(
      runPolicy("stream", shape, s, { detach: false, discard: false }, (ledger) => {
        const emitted = new Uint8Array(shape.keys.length)
        return {
          onExit(index) {
            emitted[index] = 1
            Queue.offerUnsafe(queue, ledger.outcome(index))
            return false
          },
          result() {
            // Tasks cut off by the deadline end after the fan-out has stopped listening: they come last.
            for (let i = 0; i < emitted.length; i++) if (emitted[i] === 0) Queue.offerUnsafe(queue, ledger.outcome(i))
            return Exit.void
          }
        }
      }),
      Queue.end(queue)
    )
  )
