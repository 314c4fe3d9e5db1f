/**
 * Why a fan-out interrupted a task, carried on the interruption itself: the engine interrupts a task's fiber with
 * annotations naming the reason (`Fiber.interruptUnsafe(id, annotations)`), so that the task's interrupted cause, its
 * finalizers' exit and its outcome all say why, and nothing is made per task. The annotations for the reasons that
 * name no task are made once, here; a stop by a task's end makes one per stop.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import * as Context from "effect/Context"
import * as Option from "effect/Option"
import type * as Cancellation from "../Cancellation.js"
import type * as Outcome from "../Outcome.js"

/** @internal */
export const CancelReasonKey = Context.Service<"effect-fanout/CancelReason", Cancellation.CancelReason>(
  "effect-fanout/CancelReason"
)

/** @internal */
export const annotations = (reason: Cancellation.CancelReason): Context.Context<never> =>
  Context.make(CancelReasonKey, reason) as Context.Context<never>

/** @internal */
export const deadline: Context.Context<never> = annotations({ _tag: "Deadline" })
/** @internal */
export const timeout: Context.Context<never> = annotations({ _tag: "Timeout" })
/** @internal */
export const caller: Context.Context<never> = annotations({ _tag: "Caller" })
/** @internal */
export const quorumReached: Context.Context<never> = annotations({ _tag: "QuorumReached" })
/** @internal */
export const hedgeLost: Context.Context<never> = annotations({ _tag: "HedgeLost" })

/** @internal */
export const siblingFailed = (key: Outcome.Key, label: string | undefined): Context.Context<never> =>
  annotations({ _tag: "SiblingFailed", key, label })

/** @internal */
export const requiredFailed = (key: Outcome.Key, label: string | undefined): Context.Context<never> =>
  annotations({ _tag: "RequiredFailed", key, label })

/** The reason of the first interruption in `cause` that carries one. @internal */
export const ofCause = (cause: Cause.Cause<unknown>): Option.Option<Cancellation.CancelReason> => {
  for (const reason of cause.reasons) {
    if (reason._tag !== "Interrupt") continue
    const found = Context.getOption(Cause.reasonAnnotations(reason), CancelReasonKey)
    if (Option.isSome(found)) return found
  }
  return Option.none()
}

/** The reason of `ofCause`, or undefined. @internal */
export const ofCauseOrUndefined = (cause: Cause.Cause<unknown>): Cancellation.CancelReason | undefined => {
  for (const reason of cause.reasons) {
    if (reason._tag !== "Interrupt") continue
    const found = Context.getOrUndefined(Cause.reasonAnnotations(reason), CancelReasonKey)
    if (found !== undefined) return found
  }
  return undefined
}
