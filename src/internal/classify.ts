/**
 * How a task's `Exit` reads as an `Outcome`: one rule for outcomes, task spans and counts alike.
 *
 * @internal
 */
import type * as Cause from "effect/Cause"
import type * as Exit from "effect/Exit"
import type * as Outcome from "../Outcome.js"
import { ofCauseOrUndefined } from "./cancel.js"
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
  switch (tagOf(exit, timedOut)) {
    case "Success":
      return { _tag: "Success", value: (exit as Exit.Success<A, E>).value, key, label, durationMillis, attempts }
    case "TimedOut":
      return { _tag: "TimedOut", reason: timedOut!, key, label, durationMillis, attempts }
    case "Failure": {
      const cause = (exit as Exit.Failure<A, E>).cause
      const error = cause.reasons.find((reason) => reason._tag === "Fail")!.error
      return { _tag: "Failure", error, cause, key, label, durationMillis, attempts }
    }
    case "Defect": {
      const cause = (exit as Exit.Failure<A, E>).cause
      const defect = cause.reasons.find((reason) => reason._tag === "Die")!.defect
      // A cause with no `Fail` reason holds no `E`.
      return {
        _tag: "Defect",
        defect,
        cause: cause as Cause.Cause<never>,
        stack: stack.ofDefect(defect),
        key,
        label,
        durationMillis,
        attempts
      }
    }
    case "Interrupted":
      return {
        _tag: "Interrupted",
        key,
        label,
        durationMillis,
        attempts,
        cancelReason: ofCauseOrUndefined((exit as Exit.Failure<A, E>).cause)
      }
  }
}

/**
 * The tag of the outcome `outcomeOf` makes of `exit`, without making it (for counts and task spans): a success, then
 * a time limit that stopped the task, then a typed failure over a defect over an interruption.
 *
 * @internal
 */
export const tagOf = (
  exit: Exit.Exit<unknown, unknown>,
  timedOut: "Timeout" | "Deadline" | undefined
): Outcome.Outcome<unknown, unknown>["_tag"] => {
  if (exit._tag === "Success") return "Success"
  if (timedOut !== undefined) return "TimedOut"
  let tag: "Defect" | "Interrupted" = "Interrupted"
  for (const reason of exit.cause.reasons) {
    if (reason._tag === "Fail") return "Failure"
    if (reason._tag === "Die") tag = "Defect"
  }
  return tag
}
