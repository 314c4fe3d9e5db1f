/**
 * Fail fast (`all`, `forEach`): the first failure — a typed error, a defect, a task's time-out or the deadline —
 * stops the fan-out, which fails with that task's own cause and, after it, every other genuine failure seen while the
 * rest were being interrupted (never the interruptions the fan-out caused), as Effect 4's `Effect.all` combines them.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Duration from "effect/Duration"
import type * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import { FanOutFailure, FanOutTimeoutError } from "../FanOutError.js"
import type * as Outcome from "../Outcome.js"
import type { Ledger } from "./ledger.js"
import type { Settings } from "./options.js"
import { runPolicy } from "./policy.js"
import { rebuild } from "./shape.js"
import type { Shape } from "./shape.js"

/** What is left of a task's cause once the fan-out's own interruption of it is taken out. */
const genuine = (cause: Cause.Cause<unknown>): ReadonlyArray<Cause.Reason<unknown>> =>
  cause.reasons.filter((reason) => reason._tag !== "Interrupt")

/** @internal */
export const all = (shape: Shape, s: Settings): Effect.Effect<any, any> => {
  const timeoutOf = (index: number) =>
    new FanOutTimeoutError({
      reason: "Timeout",
      key: shape.keys[index],
      label: shape.labels[index],
      duration: Duration.millis(s.timeout!)
    })
  // The deadline the fan-out ran under: under an enclosing one, nearer than its own, the one it adopted.
  const deadlineError = (deadline: number) =>
    new FanOutTimeoutError({
      reason: "Deadline",
      key: undefined,
      label: undefined,
      duration: Duration.millis(deadline)
    })
  return runPolicy("all", shape, s, { detach: s.detach, discard: s.discard }, (ledger, deadline) => {
    let first: Cause.Cause<unknown> | undefined = undefined
    let rest: Array<Cause.Reason<unknown>> | undefined = undefined
    return {
      onExit(index, exit, limit) {
        if (exit._tag === "Success") return false
        first = limit === "Timeout" ? Cause.fail(timeoutOf(index)) : exit.cause
        return true
      },
      onLateExit(_, exit) {
        if (exit._tag === "Failure") {
          const reasons = genuine(exit.cause)
          if (reasons.length > 0) (rest ??= []).push(...reasons)
        }
      },
      onDeadline() {
        first = Cause.fail(deadlineError(deadline!))
      },
      result() {
        if (first === undefined) {
          if (s.discard) return Exit.void
          return Exit.succeed(rebuild(shape, s.outcomes ? ledger.outcomes() : ledger.values()))
        }
        if (s.report) return Exit.fail(failureReport(ledger, ledger.stoppedBy, true))
        return Exit.failCause(rest === undefined ? first : Cause.combine(first, Cause.fromReasons(rest)))
      }
    }
  })
}

/**
 * The `FanOutFailure` of a stopped fan-out: the task at `culprit` first (-1: the deadline itself), then every other
 * genuine failure in the order the tasks ended.
 *
 * @internal
 */
export const failureReport = (ledger: Ledger, culprit: number, failFast: boolean): FanOutFailure<unknown> => {
  let outcomes = ledger.outcomes()
  // Fail fast: tasks the fan-out interrupted at its deadline are Interrupted in the report, since the deadline is the
  // fan-out's one failure. Settle with `required` keeps them TimedOut, as its outcomes are everywhere else: each one
  // is a panel that did not come.
  if (failFast && ledger.stop === "Deadline") {
    outcomes = outcomes.map((o, i) =>
      i !== culprit && o._tag === "TimedOut" && o.reason === "Deadline"
        ? {
          _tag: "Interrupted",
          key: o.key,
          label: o.label,
          durationMillis: o.durationMillis,
          attempts: o.attempts,
          cancelReason: { _tag: "Deadline" }
        }
        : o
    )
  }
  const failures = outcomes
    .map((o, i) => ({ o, i }))
    .filter(({ i, o }) => o._tag !== "Success" && (o._tag !== "Interrupted" || i === culprit))
    .sort((a, b) => a.i === culprit ? -1 : b.i === culprit ? 1 : ledger.ended[a.i]! - ledger.ended[b.i]!)
    .map(({ o }) => o as Outcome.NotSuccess<unknown>)
  if (culprit < 0) {
    return new FanOutFailure({
      reason: "Deadline",
      key: undefined,
      label: undefined,
      error: undefined,
      failures,
      outcomes
    })
  }
  const first = outcomes[culprit]!
  const reason = first._tag === "Failure"
    ? "Failure"
    : first._tag === "Defect"
    ? "Defect"
    : first._tag === "TimedOut"
    ? (first.reason === "Deadline" ? "Deadline" : "Timeout")
    : "Interrupted"
  return new FanOutFailure({
    reason,
    key: first.key,
    label: first.label,
    error: first._tag === "Failure" ? first.error : undefined,
    failures,
    outcomes
  })
}
