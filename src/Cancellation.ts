/**
 * Why a fan-out interrupted a task, as typed data: the sibling whose failure stopped it, the deadline, the task's own
 * timeout, a quorum reached, a hedge lost, a required task failed, or the fan-out's caller.
 *
 * An `Interrupted` outcome holds it as `cancelReason`, and a task reads it in a finalizer that sees its exit
 * (`Effect.onExit`, `Effect.onError`, `Effect.addFinalizer`) with `Cancellation.ofExit`. It costs nothing per task:
 * when a fan-out stops, its tasks' interruptions name the fiber that runs it, and the fan-out holds why it stopped
 * until it answers, by which time every task it interrupted has ended; an interruption of one task alone (its
 * timeout, a hedge lost) carries the reason as an annotation of its cause. So read the reason as the task ends: an
 * exit kept past its fan-out's answer may no longer say why.
 *
 * @since 1.1.0
 */
import type * as Cause from "effect/Cause"
import type * as Exit from "effect/Exit"
import * as Option from "effect/Option"
import { ofCause as ofCauseInternal } from "./internal/cancel.js"
import type * as Outcome from "./Outcome.js"

/**
 * Why a fan-out interrupted a task.
 *
 * - `SiblingFailed`: fail fast (or a quorum that can no longer be met) — the task `key` (`label`) ended without a
 *   success and stopped the fan-out.
 * - `RequiredFailed`: settle with `required` — the required task `key` (`label`) failed.
 * - `QuorumReached`: quorum / firstSuccess had the successes it needed.
 * - `Deadline`: the fan-out's deadline (or an enclosing one) passed.
 * - `Timeout`: the task's own `timeout` passed.
 * - `HedgeLost`: another attempt of the same hedged task decided it first: it succeeded, or it failed with what
 *   `hedge.nonFatal` does not accept (a fatal failure ends every attempt at once).
 * - `Caller`: the fan-out itself was interrupted (its caller, or a stream ended early).
 *
 * @since 1.1.0
 * @category models
 */
export type CancelReason =
  | { readonly _tag: "SiblingFailed"; readonly key: Outcome.Key; readonly label: string | undefined }
  | { readonly _tag: "RequiredFailed"; readonly key: Outcome.Key; readonly label: string | undefined }
  | { readonly _tag: "QuorumReached" }
  | { readonly _tag: "Deadline" }
  | { readonly _tag: "Timeout" }
  | { readonly _tag: "HedgeLost" }
  | { readonly _tag: "Caller" }

/**
 * The reason a fan-out gave for the first interruption in `cause` that has one; `Option.none()` for a cause with no
 * interruption by a fan-out.
 *
 * @since 1.1.0
 * @category getters
 */
export const ofCause: (cause: Cause.Cause<unknown>) => Option.Option<CancelReason> = ofCauseInternal

/**
 * The reason of `ofCause` for a failed exit; `Option.none()` for a success.
 *
 * **Example**
 *
 * ```ts
 * import { Effect, Option } from "effect"
 * import { Cancellation, FanOut } from "effect-fanout"
 *
 * const task = Effect.never.pipe(
 *   Effect.onExit((exit) =>
 *     Option.match(Cancellation.ofExit(exit), {
 *       onNone: () => Effect.void,
 *       onSome: (reason) => Effect.log(`cancelled: ${reason._tag}`)
 *     })
 *   )
 * )
 * const page = FanOut.all([task, Effect.fail("boom")])
 * ```
 *
 * @since 1.1.0
 * @category getters
 */
export const ofExit = (exit: Exit.Exit<unknown, unknown>): Option.Option<CancelReason> =>
  exit._tag === "Success" ? Option.none() : ofCauseInternal(exit.cause)
