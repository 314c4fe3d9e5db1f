/**
 * The analytics API spec. Handlers live in `Http.ts`; this file is the contract a client can derive from.
 */
import { Effect, Schema, SchemaTransformation } from "effect"
import { HttpApi, HttpApiEndpoint, HttpApiGroup, HttpApiMiddleware } from "effect/http-api"
import { CustomerId, Mode, PublicReason, UsageResponse } from "./Domain.js"
import { Feature } from "./Features.js"

/**
 * 502: a feature the request needed has failed (any feature in strict mode, a required one in partial mode), after
 * `attempts` calls.
 */
export class FeatureFailed extends Schema.TaggedError<FeatureFailed>()(
  "FeatureFailed",
  { feature: Feature, reason: PublicReason, attempts: Schema.Number, message: Schema.String },
  { httpApiStatus: 502 }
) {}

/** 504: the request's deadline passed before every needed feature answered. */
export class DeadlineExceeded extends Schema.TaggedError<DeadlineExceeded>()(
  "DeadlineExceeded",
  { deadlineMs: Schema.Number, pending: Schema.Array(Feature), message: Schema.String },
  { httpApiStatus: 504 }
) {}

/**
 * 503: the server runs as many fan-outs as it takes, or this request could not start in time to meet its deadline
 * (see `Admission.ts`): nothing was called. Sent at once, with a `Retry-After` of `retryAfterSeconds`.
 * - `busy`: the queue of requests waiting for a turn is full.
 * - `connection`: this connection has as many requests in flight as one connection may.
 * - `deadline`: the wait for a turn would be (or was) more than half the deadline.
 */
export class Overloaded extends Schema.TaggedError<Overloaded>()(
  "Overloaded",
  {
    reason: Schema.Literals(["busy", "connection", "deadline"]),
    retryAfterSeconds: Schema.Number,
    message: Schema.String
  },
  { httpApiStatus: 503 }
) {}

/** One thing wrong with a request: a value its parameter does not take, or a parameter the endpoint does not take. */
export const InputIssue = Schema.Struct({
  _tag: Schema.Literals(["Invalid", "Unexpected"]),
  /** The parameter: `["mode"]`, `["id"]`, `["foo"]`. */
  path: Schema.Array(Schema.Union([Schema.String, Schema.Number])),
  message: Schema.String
})

/**
 * 400: bad input (an id that does not match `CustomerId`, an unknown `mode`, a `deadlineMs` out of range or not in
 * decimal digits, a query parameter the endpoint does not take), one issue per bad parameter. Its tag is the one
 * `HttpApi` gave this answer on the Effect 3 line.
 */
export class HttpApiDecodeError extends Schema.TaggedError<HttpApiDecodeError>()(
  "HttpApiDecodeError",
  { issues: Schema.Array(InputIssue), message: Schema.String },
  { httpApiStatus: 400 }
) {}

/**
 * 404: no endpoint answers this method and path (the router has no 405: a known path with another method is a 404
 * too). Answered with a JSON body with a `_tag` and a `message`, like the 400, 502 and 504, rather than the router's
 * empty 404 (see `Http.ts`).
 */
export class NotFound extends Schema.TaggedError<NotFound>()(
  "NotFound",
  { message: Schema.String },
  { httpApiStatus: 404 }
) {}

/**
 * Turns a request that does not decode into a `HttpApiDecodeError` (Effect 4's `HttpApi` answers an empty 400 by
 * itself). Its layer is in `Http.ts`.
 */
export class InputChecks extends HttpApiMiddleware.Service<InputChecks>()("analytics/InputChecks", {
  error: HttpApiDecodeError
}) {}

export const minDeadlineMs = 10
export const maxDeadlineMs = 10_000
export const defaultDeadlineMs = 1_500

/**
 * A number as a query string writes it: decimal digits and nothing else. `Number`, which `NumberFromString` uses,
 * would also read `0x20`, `1e3`, `+50` and ` 50`.
 */
const DecimalNumber = Schema.String.check(Schema.isPattern(/^\d+$/)).pipe(
  Schema.decodeTo(Schema.Number, SchemaTransformation.numberFromString)
)

/** What each input of `GET /customers/:id/usage` takes, as its 400 says when it is given something else. */
export const takes = {
  id: "a customer id such as c-1042",
  mode: `"partial" or "strict"`,
  deadlineMs: `an integer between ${minDeadlineMs} and ${maxDeadlineMs}`
} as const

/** The query string of `GET /customers/:id/usage`: a parameter left out takes its default. */
export const UsageQuery = Schema.Struct({
  mode: Mode.pipe(Schema.withDecodingDefaultTypeKey(Effect.succeed<Mode>("partial"))),
  deadlineMs: DecimalNumber.check(Schema.isInt(), Schema.isBetween({ minimum: minDeadlineMs, maximum: maxDeadlineMs }))
    .pipe(Schema.withDecodingDefaultTypeKey(Effect.succeed(defaultDeadlineMs)))
})

export class UsageGroup extends HttpApiGroup.make("usage")
  .add(
    HttpApiEndpoint.get("usage", "/customers/:id/usage", {
      params: { id: CustomerId },
      query: UsageQuery,
      success: UsageResponse,
      error: [FeatureFailed, DeadlineExceeded, Overloaded, HttpApiDecodeError]
    })
      /**
       * Any parameter other than `mode` and `deadlineMs` is a 400 naming it (`onExcessProperty: "error"`): dropped,
       * `MODE=strict` or `mode[]=strict` would run the request in the default mode, as if it had been asked for.
       * `errors: "all"` reports every bad parameter, not only the first.
       */
      .annotate(HttpApi.QueryParseOptions, { onExcessProperty: "error", errors: "all" }),
    HttpApiEndpoint.get("health", "/health", { success: Schema.Struct({ status: Schema.Literal("ok") }) })
  )
  .middleware(InputChecks)
{}

export class AnalyticsApi extends HttpApi.make("analytics").add(UsageGroup) {}
