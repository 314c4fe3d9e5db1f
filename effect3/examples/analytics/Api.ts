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

/**
 * 404: no endpoint answers this method and path. Declared on the whole API rather than left to the router's empty 404,
 * so that it has a JSON body with a `_tag` and a `message`, like the 400, 502 and 504.
 */
export class NotFound extends Schema.TaggedError<NotFound>()(
  "NotFound",
  { message: Schema.String },
  HttpApiSchema.annotations({ status: 404 })
) {}

export const minDeadlineMs = 10
export const maxDeadlineMs = 10_000
export const defaultDeadlineMs = 1_500

/** `, got "foo"`: the value as it came in the query string. */
const got = (actual: unknown) => `, got ${JSON.stringify(actual)}`

/**
 * A number as a query string writes it: decimal digits and nothing else. `Number` alone, which `NumberFromString`
 * uses, would also read `0x20`, `1e3`, `+50` and ` 50`.
 */
const DecimalNumber = Schema.compose(Schema.String.pipe(Schema.pattern(/^\d+$/)), Schema.NumberFromString)

/**
 * The query string of `GET /customers/:id/usage`. Each parameter carries the message a caller reads in the 400: the
 * schema's own would list every literal it tried one by one. `exact: true` because a query parameter is either absent
 * (the default applies) or a string, never `undefined`, which keeps `undefined` out of the alternatives reported.
 *
 * Any other parameter is a 400 naming it and the known ones (`onExcessProperty: "error"`): dropped, `MODE=strict` or
 * `mode[]=strict` would run the request in the default mode, as if it had been asked for. `HttpApiBuilder` decodes url
 * params without parse options of its own, so the schema carries them; `errors: "all"` reports every bad parameter.
 */
export const UsageParams = Schema.Struct({
  mode: Schema.optionalWith(
    Mode.annotations({
      message: (issue) => ({ message: `mode must be "partial" or "strict"${got(issue.actual)}`, override: true })
    }),
    { exact: true, default: () => "partial" as const }
  ),
  deadlineMs: Schema.optionalWith(
    DecimalNumber.pipe(Schema.int(), Schema.between(minDeadlineMs, maxDeadlineMs)).annotations({
      message: (issue) => ({
        message: `deadlineMs must be an integer between ${minDeadlineMs} and ${maxDeadlineMs}${got(issue.actual)}`,
        override: true
      })
    }),
    { exact: true, default: () => defaultDeadlineMs }
  )
}).annotations({ parseOptions: { onExcessProperty: "error", errors: "all" } })

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
 * Bad input (an id that does not match `CustomerId`, an unknown `mode`, a `deadlineMs` out of range or not in decimal
 * digits, a query parameter the endpoint does not take) is answered by `HttpApi` itself with 400 and its
 * `HttpApiDecodeError` schema, which every `HttpApi.make` declares. A method and path no endpoint answers is a 404
 * `NotFound` (see `NotFoundLive` in `Http.ts`).
 */
export class AnalyticsApi extends HttpApi.make("analytics").add(UsageGroup).addError(NotFound) {}
