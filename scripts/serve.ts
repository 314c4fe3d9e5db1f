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
 * Workers (`--workers=N`, default one per core; see examples/analytics/harness/ServeFlags.ts): with N > 1 this process
 * is the `node:cluster` primary. It checks the port (0 is resolved to one free port here, so that every worker
 * listens on the same one), starts the simulators once, and forks N workers; each is told the port and the
 * simulators' URLs in `ANALYTICS_SERVE_WORKER` and serves the API on that port, the primary handing the connections
 * out in turn. Every response names its worker in `x-worker-pid`. On SIGINT or SIGTERM the primary tells every worker
 * to stop (SIGTERM; the workers ignore the terminal's own SIGINT so that the primary orders the shutdown), waits for
 * each to exit, then closes the simulators and exits 0. A worker that crashes is reported and replaced; one that
 * exits before it listens (or while the others are not all up yet) cannot be replaced, and the primary stops the
 * others and exits 1. `--workers=1` serves everything in this one process.
 *
 * Tracing (see examples/analytics/Tracing.ts):
 *   --trace=console   print each span as it ends (name, duration, parent, outcome counts, attempts)
 *   --trace=otlp      export spans over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT (default http://127.0.0.1:4318);
 *                     setting OTEL_EXPORTER_OTLP_ENDPOINT alone also turns it on
 *   --trace=off       no export (the default without OTEL_EXPORTER_OTLP_ENDPOINT)
 *
 * Metrics (see examples/analytics/Metrics.ts):
 *   --metrics=otlp    export the fan-outs' outcome and attempt metrics over OTLP/HTTP to OTEL_EXPORTER_OTLP_ENDPOINT
 *                     every OTEL_METRIC_EXPORT_INTERVAL ms (default 60000); setting the endpoint alone turns it on
 *   --metrics=off     none (the default without OTEL_EXPORTER_OTLP_ENDPOINT)
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, ConfigProvider, Context, Data, Deferred, Effect, Exit, Layer, Logger, Result, Runtime } from "effect"
import { HttpServerError } from "effect/http"
import Cluster, { type Worker } from "node:cluster"
import * as Net from "node:net"
import type { Feature } from "../examples/analytics/Features.js"
import * as Embedded from "../examples/analytics/harness/Embedded.js"
import * as ServeFlags from "../examples/analytics/harness/ServeFlags.js"
import * as Simulator from "../examples/analytics/harness/Simulator.js"
import * as Listen from "../examples/analytics/Listen.js"
import * as Metrics from "../examples/analytics/Metrics.js"
import * as Server from "../examples/analytics/Server.js"
import * as Tracing from "../examples/analytics/Tracing.js"

const parsed = ServeFlags.parse(process.argv.slice(2), process.env)
if (Result.isFailure(parsed)) {
  console.error(`serve: ${parsed.failure.message}`)
  process.exit(2)
}
const options = parsed.success

/** What the primary tells each worker: where to listen and, with embedded simulators, their URLs. */
interface WorkerPlan {
  readonly listen: Listen.Listen
  readonly urls?: { readonly [F in Feature]: string } | undefined
}
const planVariable = "ANALYTICS_SERVE_WORKER"

const tryLines = (base: string) => {
  console.log(`\nTry:\n  curl -s '${base}/customers/c-1042/usage?mode=partial&deadlineMs=1000'`)
  console.log(`  curl -s '${base}/customers/c-1042/usage?mode=strict'\n  curl -s '${base}/health'\nCtrl-C to stop.\n`)
}

const logSimulators = (urls: { readonly [F in Feature]: string }) =>
  Effect.log(`feature services: ${Object.entries(urls).map(([name, url]) => `${name}=${url}`).join(" ")}`)

/** One process: the simulators (unless external) and the API. */
const single: Effect.Effect<unknown, unknown> = options._tag === "External" ?
  Layer.launch(Server.layerConfig) :
  Effect.gen(function*() {
    const base = yield* Embedded.apiUrl
    const running = yield* Simulator.SimulatorsService
    yield* Effect.log(`analytics API on ${base}`)
    yield* logSimulators(running.urls)
    yield* Effect.sync(() => tryLines(base))
    return yield* Effect.never
  }).pipe(
    Effect.provide(
      Embedded.layer({ listen: { port: options.port, host: "127.0.0.1" }, simulators: options.simulators })
    ),
    Effect.onInterrupt(() => Effect.sync(() => console.log("\nshutting down: API and simulators closed")))
  )

/** A worker: the API alone on the primary's port, calling the URLs the primary gave it. */
const worker = (plan: WorkerPlan): Effect.Effect<unknown, unknown> =>
  Effect.gen(function*() {
    const base = yield* Embedded.apiUrl
    yield* Effect.log(`worker ${process.pid} serving the API on ${base}`)
    yield* Effect.sync(() => process.send?.({ listening: base }))
    return yield* Effect.never
  }).pipe(
    Effect.provide(
      plan.urls === undefined ?
        Server.layer(plan.listen) :
        Server.layer(plan.listen).pipe(Layer.provide(ConfigProvider.layer(Embedded.configFor({ urls: plan.urls }))))
    )
  )

class CannotListen extends Data.TaggedError("CannotListen")<{ readonly message: string }> {}
class WorkerLost extends Data.TaggedError("WorkerLost")<{ readonly message: string }> {}

/**
 * Listens on `listen` and closes at once: the port the workers will share, 0 resolved to a free one. A port taken is
 * found here, once, before anything starts (a worker would find it N times).
 */
const reserve = (listen: Listen.Listen) =>
  Effect.callback<number, CannotListen>((resume) => {
    const probe = Net.createServer()
    probe.once("error", (error) => resume(Effect.fail(new CannotListen({ message: error.message }))))
    probe.listen(listen.port, listen.host, () => {
      const { port } = probe.address() as Net.AddressInfo
      probe.close(() => resume(Effect.succeed(port)))
    })
  })

/**
 * `count` workers kept running: `ready` once each has listened, `lost` fails when one cannot be replaced, and `stop`
 * (the scope's release) sends each SIGTERM and waits for every one to exit.
 */
const fleet = (count: number, plan: WorkerPlan) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const ready = Deferred.makeUnsafe<void>()
      const lost = Deferred.makeUnsafe<never, WorkerLost>()
      const stopped = Deferred.makeUnsafe<void>()
      const live = new Set<Worker>()
      let listening = 0
      let stopping = false
      const fork = () => {
        const child = Cluster.fork({ [planVariable]: JSON.stringify(plan) })
        const pid = child.process.pid
        let up = false
        live.add(child)
        child.on("message", (message: unknown) => {
          if (up || typeof message !== "object" || message === null || !("listening" in message)) return
          up = true
          if (++listening === count) Deferred.doneUnsafe(ready, Effect.void)
        })
        child.on("exit", (code, signal) => {
          live.delete(child)
          if (stopping) {
            if (live.size === 0) Deferred.doneUnsafe(stopped, Effect.void)
            return
          }
          const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`
          if (up && Deferred.isDoneUnsafe(ready)) {
            console.error(`serve: worker ${pid} ${how}; starting another`)
            listening--
            fork()
          } else {
            Deferred.doneUnsafe(
              lost,
              Effect.fail(new WorkerLost({ message: `worker ${pid} ${how} before it listened; cannot keep ${count}` }))
            )
          }
        })
      }
      for (let i = 0; i < count; i++) fork()
      const stop = Effect.suspend(() => {
        stopping = true
        if (live.size === 0) return Effect.void
        for (const child of live) child.process.kill("SIGTERM")
        return Deferred.await(stopped)
      })
      return {
        ready: Deferred.await(ready),
        lost: Deferred.await(lost),
        pids: () => [...live].map((child) => child.process.pid),
        stop
      }
    }),
    (workers) => workers.stop
  )

/** The primary of `--workers=N`: the port, the simulators once, N workers. */
const primary = (workers: number): Effect.Effect<unknown, unknown> =>
  Effect.gen(function*() {
    const listen = options._tag === "External" ? yield* Listen.listenConfig : { port: options.port, host: "127.0.0.1" }
    const port = yield* reserve(listen)
    // Started after the port is known to be free, closed (with the scope) after every worker has exited.
    const urls = options._tag === "External" ?
      undefined :
      Context.get(yield* Layer.build(Simulator.layer(options.simulators)), Simulator.SimulatorsService).urls
    if (urls !== undefined) yield* logSimulators(urls)
    const running = yield* fleet(workers, { listen: { ...listen, port }, urls })
    yield* Effect.raceFirst(running.ready, running.lost)
    const base = `http://${listen.host.includes(":") ? `[${listen.host}]` : listen.host}:${port}`
    yield* Effect.log(`analytics API on ${base} (${workers} workers: ${running.pids().join(" ")})`)
    yield* Effect.sync(() => tryLines(base))
    return yield* running.lost
  }).pipe(
    Effect.scoped,
    Effect.onInterrupt(() =>
      Effect.sync(() => console.log(`\nshutting down: ${workers} workers and simulators closed`))
    ),
    Effect.catchTag("CannotListen", (error) =>
      Effect.sync(() => {
        console.error(`serve: cannot listen: ${error.message}`)
        process.exit(1)
      })),
    Effect.catchTag("WorkerLost", (error) =>
      Effect.sync(() => {
        console.error(`serve: ${error.message}`)
        process.exit(1)
      }))
  )

const tracing = options.trace === "console" ?
  Tracing.layerConsole() :
  options.trace === "otlp" ?
  Tracing.layerOtlp(options.otlpEndpoint) :
  Layer.empty
const metrics = options.metrics === "otlp" ? Metrics.layerOtlp(options.otlpEndpoint) : Layer.empty

const plan = process.env[planVariable]
const program = Cluster.isWorker && plan !== undefined ?
  worker(JSON.parse(plan) as WorkerPlan) :
  options.workers === 1 ?
  single :
  primary(options.workers)
if (options.trace === "otlp" && !Cluster.isWorker) {
  console.log(`exporting spans over OTLP/HTTP to ${options.otlpEndpoint}/v1/traces`)
}
if (options.metrics === "otlp" && !Cluster.isWorker) {
  console.log(`exporting metrics over OTLP/HTTP to ${options.otlpEndpoint}/v1/metrics`)
}

const main = program.pipe(
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
  Effect.provide(metrics),
  Effect.provide(Logger.layer([Logger.consoleLogFmt])),
  // An empty variable is a value, as `ServeFlags` checked it: an empty `HOST` is refused, never read as unset.
  Effect.provide(ConfigProvider.layer(ConfigProvider.fromEnv({ preserveEmptyStrings: true })))
)

if (Cluster.isWorker) {
  // The primary orders the shutdown: a worker ignores the terminal's SIGINT (sent to the whole process group on
  // Ctrl-C) and stops on the primary's SIGTERM, draining its requests in flight.
  const fiber = Effect.runFork(main)
  process.on("SIGINT", () => {})
  process.on("SIGTERM", () => fiber.interruptUnsafe(fiber.id))
  fiber.addObserver((exit) => {
    if (Exit.isFailure(exit) && !Cause.hasInterruptsOnly(exit.cause)) console.error(Cause.pretty(exit.cause))
    process.exit(Exit.isSuccess(exit) || Cause.hasInterruptsOnly(exit.cause) ? 0 : 1)
  })
} else {
  main.pipe(
    NodeRuntime.runMain({
      // Ctrl-C is how this server is meant to stop: once everything has closed, that is a clean exit (0), not the 130
      // of a program cut short.
      teardown: (exit, onExit) =>
        Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)
    })
  )
}
