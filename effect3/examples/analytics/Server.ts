/**
 * Wiring: spec → handlers → `Usage` → twelve feature clients → `HttpClient`, served by `NodeHttpServer`.
 * Read bottom-up from `layer`.
 */
import { HttpApiBuilder, HttpMiddleware, HttpServer, HttpServerRespondable } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import type { ConfigError } from "effect"
import { Cause, Config, Effect, Either, Layer, Option } from "effect"
import { createServer } from "node:http"
import { isIP } from "node:net"
import { AnalyticsApi } from "./Api.js"
import { variable } from "./Environment.js"
import { AlertsLive } from "./features/Alerts.js"
import { CalendarLive } from "./features/Calendar.js"
import { CollectionsLive } from "./features/Collections.js"
import { DocumentsLive } from "./features/Documents.js"
import * as FeatureClient from "./features/FeatureClient.js"
import { ListingsLive } from "./features/Listings.js"
import { MessagesLive } from "./features/Messages.js"
import { OffersLive } from "./features/Offers.js"
import { PaymentsLive } from "./features/Payments.js"
import { ReferralsLive } from "./features/Referrals.js"
import { ReportsLive } from "./features/Reports.js"
import { SavedSearchesLive } from "./features/SavedSearches.js"
import { ToursLive } from "./features/Tours.js"
import { NotFoundLive, UsageGroupLive } from "./Http.js"
import { Usage } from "./Usage.js"

/** The twelve feature clients, each reading its base URL from `Config`, over whichever `HttpClient` is provided. */
export const FeatureClientsLive = Layer.mergeAll(
  ListingsLive,
  SavedSearchesLive,
  ToursLive,
  OffersLive,
  MessagesLive,
  DocumentsLive,
  CollectionsLive,
  AlertsLive,
  ReportsLive,
  CalendarLive,
  PaymentsLive,
  ReferralsLive
)

/** The twelve feature clients over one keep-alive `node:http` client. */
export const FeaturesLive = FeatureClientsLive.pipe(Layer.provide(FeatureClient.layerHttpClient))

/**
 * The API with its handlers and its 404 over a given `Usage` (the load benchmark serves another implementation of
 * it, to compare), still needing what that `Usage` needs.
 */
export const apiWith = <E, R>(usage: Layer.Layer<Usage, E, R>) =>
  HttpApiBuilder.api(AnalyticsApi).pipe(
    Layer.provide(UsageGroupLive),
    Layer.provide(usage),
    Layer.merge(NotFoundLive)
  )

/** The API with its handlers and its 404, still needing the twelve feature clients (tests provide doubles here). */
export const ApiLive = apiWith(Usage.Default)

/**
 * A defect in a handler becomes a 500 with an empty body; its cause (with the stack) is logged here, so the
 * details stay on the server.
 *
 * Not everything in a failed cause is a crash: the platform answers what is `Respondable` (an `HttpServerError` such
 * as a `RequestError` becomes its status; the router's `RouteNotFound` would, but `NotFoundLive` answers it first) and
 * adds the response it sent to the cause as a defect. A request crashed when something in its cause is neither; the
 * responses are left out of the log.
 */
const logDefects = HttpMiddleware.make((app) =>
  Effect.tapErrorCause(app, (cause) => {
    const crashed = [...Cause.failures(cause), ...Cause.defects(cause)].some((error) =>
      !HttpServerRespondable.isRespondable(error)
    )
    if (!crashed) return Effect.void
    const withoutResponses = Cause.stripSomeDefects(
      cause,
      (defect) => HttpServerRespondable.isRespondable(defect) ? Option.some(defect) : Option.none()
    )
    return Effect.logError("request crashed", Option.getOrElse(withoutResponses, () => cause))
  })
)

/**
 * A `node:http` server that, once closing, also closes each keep-alive connection as its last response finishes.
 * `server.close()` (what `NodeHttpServer` calls on shutdown) stops accepting and closes the connections idle at that
 * moment; a connection still answering a request would otherwise stay open after its answer until the client drops
 * it, holding up the shutdown by the client's keep-alive timeout.
 */
const makeServer = () => {
  const server = createServer()
  server.on("request", (_request, response) => {
    response.once("finish", () => {
      if (!server.listening) server.closeIdleConnections()
    })
  })
  return server
}

/**
 * Serves the API on `listen` with the given feature clients (and `Usage`, the application's own by default); the
 * `HttpServer` is kept in the output for its address.
 *
 * The feature clients are provided outside the server, so they are built before it and released after it: on
 * shutdown the server stops accepting and waits for the requests in flight, whose downstream calls still have their
 * keep-alive agent, and only then is the agent destroyed. The other way round, closing the app would cut every
 * downstream call in flight (and retry it on a dead agent) while the server drains.
 */
export const serveWith = <E, R>(
  listen: { readonly port: number; readonly host: string },
  features: Layer.Layer<Layer.Layer.Success<typeof FeaturesLive>, E, R>,
  usage: Layer.Layer<Usage, ConfigError.ConfigError, Layer.Layer.Success<typeof FeaturesLive>> = Usage.Default
) =>
  HttpApiBuilder.serve(logDefects).pipe(
    Layer.provide(apiWith(usage)),
    Layer.provideMerge(NodeHttpServer.layer(makeServer, listen)),
    Layer.provide(features)
  )

/** The application as deployed: real feature clients, listening on `listen`. */
export const layer = (listen: { readonly port: number; readonly host: string }) => serveWith(listen, FeaturesLive)

/** A TCP port written in decimal digits, 0 (any free port) included; `undefined` if `raw` is not one. */
export const parsePort = (raw: string): number | undefined => {
  const port = /^\d{1,5}$/.test(raw) ? Number(raw) : NaN
  return port <= 65535 ? port : undefined
}

/** What `parsePort` takes, as said when it is given something else. */
export const portExpected = "port must be an integer from 0 to 65535"

/** An IP address or a host name (an empty `HOST` would listen on every interface). */
const isHost = (raw: string): boolean =>
  isIP(raw) !== 0 ||
  (raw.length <= 253 && /^[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$/.test(raw))

const hostExpected = "host must be an IP address or a host name, such as 127.0.0.1"

/**
 * Where `layerConfig` listens: `PORT` (default 3000; 0 for any free port, as `--port=0` in embedded mode: the address
 * is logged) and `HOST` (default 127.0.0.1). `Config.port` would refuse 0.
 */
export const listenConfig: Config.Config<{ readonly port: number; readonly host: string }> = Config.all({
  port: variable("PORT", (raw) => Either.fromNullable(parsePort(raw), () => portExpected)).pipe(
    Config.withDefault(3000)
  ),
  host: variable("HOST", (raw) => isHost(raw) ? Either.right(raw) : Either.left(hostExpected)).pipe(
    Config.withDefault("127.0.0.1")
  )
})

/** The application listening on `listenConfig`, for running against real feature services; logs its address. */
export const layerConfig = Layer.unwrapEffect(
  Effect.map(listenConfig, (listen) => layer(listen).pipe(HttpServer.withLogAddress))
)
