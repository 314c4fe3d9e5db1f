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
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Layer, Logger } from "effect"
import * as Embedded from "../examples/analytics/Embedded.js"
import * as Server from "../examples/analytics/Server.js"
import * as Simulator from "../examples/analytics/Simulator.js"

const args = process.argv.slice(2)
const external = args.includes("--external")
const option = (name: string) => args.find((arg) => arg.startsWith(`--${name}=`))?.slice(name.length + 3)
const port = Number(option("port") ?? process.env.PORT ?? 3000)
const configPath = option("config")
const simulatorFlags = args.filter((arg) =>
  !arg.startsWith("--port=") && !arg.startsWith("--config=") && arg !== "--external"
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

program.pipe(
  Effect.provide(Logger.logFmt),
  NodeRuntime.runMain({ disablePrettyLogger: true })
)
