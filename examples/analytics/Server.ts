/**
 * Wiring: spec → handlers → `Usage` → twelve feature clients → `HttpClient`, served by `NodeHttpServer`.
 * Read bottom-up from `layer`.
 */
import { HttpApiBuilder, HttpMiddleware, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Config, Effect, Layer } from "effect"
import { createServer } from "node:http"
import { AnalyticsApi } from "./Api.js"
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
import { UsageGroupLive } from "./Http.js"
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

/** The API with its handlers, still needing the twelve feature clients (tests provide doubles here). */
export const ApiLive = HttpApiBuilder.api(AnalyticsApi).pipe(
  Layer.provide(UsageGroupLive),
  Layer.provide(Usage.Default)
)

/**
 * A defect in a handler becomes a 500 with an empty body; its cause (with the stack) is logged here, so the
 * details stay on the server.
 */
const logDefects = HttpMiddleware.make((app) =>
  Effect.tapDefect(app, (cause) => Effect.logError("request crashed", cause))
)

/** Serves the API on `listen` with the given feature clients; the `HttpServer` is kept in the output for its address. */
export const serveWith = <E, R>(
  listen: { readonly port: number; readonly host: string },
  features: Layer.Layer<Layer.Layer.Success<typeof FeaturesLive>, E, R>
) =>
  HttpApiBuilder.serve(logDefects).pipe(
    Layer.provide(ApiLive),
    Layer.provide(features),
    Layer.provideMerge(NodeHttpServer.layer(createServer, listen))
  )

/** The application as deployed: real feature clients, listening on `listen`. */
export const layer = (listen: { readonly port: number; readonly host: string }) => serveWith(listen, FeaturesLive)

/** `PORT` (default 3000) and `HOST` (default 127.0.0.1), for running against real feature services. */
export const layerConfig = Layer.unwrapEffect(
  Effect.map(
    Config.all({
      port: Config.port("PORT").pipe(Config.withDefault(3000)),
      host: Config.string("HOST").pipe(Config.withDefault("127.0.0.1"))
    }),
    (listen) => layer(listen).pipe(HttpServer.withLogAddress)
  )
)
