/**
 * How a task's `Exit` reads as an `Outcome`: one rule for outcomes, task spans and counts alike.
 *
 * @internal
 */
import type * as Cause from "effect/Cause"
import type * as Exit from "effect/Exit"
import type * as Outcome from "../Outcome.js"
import * as stack from "./stack.js"

/**
 * The outcome of a task that ended with `exit`. A success is a `Success`. Otherwise, when `timedOut` says a time limit
 * ended the task (its own `timeout`, or the fan-out's `deadline`), a `TimedOut` with that reason: whatever its cause,
 * the limit is why it ended. Otherwise a typed failure wins over a defect, a defect over an interruption: the first
 * `Fail` reason makes a `Failure`, else the first `Die` reason a `Defect` (with its stack trimmed to the user's
 * frames), else (interruptions only, or an empty cause) `Interrupted`. The same rule as the Effect 3 line's; but where
 * Effect 4 combines causes itself (a finalizer that dies after a failure) it has already made the typed failures
 * defects, so such a task is a `Defect`. `common` is copied field by field, so that an object with more fields does
 * not leak them into the outcome.
 *
 * @internal
 */
export const outcomeOf = <A, E>(
  exit: Exit.Exit<A, E>,
  common: Outcome.Common,
  timedOut: "Timeout" | "Deadline" | undefined
): Outcome.Outcome<A, E> => {
  const { attempts, durationMillis, key, label } = common
  if (exit._tag === "Success") return { _tag: "Success", value: exit.value, key, label, durationMillis, attempts }
  if (timedOut !== undefined) return { _tag: "TimedOut", reason: timedOut, key, label, durationMillis, attempts }
  const cause = exit.cause
  let die: Cause.Die | undefined
  for (const reason of cause.reasons) {
    if (reason._tag === "Fail") {
      return { _tag: "Failure", error: reason.error, cause, key, label, durationMillis, attempts }
    }
    if (reason._tag === "Die" && die === undefined) die = reason
  }
  if (die !== undefined) {
    return {
      _tag: "Defect",
      defect: die.defect,
      // No `Fail` reason is in it (the loop above returned at the first), so it holds no `E`.
      cause: cause as Cause.Cause<never>,
      stack: stack.ofDefect(die.defect),
      key,
      label,
      durationMillis,
      attempts
    }
  }
  return { _tag: "Interrupted", key, label, durationMillis, attempts }
}
