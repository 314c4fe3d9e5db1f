/**
 * Tracing and metrics of fan-outs: one span per fan-out, with the counts of its outcomes, and (see `around`) one
 * child span per task.
 *
 * @internal
 */
import * as Effect from "effect/Effect"
import type * as Outcome from "../Outcome.js"
import type { Around } from "./attempts.js"
import type { Ledger } from "./ledger.js"
import type { Settings } from "./options.js"
import type { Shape } from "./shape.js"

const tags: ReadonlyArray<Outcome.Outcome<unknown, unknown>["_tag"]> = [
  "Success",
  "Failure",
  "Defect",
  "TimedOut",
  "Interrupted"
]

/**
 * Runs the fan-out `make` builds inside its span. `make` is given the task-span hook (undefined: no task spans) and
 * `observe`, with which it hands over the ledger the summary is read from when the fan-out ends.
 */
export const observed = <A, E>(
  kind: string,
  s: Settings,
  shape: Shape,
  make: (around: Around | undefined, observe: (ledger: Ledger) => Ledger) => Effect.Effect<A, E>
): Effect.Effect<A, E> => {
  let ledger: Ledger | undefined = undefined
  const run = make(undefined, (l) => ledger = l)
  return Effect.withSpan(
    Effect.onExit(run, () =>
      Effect.flatMap(Effect.currentSpan, (span) =>
        Effect.sync(() => {
          if (ledger === undefined) return
          const counts: Record<string, number> = { Success: 0, Failure: 0, Defect: 0, TimedOut: 0, Interrupted: 0 }
          for (let i = 0; i < shape.keys.length; i++) counts[ledger.outcome(i)._tag]!++
          for (const tag of tags) span.attribute(`fanout.outcome.${tag}`, counts[tag])
        })).pipe(Effect.ignore)),
    s.name ?? `fanout.${kind}`,
    { attributes: { "fanout.tasks": shape.keys.length } }
  )
}
