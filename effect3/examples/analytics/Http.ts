/**
 * The analytics API's handlers: decoding and encoding are done by `HttpApi` from the spec in `Api.ts`, so a
 * handler only turns a request into a call of the `Usage` service.
 */
import type { HttpApp, HttpServerError } from "@effect/platform"
import { HttpApiBuilder } from "@effect/platform"
import { Duration, Effect } from "effect"
import { AnalyticsApi, NotFound } from "./Api.js"
import { Usage } from "./Usage.js"

export const UsageGroupLive = HttpApiBuilder.group(AnalyticsApi, "usage", (handlers) =>
  Effect.gen(function*() {
    const usage = yield* Usage
    return handlers
      .handle("usage", ({ path: { id }, urlParams: { deadlineMs, mode } }) =>
        usage.forCustomer(id, { mode, deadline: Duration.millis(deadlineMs) }))
      .handle("health", () =>
        Effect.succeed({ status: "ok" as const }))
  }))

/**
 * What answers when no handler does: the router fails with `RouteNotFound` (for an unknown path, and for a known path
 * with another method: the platform has no 405), which it would send as a 404 with an empty body. As the API's
 * `NotFound` it is encoded like the API's other errors, and, being answered, is not a failure of the request.
 *
 * `HttpApp.Default`, the type a middleware is given, leaves the router's error out; the cast puts it back.
 */
export const NotFoundLive = HttpApiBuilder.middleware(
  AnalyticsApi,
  (app) =>
    Effect.catchTag(
      app as HttpApp.Default<HttpServerError.RouteNotFound>,
      "RouteNotFound",
      ({ request }) =>
        Effect.fail(
          new NotFound({ message: `${request.method} ${request.url.split("?")[0]} is not an endpoint of this API` })
        )
    )
)
