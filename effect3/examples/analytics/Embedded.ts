/**
 * The whole system in one process: the twelve simulators, and the analytics API configured to call them. This is
 * what `npm run demo`, `npm run serve` and the end-to-end tests run; in production only the configuration differs
 * (`<FEATURE>_URL` pointing at the real services, see `features/FeatureClient.ts`).
 */
import { HttpServer } from "@effect/platform"
import { ConfigProvider, Effect, Layer } from "effect"
import { features } from "./Domain.js"
import { configPrefix } from "./features/FeatureClient.js"
import * as Server from "./Server.js"
import type { Simulators } from "./Simulator.js"
import * as Simulator from "./Simulator.js"

/** The configuration that points every feature client at its simulator. */
export const configFor = (
  simulators: Pick<Simulators, "urls">,
  extra: Record<string, string> = {}
): ConfigProvider.ConfigProvider =>
  ConfigProvider.fromMap(
    new Map([
      ...features.map((feature) => [`${configPrefix(feature)}_URL`, simulators.urls[feature]] as const),
      ...Object.entries(extra)
    ])
  ).pipe(ConfigProvider.orElse(() => ConfigProvider.fromEnv()))

/**
 * Simulators plus the API on `listen` (port 0 picks a free port). Both are closed when the Layer's scope ends:
 * the API first, then the simulators with every connection still open to them.
 */
export const layer = (options: {
  readonly listen: { readonly port: number; readonly host: string }
  readonly simulators?: Simulator.SimulatorConfig | undefined
  /** Extra configuration for the API, such as `REQUIRED_FEATURES`. */
  readonly config?: Record<string, string> | undefined
}) =>
  Layer.unwrapEffect(
    Effect.map(
      Simulator.SimulatorsService,
      (simulators) =>
        Server.layer(options.listen).pipe(Layer.provide(Layer.setConfigProvider(configFor(simulators, options.config))))
    )
  ).pipe(Layer.provideMerge(Simulator.layer(options.simulators)))

/** The base URL the API listens on, such as `http://127.0.0.1:40211`. */
export const apiUrl: Effect.Effect<string, never, HttpServer.HttpServer> = Effect.map(
  HttpServer.HttpServer,
  (server) =>
    server.address._tag === "TcpAddress" ?
      `http://${server.address.hostname}:${server.address.port}` :
      `unix:${server.address.path}`
)
