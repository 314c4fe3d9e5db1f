/**
 * Outcomes as a `Stream`, in the order the tasks finish.
 *
 * The fan-out runs in a scoped fiber that offers each outcome to a queue as its task ends; the stream reads the
 * queue and ends after one outcome per task. Ending the stream early closes the scope, which interrupts the
 * fan-out, which interrupts its running tasks and waits for their finalizers.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import * as Queue from "effect/Queue"
import * as Stream from "effect/Stream"
import type * as Outcome from "../Outcome.js"
import * as fanOut from "./fanOut.js"

/** @internal */
export const stream = (shape: fanOut.Shape, s: fanOut.Settings): Stream.Stream<Outcome.Outcome<unknown, unknown>> => {
  const total = shape.keys.length
  // No task: the fan-out still runs (its span and metrics), and the stream ends with it.
  if (total === 0) {
    return Stream.drain(Stream.fromEffect(fanOut.runObserved(
      { mode: "stream", shape, settings: s, failFast: false, onExit: () => false },
      () => [Effect.void, []]
    )))
  }
  return Stream.unwrapScoped(Effect.gen(function*() {
    const queue = yield* Queue.unbounded<Outcome.Outcome<unknown, unknown>>()
    const clock = yield* Effect.clock
    const emitted: Array<boolean> = new Array(total).fill(false)
    const run = fanOut.runObserved(
      {
        mode: "stream",
        shape,
        settings: s,
        failFast: false,
        onExit: (index, _exit, report, prepared) => {
          emitted[index] = true
          Queue.unsafeOffer(
            queue,
            fanOut.outcomeOf(shape, prepared, report, index, clock.unsafeCurrentTimeMillis())
          )
          return false
        }
      },
      (finished) => {
        const outcomes = fanOut.outcomesOf(shape, finished.prepared, finished.report, finished.now)
        // Tasks cut off by the deadline end after the fan-out has stopped listening: they come last.
        for (let i = 0; i < total; i++) {
          if (!emitted[i]) Queue.unsafeOffer(queue, outcomes[i]!)
        }
        return [Effect.void, outcomes]
      }
    )
    yield* Effect.forkScoped(run)
    return Stream.take(Stream.fromQueue(queue), total)
  }))
}
