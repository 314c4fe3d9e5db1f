/**
 * `npm run serve`: the analytics API and its twelve simulated feature services, kept running until Ctrl-C.
 *
 *   npm run serve -- --port=3000 --config=examples/analytics/simulators.json --payments.errorRate=0.5 --seed=7
 *
 * `--port` (default 3000, 0 for any free port) and `--config` are read here; every other flag is a simulator
 * setting (see `applyFlags` in examples/analytics/Simulator.ts).
 *
 * `npm run serve -- --external` starts no simulators: the clients call the services named by `<FEATURE>_URL`
 * environment variables, and the API listens on `PORT`/`HOST`. Logs are logfmt, one line per entry.
 *
 * Tracing (see examples/analytics/Tracing.ts):
 *   --trace=console   print each span as it ends (name, duration, parent, outcome counts, attempts)
 *   --trace=otlp      export spans over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (default http://127.0.0.1:4318);
 *                     setting OTEL_EXPORTER_OTLP_ENDPOINT alone also turns it on
 *   --trace=off       no export (the default without OTEL_EXPORTER_OTLP_ENDPOINT)
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Logger } from "effect"
import * as Embedded from "../examples/analytics/Embedded.js"
import * as Server from "../examples/analytics/Server.js"
import * as Simulator from "../examples/analytics/Simulator.js"
import * as Tracing from "../examples/analytics/Tracing.js"

const args = process.argv.slice(2)
const external = args.includes("--external")
const option = (name: string) => args.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3)
const port = Number(option("port") ?? process.env.PORT ?? 3000)
const configPath = option("config")
const otlpEndpoint = process.env.OTEL_EXPORTER_OTLP_ENDPOINT
const trace = option("trace") ?? (otlpEndpoint === undefined ? "off" : "otlp")
if (trace !== "console" && trace !== "otlp" && trace !== "off") {
  console.error(`--trace must be console, otlp or off, got ${trace}`)
  process.exit(2)
}
const simulatorFlags = args.filter((arg) =>
  !arg.startsWith("--port=") && !arg.startsWith("--config=") && !arg.startsWith("--trace=") && arg !== "--external"
)
const simulators = Simulator.applyFlags(
  Simulator.loadConfig(configPath ?? Simulator.defaultConfigPath),
  simulatorFlags
)

const main = Effect.gen(function*() {
  const base = yield* Embedded.apiUrl
  const running = yield* Simulator.SimulatorsService
  yield* Effect.log(`analytics API on ${base}`)
  yield* Effect.log(
    `feature services: ${Object.entries(running.urls).map(([name, url]) => `${name}=${url}`).join(" ")}`
  )
  console.log(`\nTry:\n  curl -s '${base}/customers/c-1042/usage?mode=partial&deadlineMs=1000'`)
  console.log(`  curl -s '${base}/customers/c-1042/usage?mode=strict'\n  curl -s '${base}/health'\nCtrl-C to stop.\n`)
  return yield* Effect.never
})

const embedded = main.pipe(
  Effect.provide(Embedded.layer({ listen: { port, host: "127.0.0.1" }, simulators })),
  Effect.onInterrupt(() => Effect.sync(() => console.log("\nshutting down: API and simulators closed")))
)
const program: Effect.Effect<unknown, unknown> = external ? Layer.launch(Server.layerConfig) : embedded

const endpoint = otlpEndpoint ?? "http://127.0.0.1:4318"
const tracing = trace === "console" ?
  Tracing.layerConsole() :
  trace === "otlp" ?
  Tracing.layerOtlp(endpoint) :
  Layer.empty
if (trace === "otlp") console.log(`exporting spans over OTLP/HTTP to ${endpoint}/v1/traces`)

program.pipe(
  Effect.provide(tracing),
  Effect.provide(Logger.logFmt),
  NodeRuntime.runMain({ disablePrettyLogger: true })
)
