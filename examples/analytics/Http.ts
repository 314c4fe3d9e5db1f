/**
 * The analytics API over HTTP: the handlers (decoding and encoding are done by `HttpApi` from the spec in `Api.ts`, so
 * a handler only turns a request into a call of the `Usage` service), and what answers when no handler does — a
 * request that does not decode (400), a method and path no endpoint has (404), a crash (500, logged).
 */
import { Cause, Duration, Effect, Layer, Schema, SchemaIssue } from "effect"
import { HttpRouter, HttpServerError, HttpServerRequest, HttpServerRespondable, HttpServerResponse } from "effect/http"
import { HttpApiBuilder, HttpApiMiddleware } from "effect/http-api"
import { Admission, retryAfterSeconds } from "./Admission.js"
import type { InputIssue } from "./Api.js"
import { AnalyticsApi, HttpApiDecodeError, InputChecks, NotFound, takes, UsageQuery } from "./Api.js"
import * as LogLimit from "./LogLimit.js"
import * as Tracing from "./Tracing.js"
import { Usage } from "./Usage.js"

export const UsageGroupLive = HttpApiBuilder.group(AnalyticsApi, "usage", (handlers) =>
  Effect.gen(function*() {
    const usage = yield* Usage
    const admission = yield* Admission
    return handlers
      .handle("usage", ({ params: { id }, query: { deadlineMs, mode } }) =>
        Effect.gen(function*() {
          const request = yield* HttpServerRequest.HttpServerRequest
          yield* refuseHiddenParameters(request.url)
          return yield* admission.admit(
            connectionOf(request),
            Duration.millis(deadlineMs),
            (deadline) => usage.forCustomer(id, { mode, deadline })
          )
        }).pipe(Tracing.spansIfSampled))
      .handle("health", () => Effect.succeed({ status: "ok" as const }))
  }))

/** The client connection a request came on (its socket), for the per-connection bound; the request itself if none. */
const connectionOf = (request: HttpServerRequest.HttpServerRequest): object => {
  const source: unknown = request.source
  const socket: unknown = typeof source === "object" && source !== null && "socket" in source ?
    source.socket :
    undefined
  return typeof socket === "object" && socket !== null ? socket : request
}

/**
 * Query parameters the schema never sees: `__proto__=1` sets the prototype of the parsed query object instead of a
 * key, so `onExcessProperty: "error"` cannot report it. The raw query is checked for them here.
 */
const refuseHiddenParameters = (url: string) =>
  Effect.suspend(() => {
    const query = url.indexOf("?")
    if (query === -1) return Effect.void
    const names = [...new Set(new URLSearchParams(url.slice(query + 1)).keys())].filter((name) =>
      !Object.hasOwn(UsageQuery.fields, name)
    )
    return names.length === 0 ? Effect.void : Effect.fail(decodeError(names.map(unexpected)))
  })

const formatIssues = SchemaIssue.makeFormatterStandardSchemaV1()
const formatIssue = SchemaIssue.makeFormatterDefault()

/** At most `max` characters of `text`, with `…` when there were more. */
export const excerpt = (text: string, max: number): string => text.length <= max ? text : `${text.slice(0, max)}…`

/** `, got "foo"`: the value as it came in the request (its first 64 characters). */
const got = (actual: unknown) => `, got ${excerpt(JSON.stringify(actual) ?? String(actual), 64)}`

/** The parameters the usage endpoint takes, as the 400 lists them when it is given another. */
const known = `is unexpected, expected: ${
  Object.keys(UsageQuery.fields).map((name) => JSON.stringify(name)).join(" | ")
}`

/** How many issues a 400 lists; the message counts the rest. */
export const maxIssues = 10

type Issue = typeof InputIssue.Type

const unexpected = (name: string): Issue => ({ _tag: "Unexpected", path: [excerpt(name, 64)], message: known })

/** A 400 listing the first `maxIssues` issues, its message ending `and N more` when there are more. */
const decodeError = (issues: ReadonlyArray<Issue>) => {
  const listed = issues.slice(0, maxIssues)
  const more = issues.length - listed.length
  return new HttpApiDecodeError({
    issues: listed,
    message: listed.map((issue) => `${JSON.stringify(issue.path)}: ${issue.message}`).join("; ") +
      (more > 0 ? `; and ${more} more` : "")
  })
}

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
      const issues = names.map((name): Issue =>
        Object.hasOwn(takes, name) ?
          {
            _tag: "Invalid",
            path: [name],
            message: `${name} must be ${takes[name as keyof typeof takes]}${got(values[name])}`
          } :
          unexpected(name)
      )
      return yield* decodeError(issues)
    })
)

const encodeNotFound = Schema.encodeUnknownSync(NotFound)

/**
 * What answers when no route does: the router fails with `RouteNotFound` (for an unknown path, and for a known path
 * with another method: the router has no 405), which it would send as a 404 with an empty body. Here it is the API's
 * `NotFound`, encoded like the API's other errors, naming the method and the path's first 64 characters; being
 * answered, it is not a failure of the request.
 */
const notFound = (error: unknown) =>
  HttpServerError.isHttpServerError(error) && error.reason._tag === "RouteNotFound" ?
    Effect.succeed(
      HttpServerResponse.jsonUnsafe(
        encodeNotFound(
          new NotFound({
            message: `${excerpt(error.request.method, 16)} ${
              excerpt(error.request.url.split("?")[0]!, 64)
            } is not an endpoint of this API`
          })
        ),
        { status: 404 }
      )
    ) :
    Effect.fail(error)

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
export const HandlersLive = UsageGroupLive.pipe(Layer.provide([InputChecksLive, Admission.layer]))

/**
 * The edge of every request, before any route:
 * - No route: the 404 (`notFound`).
 * - `HEAD` runs nothing: `HEAD /health` is 200, any other `HEAD` is 405 with `Allow: GET`, both without a body (the
 *   router would answer `HEAD` with the `GET` handler, fan-out included, only to drop the body).
 * - A 503 (`Overloaded`) carries `Retry-After`.
 * - A 4xx is logged (method, status, the path's first 64 characters) once per `LOG_WINDOW` and status, with the
 *   count of those left out: a client sending bad requests in a loop costs a line per window, not one per request.
 */
export const EdgeLive = HttpRouter.middleware(
  Effect.gen(function*() {
    const logLimit = yield* LogLimit.fromConfig
    return (app) =>
      Effect.gen(function*() {
        const request = yield* HttpServerRequest.HttpServerRequest
        const path = request.url.split("?")[0]!
        if (request.method === "HEAD") {
          return path === "/health" ?
            HttpServerResponse.empty({ status: 200 }) :
            HttpServerResponse.empty({ status: 405, headers: { allow: "GET" } })
        }
        const response = yield* Effect.catch(app, notFound)
        if (response.status === 503) {
          return HttpServerResponse.setHeader(response, "retry-after", String(retryAfterSeconds))
        }
        if (response.status >= 400 && response.status < 500) {
          yield* logLimit(`client:${response.status}`, (suppressed) =>
            Effect.logInfo("client error").pipe(
              Effect.annotateLogs({
                status: response.status,
                method: excerpt(request.method, 16),
                path: excerpt(path, 64),
                suppressed
              })
            ))
        }
        return response
      })
  }),
  { global: true }
)

/** What answers for the router, around every route: `HEAD`, the 404, `Retry-After`, the 4xx log, the crash log. */
export const RouterLive = Layer.mergeAll(EdgeLive, LogCrashesLive)
