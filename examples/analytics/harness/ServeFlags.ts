/**
 * The command line of `npm run serve` and the environment the API reads, read and checked before anything starts: a
 * bad flag or variable is one line naming it (and the script exits with code 2), never a stack trace, and never found
 * after the simulators are already up.
 *
 *   --port=N          where the API listens (0 to 65535, 0 for any free port); default `PORT`, else 3000
 *   --config=path     the simulators' config file; default examples/analytics/harness/simulators.json
 *   --trace=console|otlp|off
 *                     where spans go; default `otlp` when OTEL_EXPORTER_OTLP_ENDPOINT (an http(s) URL) is set,
 *                     else `off`
 *   --metrics=otlp|off
 *                     whether metrics (the fan-outs' outcomes and attempts) are exported over OTLP/HTTP to
 *                     OTEL_EXPORTER_OTLP_ENDPOINT; default as `--trace`'s
 *   --workers=N       how many processes serve the API on the one port (`node:cluster`), 1 to 1024; default one per
 *                     core (`os.availableParallelism()`); 1 serves it in this process, as without cluster
 *   --external        no simulators: the clients call `<FEATURE>_URL`, the API listens on `PORT` and `HOST`
 *   anything else     a simulator setting: `--seed=7`, `--<feature>.<setting>=<value>`, `--all.<setting>=<value>`
 *                     (see `applyFlags` in Simulator.ts)
 *
 * `serve`'s own flags also take their value as the next argument (`--workers 2`). A flag given twice is refused.
 *
 * The environment: `REQUIRED_FEATURES`, `FEATURE_RETRIES`, `STRICT_RETRIES`, `FEATURE_HEDGE`, `RETRY_BUDGET`,
 * `FEATURE_TIMEOUT`, `OTEL_TRACES_SAMPLER`, `OTEL_TRACES_SAMPLER_ARG`, `OTEL_METRIC_EXPORT_INTERVAL`, the bounds
 * (`MAX_FANOUTS`, `MAX_FANOUTS_PER_CONNECTION`, `MAX_QUEUED_FANOUTS`, `MAX_EVENT_LOOP_DELAY`, `MAX_CONNECTIONS`, `KEEP_ALIVE_TIMEOUT`,
 * `HEADERS_TIMEOUT`, `FEATURE_CONNECTIONS`, `FEATURE_HTTP_CLIENT`, `FEATURE_MAX_BODY_BYTES`) and `LOG_WINDOW`; with `--external`
 * also `PORT`, `HOST` and every `<FEATURE>_URL`. Each is read by the `Config` the application itself reads it with.
 */
import type { Config } from "effect"
import { ConfigProvider, Effect, Result } from "effect"
import { availableParallelism } from "node:os"
import { relative } from "node:path"
import { fileURLToPath } from "node:url"
import * as Admission from "../Admission.js"
import { httpUrlExpected, isHttpUrl, type Problem, problems } from "../Environment.js"
import * as FeatureClient from "../FeatureClient.js"
import { features } from "../Features.js"
import * as Listen from "../Listen.js"
import * as LogLimit from "../LogLimit.js"
import * as Metrics from "../Metrics.js"
import * as Tracing from "../Tracing.js"
import * as Usage from "../Usage.js"
import * as Simulator from "./Simulator.js"
import { FlagError } from "./Simulator.js"

export type Trace = "console" | "otlp" | "off"

export type MetricsExport = "otlp" | "off"

export type ServeOptions =
  | {
    /** The simulators and the API in this process. */
    readonly _tag: "Embedded"
    readonly port: number
    readonly simulators: Simulator.SimulatorConfig
    readonly trace: Trace
    readonly metrics: MetricsExport
    readonly otlpEndpoint: string
    readonly workers: number
  }
  | {
    /** The API alone, configured from the environment (`Server.layerConfig`). */
    readonly _tag: "External"
    readonly trace: Trace
    readonly metrics: MetricsExport
    readonly otlpEndpoint: string
    readonly workers: number
  }

const defaultPort = 3000
const defaultOtlpEndpoint = "http://127.0.0.1:4318"

/** The flags `serve` reads itself; every other one is a simulator setting. */
const own = ["port", "config", "trace", "metrics", "workers"] as const

/** The most worker processes `--workers` takes: far past any core count, short of a typo's thousands. */
export const maxWorkers = 1024

/** A worker count written in decimal digits, 1 to `maxWorkers`; `undefined` if `raw` is not one. */
export const parseWorkers = (raw: string): number | undefined => {
  const workers = /^\d{1,4}$/.test(raw) ? Number(raw) : NaN
  return workers >= 1 && workers <= maxWorkers ? workers : undefined
}

const fail = (message: string) => Result.fail(new FlagError({ message }))

/** The `Config`s the API reads from the environment; without `--external` the simulators' URLs replace `<FEATURE>_URL`. */
const environment = (external: boolean): ReadonlyArray<Config.Config<unknown>> => [
  Usage.requiredFeatures,
  Usage.featureRetries,
  Usage.strictRetries,
  Usage.featureHedge,
  FeatureClient.retryBudget,
  FeatureClient.requestTimeout,
  FeatureClient.maxBodyBytes,
  FeatureClient.connectionsPerService,
  FeatureClient.httpClientKind,
  Admission.settingsConfig,
  Listen.connectionsConfig,
  LogLimit.logWindow,
  Tracing.sampling,
  Metrics.exportInterval,
  ...(external ? [Listen.portConfig, Listen.hostConfig, ...features.map(FeatureClient.baseUrl)] : [])
]

