/**
 * One process of the load benchmark (`scripts/bench/load.ts` forks it with the `tsx` loader), so that each server's
 * CPU time is its own:
 *
 * - `simulators`: the twelve feature services, told each scenario's settings over IPC;
 * - `fanout`: the analytics application as deployed (effect-fanout), except `FEATURE_RETRIES=0` and
 *   `MAX_EVENT_LOOP_DELAY=60000`; the rest of its settings from the environment (`--choices` sets some);
 * - `effect-all`: the same application with its `Usage` written with `Effect.all` (./effectAllUsage.ts), passed to
 *   `Server.serveWith`;
 * - `node`: the endpoint on plain `node:http` and Promises (./nodeApi.ts).
 *
 * Protocol (IPC messages): the process sends `{ type: "ready", url }` (simulators: `urls`) once listening, answers
 * `{ type: "usage" }` with its CPU time (`process.cpuUsage()`, user + system) and memory, and
 * `{ type: "scenario", overrides }` (simulators) with `{ type: "ok" }`. It exits when the parent disconnects or
 * dies (the IPC channel closes either way), so no server outlives the benchmark.
 *
 * @since 1.0.0
 */
import { NodeRuntime } from "@effect/platform-node"
import { ConfigProvider, Effect, Layer, References } from "effect"
import type { Feature } from "../../../examples/analytics/Features.js"
import * as Embedded from "../../../examples/analytics/harness/Embedded.js"
import * as Simulator from "../../../examples/analytics/harness/Simulator.js"
import * as Metrics from "../../../examples/analytics/Metrics.js"
import * as Server from "../../../examples/analytics/Server.js"
import * as Tracing from "../../../examples/analytics/Tracing.js"
import * as EffectAllUsage from "./effectAllUsage.js"
import * as NodeApi from "./nodeApi.js"

/** @since 1.0.0 */
export type Kind = "simulators" | "fanout" | "effect-all" | "node"

/** @since 1.0.0 */
export type Message =
  | { readonly type: "ready"; readonly url?: string; readonly urls?: { readonly [F in Feature]: string } }
  | { readonly type: "usage"; readonly cpuMicros: number; readonly rss: number }
  | { readonly type: "ok" }

/** @since 1.0.0 */
export type Command =
  | { readonly type: "usage" }
  | { readonly type: "scenario"; readonly overrides: Simulator.Overrides }

/** Healthy, fast feature services: the latency of a service on the same rack (5–10 ms), no faults. */
const simulatorConfig: Simulator.SimulatorConfig = {
  seed: 7,
  defaults: { latencyMs: 5, jitterMs: 5, errorRate: 0, malformedRate: 0, hangRate: 0, crash: false },
  features: {}
}

const send = (message: Message) => process.send!(message)

const usage = (): Message => {
  const cpu = process.cpuUsage()
  return { type: "usage", cpuMicros: cpu.user + cpu.system, rss: process.memoryUsage().rss }
}

const kinds: ReadonlyArray<string> = ["simulators", "fanout", "effect-all", "node"] satisfies ReadonlyArray<Kind>
const kind = process.argv[2] as Kind
if (!kinds.includes(kind) || process.send === undefined) {
  console.error(`target: forked by load.ts with one of ${kinds.join(", ")}, got ${JSON.stringify(kind)}`)
  process.exit(2)
}
if (kind !== "simulators" && process.env.FEATURE_URLS === undefined) {
  console.error(`target: ${kind} needs FEATURE_URLS, the simulators' URLs as JSON`)
  process.exit(2)
}
const urls = process.env.FEATURE_URLS === undefined ? undefined : JSON.parse(process.env.FEATURE_URLS)

// process.exit (not a signal) so that a `--cpu-prof` profile is written.
process.on("disconnect", () => process.exit(0))

if (kind === "simulators") {
  const simulators = await Simulator.start(simulatorConfig)
  process.on("message", (command: Command) => {
    if (command.type === "scenario") {
      simulators.scenario(command.overrides)
      send({ type: "ok" })
    } else send(usage())
  })
  send({ type: "ready", urls: simulators.urls })
} else if (kind === "node") {
  const server = NodeApi.make(urls)
  server.listen(0, "127.0.0.1", () => {
    const address = server.address() as { port: number }
    send({ type: "ready", url: `http://127.0.0.1:${address.port}` })
  })
  process.on("message", () => send(usage()))
} else {
  process.on("message", () => send(usage()))
  const listen = { port: 0, host: "127.0.0.1" }
  const served = kind === "effect-all" ?
    Server.serveWith(listen, Server.FeaturesLive, EffectAllUsage.layer) :
    Server.serveWith(listen, Server.FeaturesLive)
  // `BENCH_SPANS` (load.ts --choices): `off` makes no spans at all; `otlp` exports them to `BENCH_OTLP_ENDPOINT`.
  const spans = process.env.BENCH_SPANS
  const tracing = spans === "otlp" ? Tracing.layerOtlp(process.env.BENCH_OTLP_ENDPOINT!) : Layer.empty
  // `BENCH_METRICS=otlp` (load.ts --choices): the metrics, attempt metrics on, exported every second.
  const metrics = process.env.BENCH_METRICS === "otlp"
    ? Metrics.layerOtlp(process.env.BENCH_OTLP_ENDPOINT!, { intervalMillis: 1000 })
    : Layer.empty
  Effect.gen(function*() {
    send({ type: "ready", url: yield* Embedded.apiUrl })
    return yield* Effect.never
  }).pipe(
    Effect.provide(served),
    Effect.provide(tracing),
    Effect.provide(metrics),
    spans === "off" ? Effect.provideService(References.TracerEnabled, false) : (effect) => effect,
    // Capacity, not shedding: saturated, the event loop's delay passes the default bound (100 ms), and the app would
    // answer part of the load 503 busy (cheap answers that are not the endpoint's work).
    Effect.provide(ConfigProvider.layer(Embedded.configFor({ urls }, {
      FEATURE_RETRIES: "0",
      MAX_EVENT_LOOP_DELAY: process.env.MAX_EVENT_LOOP_DELAY ?? "60000"
    }))),
    NodeRuntime.runMain
  )
}
