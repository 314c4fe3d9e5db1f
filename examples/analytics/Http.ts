/**
 * The analytics API over HTTP: the handlers (decoding and encoding are done by `HttpApi` from the spec in `Api.ts`, so
 * a handler only turns a request into a call of the `Usage` service), and what answers when no handler does — a
 * request that does not decode (400), a method and path no endpoint has (404), a crash (500, logged).
 */
import { Cause, Duration, Effect, Layer, Schema, SchemaIssue } from "effect"
import { HttpRouter, HttpServerError, HttpServerRequest, HttpServerRespondable, HttpServerResponse } from "effect/http"
import { HttpApiBuilder, HttpApiMiddleware } from "effect/http-api"
import { AnalyticsApi, HttpApiDecodeError, InputChecks, NotFound, takes, UsageQuery } from "./Api.js"
import { Usage } from "./Usage.js"

export const UsageGroupLive = HttpApiBuilder.group(AnalyticsApi, "usage", (handlers) =>
  Effect.gen(function*() {
    const usage = yield* Usage
    return handlers
      .handle("usage", ({ params: { id }, query: { deadlineMs, mode } }) =>
        usage.forCustomer(id, { mode, deadline: Duration.millis(deadlineMs) }))
      .handle("health", () =>
        Effect.succeed({ status: "ok" as const }))
  }))

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()
const formatIssue = SchemaIssue.makeFormatterDefault()

/** `, got "foo"`: the value as it came in the request. */
const got = (actual: unknown) => `, got ${JSON.stringify(actual)}`

/** The parameters the usage endpoint takes, as the 400 lists them when it is given another. */
const known = `is unexpected, expected: ${
  Object.keys(UsageQuery.fields).map((name) => JSON.stringify(name)).join(" | ")
}`

/**
 * A request whose path or query does not decode is answered 400 with one issue per bad parameter, saying what it
 * takes and what it was given (`mode must be "partial" or "strict", got "eventually"`) or, for a parameter the
 * endpoint does not take, which ones it does: the schema's own messages would list every literal it tried one by
 * one. A response that does not encode is the application's bug: a defect, answered 500 and logged as a crash.
 */
export const InputChecksLive = HttpApiMiddleware.layerSchemaErrorTransform(
  InputChecks,
  (error) =>
    Effect.gen(function*() {
      if (error.kind !== "Params" && error.kind !== "Query") {
        return yield* Effect.die(new Error(`the response does not encode: ${formatIssue(error.cause.issue)}`))
      }
      const values: Readonly<Record<string, unknown>> = error.kind === "Params"
        ? (yield* HttpRouter.RouteContext).params
        : yield* HttpServerRequest.ParsedSearchParams
      const names = [...new Set(formatIssues(error.cause.issue).issues.map((issue) => String(issue.path?.[0] ?? "")))]
      const issues = names.map((name) =>
        Object.hasOwn(takes, name) ?
          {
            _tag: "Invalid" as const,
            path: [name],
            message: `${name} must be ${takes[name as keyof typeof takes]}${got(values[name])}`
          } :
          { _tag: "Unexpected" as const, path: [name], message: known }
      )
      return yield* new HttpApiDecodeError({
        issues,
        message: issues.map((issue) => `${JSON.stringify(issue.path)}: ${issue.message}`).join("; ")
      })
    })
)

const encodeNotFound = Schema.encodeUnknownSync(NotFound)

/**
 * What answers when no route does: the router fails with `RouteNotFound` (for an unknown path, and for a known path
 * with another method: the router has no 405), which it would send as a 404 with an empty body. Here it is the API's
 * `NotFound`, encoded like the API's other errors; being answered, it is not a failure of the request.
 */
export const NotFoundLive = HttpRouter.middleware(
  (app) =>
    Effect.catch(app, (error) =>
      HttpServerError.isHttpServerError(error) && error.reason._tag === "RouteNotFound" ?
        Effect.succeed(
          HttpServerResponse.jsonUnsafe(
            encodeNotFound(
              new NotFound({
                message: `${error.request.method} ${error.request.url.split("?")[0]} is not an endpoint of this API`
              })
            ),
            { status: 404 }
          )
        ) :
        Effect.fail(error)),
  { global: true }
)

/**
 * A request that crashed (a defect in a handler, a response that does not encode) is answered 500 with an empty body;
 * its cause, with the stack, is logged here, so the details stay on the server. What is `Respondable` (an
 * `HttpServerError` such as a request that cannot be parsed) is answered with its own status and is not a crash; nor
 * is a request interrupted because its client went away.
 */
export const LogCrashesLive = HttpRouter.middleware((app) =>
  Effect.tapCause(app, (cause) => {
    const crashed = cause.reasons.some((reason) =>
      (Cause.isFailReason(reason) && !HttpServerRespondable.isRespondable(reason.error)) ||
      (Cause.isDieReason(reason) && !HttpServerRespondable.isRespondable(reason.defect))
    )
    return crashed ? Effect.logError("request crashed", cause) : Effect.void
  }), { global: true })

/**
 * The handlers with their input checks (middleware reach a handler through the context its group is built in),
 * still needing `Usage`.
 */
export const HandlersLive = UsageGroupLive.pipe(Layer.provide(InputChecksLive))

/** What answers for the router, around every route: the 404 and the crash log. */
export const RouterLive = Layer.mergeAll(NotFoundLive, LogCrashesLive)