/**
 * What is wrong with the environment, in one line: each bad variable with its value and what it takes, then the
 * variables `--external` needs and does not have. `undefined` when the API can start with it.
 */
const environmentProblem = (
  env: Readonly<Record<string, string | undefined>>,
  external: boolean
): string | undefined => {
  const variables = Object.fromEntries(
    Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined)
  )
  // An empty variable is a value to check (an empty `HOST` would listen everywhere), not an unset one.
  const provider = ConfigProvider.fromEnv({ env: variables, preserveEmptyStrings: true })
  const found: ReadonlyArray<Problem> = environment(external).flatMap((config) =>
    Result.match(Effect.runSync(Effect.result(config.parse(provider))), {
      onSuccess: () => [],
      onFailure: problems
    })
  )
  if (found.length === 0) return undefined
  const missing = found.flatMap((problem) => problem._tag === "Missing" ? [problem.name] : [])
  return [
    ...found.flatMap((problem) =>
      problem._tag === "Invalid" ? [`${problem.name}=${variables[problem.name] ?? ""}: ${problem.takes}`] : []
    ),
    ...(missing.length === 0 ? [] : [`--external needs ${missing.join(", ")} (the base URL of each feature service)`])
  ].join("; ")
}

/**
 * Reads `serve`'s arguments (without `node` and the script) and the environment. The first problem found is a
 * `FlagError` (every bad environment variable at once); otherwise every value is checked, the config file read, the
 * simulator flags applied and the API's environment read as it will be when it starts.
 */
export const parse = (
  argv: ReadonlyArray<string>,
  env: Readonly<Record<string, string | undefined>>
): Result.Result<ServeOptions, FlagError> => {
  const values: Partial<Record<(typeof own)[number], string>> = {}
  const rest: Array<string> = []
  let external = false
  for (let i = 0; i < argv.length; i++) {
    let arg = argv[i]!
    if (arg === "--external") {
      external = true
      continue
    }
    const name = own.find((name) => arg === `--${name}` || arg.startsWith(`--${name}=`))
    if (name === undefined) {
      rest.push(arg)
      continue
    }
    if (arg === `--${name}`) {
      // `--workers 2`: the value is the next argument, unless that is another flag.
      const next = argv[i + 1]
      if (next === undefined || next.startsWith("--")) return fail(`${arg} needs a value, as in ${arg}=...`)
      arg = `${arg}=${next}`
      i++
    }
    if (values[name] !== undefined) return fail(`${arg}: --${name} is given twice`)
    values[name] = arg.slice(name.length + 3)
  }

  const workers = values.workers === undefined ? availableParallelism() : parseWorkers(values.workers)
  if (workers === undefined) {
    return fail(`--workers=${values.workers}: workers must be an integer from 1 to ${maxWorkers}`)
  }

  const otlpEndpoint = env.OTEL_EXPORTER_OTLP_ENDPOINT
  const trace = values.trace ?? (otlpEndpoint === undefined ? "off" : "otlp")
  if (trace !== "console" && trace !== "otlp" && trace !== "off") {
    return fail(`--trace=${trace}: trace must be console, otlp or off`)
  }
  const metrics = values.metrics ?? (otlpEndpoint === undefined ? "off" : "otlp")
  if (metrics !== "otlp" && metrics !== "off") return fail(`--metrics=${metrics}: metrics must be otlp or off`)
  if ((trace === "otlp" || metrics === "otlp") && otlpEndpoint !== undefined && !isHttpUrl(otlpEndpoint)) {
    return fail(`OTEL_EXPORTER_OTLP_ENDPOINT=${otlpEndpoint}: ${httpUrlExpected}`)
  }
  const common = { trace, metrics, otlpEndpoint: otlpEndpoint ?? defaultOtlpEndpoint, workers } as const

  if (external) {
    // Nothing here would be used: refuse rather than ignore what the caller asked for.
    const unused = [
      ...(["port", "config"] as const).flatMap((name) =>
        values[name] === undefined ? [] : [`--${name}=${values[name]}`]
      ),
      ...rest
    ][0]
    if (unused !== undefined) {
      return fail(`${unused} is not used with --external (no simulators run; the API listens on PORT and HOST)`)
    }
    const problem = environmentProblem(env, true)
    return problem === undefined ? Result.succeed({ _tag: "External", ...common }) : fail(problem)
  }

  const port = values.port !== undefined ?
    Listen.parsePort(values.port) :
    env.PORT !== undefined ?
    Listen.parsePort(env.PORT) :
    defaultPort
  if (port === undefined) {
    const flag = values.port !== undefined ? `--port=${values.port}` : `PORT=${env.PORT}`
    return fail(`${flag}: ${Listen.portExpected}`)
  }

  const read = Simulator.readConfig(values.config ?? Simulator.defaultConfigPath)
  if (Result.isFailure(read)) {
    const file = values.config === undefined
      ? relative(process.cwd(), fileURLToPath(Simulator.defaultConfigPath))
      : `--config=${values.config}`
    return fail(`${file}: ${read.failure.message}`)
  }

  return Result.flatMap(Simulator.applyFlags(read.success, rest), (simulators) => {
    const problem = environmentProblem(env, false)
    return problem === undefined ?
      Result.succeed({ _tag: "Embedded" as const, port, simulators, ...common }) :
      fail(problem)
  })
}
