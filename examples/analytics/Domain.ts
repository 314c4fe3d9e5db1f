/**
 * The analytics application's domain: what a customer is and what the analytics API answers (what one feature
 * service answers is in `Features.ts`). Everything that crosses a wire is a `Schema`, so both directions are checked.
 */
import { Schema } from "effect"
import { Feature } from "./Features.js"

/** A customer id such as `c-1042`: lower-case letters, digits and dashes after a `c-` prefix. */
export const CustomerId = Schema.String.check(Schema.isPattern(/^c-[a-z0-9-]{1,32}$/)).pipe(
  Schema.brand("CustomerId"),
  Schema.annotate({ identifier: "CustomerId", description: "a customer id such as c-1042" })
)
export type CustomerId = typeof CustomerId.Type

/** `partial` settles every call and answers with what arrived; `strict` fails the request on the first failure. */
export const Mode = Schema.Literals(["partial", "strict"])
export type Mode = typeof Mode.Type

/** Why a panel is missing, in words safe to show to any caller (internal details are logged, not sent). */
export const PublicReason = Schema.Literals([
  "unavailable",
  "bad_response",
  "too_large",
  "timeout",
  "deadline",
  "internal_error",
  "cancelled"
])
export type PublicReason = typeof PublicReason.Type

export const OkPanel = Schema.Struct({
  status: Schema.Literal("ok"),
  feature: Feature,
  durationMs: Schema.Number,
  attempts: Schema.Number,
  usage: Schema.Struct({ count: Schema.Number, lastUsedAt: Schema.NullOr(Schema.String) })
})

export const FailedPanel = Schema.Struct({
  status: Schema.Literal("failed"),
  feature: Feature,
  durationMs: Schema.Number,
  attempts: Schema.Number,
  reason: PublicReason
})

export const TimedOutPanel = Schema.Struct({
  status: Schema.Literal("timed_out"),
  feature: Feature,
  durationMs: Schema.Number,
  attempts: Schema.Number,
  reason: Schema.Literals(["timeout", "deadline"])
})

/**
 * One feature's panel on the usage page; `status` says whether it has data. `durationMs` runs from the first call
 * to the last answer; `attempts` counts the calls made (more than 1 when an unavailable service was retried, 0 when
 * the call never started).
 */
export const Panel = Schema.Union([OkPanel, FailedPanel, TimedOutPanel])
export type Panel = typeof Panel.Type

export class UsageResponse extends Schema.Class<UsageResponse>("UsageResponse")({
  customerId: CustomerId,
  mode: Mode,
  /** `false` when any panel is not `ok`. */
  complete: Schema.Boolean,
  durationMs: Schema.Number,
  panels: Schema.Array(Panel)
}) {}
