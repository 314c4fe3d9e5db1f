/**
 * The analytics API's handlers: decoding and encoding are done by `HttpApi` from the spec in `Api.ts`, so a
 * handler only turns a request into a call of the `Usage` service.
 */
import { HttpApiBuilder } from "@effect/platform"
import { Duration, Effect } from "effect"
import { AnalyticsApi } from "./Api.js"
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
