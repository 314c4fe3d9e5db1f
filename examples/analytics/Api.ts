/**
 * The analytics API spec. Handlers live in `Http.ts`; this file is the contract a client can derive from.
 */
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiSchema } from "@effect/platform"
import { Schema } from "effect"
import { CustomerId, Feature, Mode, PublicReason, UsageResponse } from "./Domain.js"

/**
 * 502: a feature the request needed has failed (any feature in strict mode, a required one in partial mode), after
 * `attempts` calls.
 */
export class FeatureFailed extends Schema.TaggedError<FeatureFailed>()(
  "FeatureFailed",
  { feature: Feature, reason: PublicReason, attempts: Schema.Number, message: Schema.String },
  HttpApiSchema.annotations({ status: 502 })
) {}

/** 504: the request's deadline passed before every needed feature answered. */
export class DeadlineExceeded extends Schema.TaggedError<DeadlineExceeded>()(
  "DeadlineExceeded",
  { deadlineMs: Schema.Number, pending: Schema.Array(Feature), message: Schema.String },
  HttpApiSchema.annotations({ status: 504 })
) {}

export const minDeadlineMs = 10
export const maxDeadlineMs = 10_000
export const defaultDeadlineMs = 1_500

export const UsageParams = Schema.Struct({
  mode: Schema.optionalWith(Mode, { default: () => "partial" as const }),
  deadlineMs: Schema.optionalWith(
    Schema.NumberFromString.pipe(Schema.int(), Schema.between(minDeadlineMs, maxDeadlineMs)),
    { default: () => defaultDeadlineMs }
  )
})

export class UsageGroup extends HttpApiGroup.make("usage")
  .add(
    HttpApiEndpoint.get("usage")`/customers/${HttpApiSchema.param("id", CustomerId)}/usage`
      .setUrlParams(UsageParams)
      .addSuccess(UsageResponse)
      .addError(FeatureFailed)
      .addError(DeadlineExceeded)
  )
  .add(
    HttpApiEndpoint.get("health")`/health`.addSuccess(Schema.Struct({ status: Schema.Literal("ok") }))
  )
{}

/**
 * Bad input (an id that does not match `CustomerId`, an unknown `mode`, a `deadlineMs` out of range) is answered
 * by `HttpApi` itself with 400 and its `HttpApiDecodeError` schema, which every `HttpApi.make` declares.
 */
export class AnalyticsApi extends HttpApi.make("analytics").add(UsageGroup) {}
