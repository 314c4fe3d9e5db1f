/**
 * Settle (`settle`, `settleForEach`): every task runs to its end and gets one outcome; it cannot fail, unless
 * `required` names tasks, the first of which to fail stops the fan-out and fails it with what that task did.
 *
 * @internal
 */
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { FanOutTimeoutError, InvalidOptionError } from "../FanOutError.js"
import type * as Outcome from "../Outcome.js"
import { failureReport } from "./failFast.js"
import type { Ledger } from "./ledger.js"
import type { Settings } from "./options.js"
import { runPolicy } from "./policy.js"
import { rebuild } from "./shape.js"
import type { Shape } from "./shape.js"
import { show } from "./show.js"

/** The indices of the tasks `required` names, checked against the tasks' keys. */
const requiredIndices = (
  shape: Shape,
  required: ReadonlyArray<unknown> | undefined
): ReadonlySet<number> | undefined => {
  if (required === undefined) return undefined
  const indices = new Set<number>()
  for (const key of required) {
    const index = shape.keys.indexOf(shape.struct ? String(key) : (key as number))
    if (index < 0 || (shape.struct && typeof key !== "string") || (!shape.struct && typeof key !== "number")) {
      throw new InvalidOptionError({
        option: "required",
        reason: `names ${show(key)}, which is not a key of the tasks (${shape.keys.map(show).join(", ")})`
      })
    }
    indices.add(index)
  }
  return indices
}

/** @internal */
export const settle = (shape: Shape, s: Settings, kind: "settle" | "settleForEach"): Effect.Effect<any, any> => {
  if (s.report && s.required === undefined) {
    throw new InvalidOptionError({
      option: "report",
      reason:
        "applies to settle only with `required`: without required tasks settle cannot fail, so it has nothing to report"
    })
  }
  const required = requiredIndices(shape, s.required)
  return runPolicy(kind, shape, s, { detach: false, discard: false }, (ledger, deadline) => ({
    onExit: (index, exit) => required !== undefined && required.has(index) && exit._tag !== "Success",
    stopReason: (index) => ({ _tag: "RequiredFailed", key: shape.keys[index]!, label: shape.labels[index] }),
    result() {
      const outcomes = ledger.outcomes()
      if (required !== undefined) {
        const failed = ledger.stop === "Policy"
          ? ledger.stoppedBy
          : ledger.stop === "Deadline"
          ? [...required].find((i) => outcomes[i]!._tag !== "Success") ?? -1
          : -1
        if (failed >= 0) return requiredFailure(s, deadline, ledger, failed, outcomes)
      }
      return Exit.succeed(rebuild(shape, outcomes))
    }
  }))
}

/**
 * The whole fan-out fails with what the required task did: its own error, its defect, or a time-out naming it
 * (even at the deadline, so the caller knows which required task was missing), whose duration is `deadline`, the
 * one the fan-out ran under (its own, or the enclosing one it adopted). With `report: true`, a `FanOutFailure`
 * naming the task instead.
 */
const requiredFailure = (
  s: Settings,
  deadline: number | undefined,
  ledger: Ledger,
  index: number,
  outcomes: Array<Outcome.Outcome<unknown, unknown>>
): Exit.Exit<never, unknown> => {
  const outcome = outcomes[index]!
  if (s.report) return Exit.fail(failureReport(ledger, index, false))
  switch (outcome._tag) {
    case "Failure":
    case "Defect":
      return Exit.failCause(outcome.cause)
    case "TimedOut":
      return Exit.fail(
        new FanOutTimeoutError({
          reason: outcome.reason,
          key: outcome.key,
          label: outcome.label,
          duration: Duration.millis(outcome.reason === "Deadline" ? deadline! : s.timeout!)
        })
      )
    case "Interrupted":
    case "Success":
      return Exit.interrupt()
  }
}
