/**
 * The whole system in one process: the twelve simulators, and the analytics API configured to call them. This is
 * what `npm run demo`, `npm run serve` and the end-to-end tests run; in production only the configuration differs
 * (`<FEATURE>_URL` pointing at the real services, see `FeatureClient.ts`).
 */
import { ConfigProvider, Effect, Layer } from "effect"
import { HttpServer } from "effect/http"
import { configPrefix, features } from "../Features.js"
import type { Listen } from "../Listen.js"
import * as Server from "../Server.js"
import type { Simulators } from "./Simulator.js"
import * as Simulator from "./Simulator.js"

/** The configuration that points every feature client at its simulator, then `extra`, then the environment. */
export const configFor = (
  simulators: Pick<Simulators, "urls">,
  extra: Record<string, string> = {}
): ConfigProvider.ConfigProvider =>
  ConfigProvider.fromEnv({
    env: {
      ...Object.fromEntries(features.map((feature) => [`${configPrefix(feature)}_URL`, simulators.urls[feature]])),
      ...extra
    },
    preserveEmptyStrings: true
  }).pipe(ConfigProvider.orElse(ConfigProvider.fromEnv({ preserveEmptyStrings: true })))

/**
 * Simulators plus the API on `listen` (port 0 picks a free port). Both are closed when the Layer's scope ends:
 * the API first, then the simulators with every connection still open to them.
 */
export const layer = (options: {
  readonly listen: Listen
  readonly simulators?: Simulator.SimulatorConfig | undefined
  /** Extra configuration for the API, such as `REQUIRED_FEATURES`. */
  readonly config?: Record<string, string> | undefined
}) =>
  Layer.unwrap(
    Effect.map(
      Simulator.SimulatorsService,
      (simulators) =>
        Server.layer(options.listen).pipe(Layer.provide(ConfigProvider.layer(configFor(simulators, options.config))))
    )
  ).pipe(Layer.provideMerge(Simulator.layer(options.simulators)))

/** The base URL the API listens on, such as `http://127.0.0.1:40211`. */
export const apiUrl: Effect.Effect<string, never, HttpServer.HttpServer> = HttpServer.addressFormattedWith(
  Effect.succeed
)
