/**
 * Wiring: spec → handlers → `Usage` → twelve feature clients → `HttpClient`, served by `NodeHttpServer`.
 * Read bottom-up from `layer`.
 */
import { NodeHttpServer } from "@effect/platform-node"
import type { Config } from "effect"
import { Effect, Layer } from "effect"
import { HttpRouter, HttpServer } from "effect/http"
import { HttpApiBuilder } from "effect/http-api"
import { AnalyticsApi } from "./Api.js"
import * as FeatureClient from "./FeatureClient.js"
import * as Http from "./Http.js"
import * as Listen from "./Listen.js"
import { Usage } from "./Usage.js"

/** The twelve feature clients over one keep-alive `HttpClient`. */
export const FeaturesLive = FeatureClient.layerAll.pipe(Layer.provide(FeatureClient.layerHttpClient))

/**
 * The API with its handlers, its 404 and its crash log over a given `Usage` (the load benchmark serves another
 * implementation of it, to compare), still needing what that `Usage` needs.
 */
export const apiWith = <E, R>(usage: Layer.Layer<Usage, E, R>) =>
  Layer.mergeAll(HttpApiBuilder.layer(AnalyticsApi).pipe(Layer.provide(Http.HandlersLive)), Http.RouterLive).pipe(
    Layer.provide(usage)
  )

/**
 * Serves the API on `listen` with the given feature clients (and `Usage`, the application's own by default); the
 * `HttpServer` is kept in the output for its address.
 *
 * The feature clients are provided outside the server, so they are built before it and released after it: on
 * shutdown the server stops accepting and waits for the requests in flight, whose downstream calls still have their
 * connection pool, and only then is the pool closed. The other way round, closing the app would cut every downstream
 * call in flight while the server drains.
 */
export const serveWith = <E, R>(
  listen: Listen.Listen,
  features: Layer.Layer<FeatureClient.Clients, E, R>,
  usage: Layer.Layer<Usage, Config.ConfigError, FeatureClient.Clients> = Usage.layer
) =>
  HttpRouter.serve(apiWith(usage), { disableLogger: true, disableListenLog: true }).pipe(
    Layer.provideMerge(Layer.unwrap(Effect.gen(function*() {
      const connections = yield* Listen.connectionsConfig
      return NodeHttpServer.layer(() => Listen.nodeServer(connections), listen)
    }))),
    Layer.provide(features)
  )

/** The application as deployed: real feature clients, listening on `listen`. */
export const layer = (listen: Listen.Listen) => serveWith(listen, FeaturesLive)

/** The application listening on `Listen.listenConfig`, for running against real feature services; logs its address. */
export const layerConfig = Layer.unwrap(
  Effect.map(Listen.listenConfig, (listen) => layer(listen).pipe(HttpServer.withLogAddress))
)
