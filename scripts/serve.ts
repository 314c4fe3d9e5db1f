/**
 * `npm run serve`: the analytics API and its twelve simulated feature services, kept running until Ctrl-C.
 *
 *   npm run serve -- --port=3000 --config=examples/analytics/harness/simulators.json --payments.errorRate=0.5 --seed=7
 *
 * `--port` (default `PORT`, else 3000; 0 for any free port) and `--config` are for this script; every other flag is a
 * simulator setting (see `applyFlags` in examples/analytics/harness/Simulator.ts). Every flag, the config file and the
 * environment variables the API reads (`REQUIRED_FEATURES`, `FEATURE_RETRIES`, `STRICT_RETRIES`, `FEATURE_TIMEOUT`) are
 * checked before anything starts: a bad one prints one line naming it and exits with code 2
 * (examples/analytics/harness/ServeFlags.ts). A port already taken is one line too, and exit code 1.
 *
 * `npm run serve -- --external` starts no simulators: the clients call the services named by `<FEATURE>_URL`
 * environment variables, and the API listens on `PORT` (0 for any free port) and `HOST`; those are checked first too.
 * Logs are logfmt, one line per entry.
 *
 * Tracing (see examples/analytics/Tracing.ts):
 *   --trace=console   print each span as it ends (name, duration, parent, outcome counts, attempts)
 *   --trace=otlp      export spans over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (default http://127.0.0.1:4318);
 *                     setting OTEL_EXPORTER_OTLP_ENDPOINT alone also turns it on
 *   --trace=off       no export (the default without OTEL_EXPORTER_OTLP_ENDPOINT)
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, ConfigProvider, Effect, Exit, Layer, Logger, Result, Runtime } from "effect"
import { HttpServerError } from "effect/http"
import * as Embedded from "../examples/analytics/harness/Embedded.js"
import * as ServeFlags from "../examples/analytics/harness/ServeFlags.js"
import * as Simulator from "../examples/analytics/harness/Simulator.js"
import * as Server from "../examples/analytics/Server.js"
import * as Tracing from "../examples/analytics/Tracing.js"

const parsed = ServeFlags.parse(process.argv.slice(2), process.env)
if (Result.isFailure(parsed)) {
  console.error(`serve: ${parsed.failure.message}`)
  process.exit(2)
}
const options = parsed.success

const main = Effect.gen(function*() {
  const base = yield* Embedded.apiUrl
  const running = yield* Simulator.SimulatorsService
  yield* Effect.log(`analytics API on ${base}`)
  yield* Effect.log(
    `feature services: ${Object.entries(running.urls).map(([name, url]) => `${name}=${url}`).join(" ")}`
  )
  yield* Effect.sync(() => {
    console.log(`\nTry:\n  curl -s '${base}/customers/c-1042/usage?mode=partial&deadlineMs=1000'`)
    console.log(`  curl -s '${base}/customers/c-1042/usage?mode=strict'\n  curl -s '${base}/health'\nCtrl-C to stop.\n`)
  })
  return yield* Effect.never
})

const program: Effect.Effect<unknown, unknown> = options._tag === "External" ?
  Layer.launch(Server.layerConfig) :
  main.pipe(
    Effect.provide(
      Embedded.layer({ listen: { port: options.port, host: "127.0.0.1" }, simulators: options.simulators })
    ),
    Effect.onInterrupt(() => Effect.sync(() => console.log("\nshutting down: API and simulators closed")))
  )

const tracing = options.trace === "console" ?
  Tracing.layerConsole() :
  options.trace === "otlp" ?
  Tracing.layerOtlp(options.otlpEndpoint) :
  Layer.empty
if (options.trace === "otlp") console.log(`exporting spans over OTLP/HTTP to ${options.otlpEndpoint}/v1/traces`)

program.pipe(
  // The port is taken or the host cannot be listened on: one line, as for a bad flag, not a stack trace.
  Effect.catchIf(
    (error): error is HttpServerError.ServeError => error instanceof HttpServerError.ServeError,
    (error) =>
      Effect.sync(() => {
        const cause: unknown = error.cause
        console.error(`serve: cannot listen: ${cause instanceof Error ? cause.message : String(cause)}`)
        process.exit(1)
      })
  ),
  Effect.provide(tracing),
  Effect.provide(Logger.layer([Logger.consoleLogFmt])),
  // An empty variable is a value, as `ServeFlags` checked it: an empty `HOST` is refused, never read as unset.
  Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ preserveEmptyStrings: true }))),
  NodeRuntime.runMain({
    // Ctrl-C is how this server is meant to stop: once everything has closed, that is a clean exit (0), not the 130
    // of a program cut short.
    teardown: (exit, onExit) =>
      Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)
  })
)
