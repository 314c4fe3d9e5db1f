/**
 * Why a fan-out interrupted a task, read from the interruption itself, in one of two ways:
 *
 * - **A stop** (a sibling failed, a required task failed, a quorum was reached, the deadline, the caller): every task
 *   still running is interrupted by the fiber that runs the fan-out (the `fiberId` of the `Interrupt` in each task's
 *   cause). The reason is told once, here, under that fiber's id, and held until the fan-out answers — by then every
 *   task it interrupted has ended, its finalizers done. A fiber runs one fan-out at a time (the fan-out suspends it),
 *   so the id names one stop. Nothing is made per task: annotating each interruption instead (`interruptUnsafe(id,
 *   annotations)`) makes Effect copy every task's interrupt cause, which cost a stop about a third more (see
 *   docs/BENCHMARKS.md).
 * - **One task's interruption** (its own timeout, a hedge lost) and a detached fan-out's stop (its tasks outlive its
 *   answer): the interruption carries the reason as an annotation of its cause.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Option from "effect/Option"
import type * as Cancellation from "../Cancellation.js"

/** @internal */
export const CancelReasonKey = Context.Service<"effect-fanout/CancelReason", Cancellation.CancelReason>(
  "effect-fanout/CancelReason"
)

/** @internal */
export const annotations = (reason: Cancellation.CancelReason): Context.Context<never> =>
  Context.make(CancelReasonKey, reason) as Context.Context<never>

/** @internal */
export const deadlineReason: Cancellation.CancelReason = { _tag: "Deadline" }
/** @internal */
export const callerReason: Cancellation.CancelReason = { _tag: "Caller" }
/** @internal */
export const quorumReached: Cancellation.CancelReason = { _tag: "QuorumReached" }
/** @internal */
export const timeout: Context.Context<never> = annotations({ _tag: "Timeout" })
/** @internal */
export const hedgeLost: Context.Context<never> = annotations({ _tag: "HedgeLost" })

/**
 * Why each fan-out now stopping stopped, by the id of the fiber that runs it. This copy of the library's own: fiber
 * ids are counted by each copy of `effect`, so a table shared by copies could mistake one fan-out for another.
 */
const stopping = new Map<number, Cancellation.CancelReason>()

/** The fan-out run by fiber `interruptor` stops for `reason`: its tasks' interruptions by that fiber read as it. @internal */
export const stopped = (interruptor: number, reason: Cancellation.CancelReason): void => {
  stopping.set(interruptor, reason)
}

/** The fan-out run by fiber `interruptor` has answered: every task it interrupted has ended. @internal */
export const answered = (interruptor: number): void => {
  stopping.delete(interruptor)
}

/** How many fan-outs are stopping now (for tests: none once every fan-out has answered). @internal */
export const stoppingNow = (): number => stopping.size

/** The reason of the first interruption in `cause` that has one, or undefined. @internal */
export const ofCauseOrUndefined = (cause: Cause.Cause<unknown>): Cancellation.CancelReason | undefined => {
  for (const reason of cause.reasons) {
    if (reason._tag !== "Interrupt") continue
    const found = Context.getOrUndefined(Cause.reasonAnnotations(reason), CancelReasonKey) ??
      (reason.fiberId === undefined ? undefined : stopping.get(reason.fiberId))
    if (found !== undefined) return found
  }
  return undefined
}

/** The reason of `ofCauseOrUndefined`, as an `Option`. @internal */
export const ofCause = (cause: Cause.Cause<unknown>): Option.Option<Cancellation.CancelReason> =>
  Option.fromUndefinedOr(ofCauseOrUndefined(cause))
