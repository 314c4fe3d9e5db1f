/**
 * The feature-service simulators on plain `node:http`, one server per row of the feature table, each answering its
 * row's path like the real service would — or not, as its settings say.
 *
 * They are deliberately cheap (no Effect on the request path) so that a load test measures the analytics API, and
 * deterministic: every feature draws from its own RNG seeded from `seed`, so the same requests in the same order
 * give the same answers. They count requests started, completed and aborted (the client closed the connection
 * before the answer was written), which is how tests see that a cancelled fan-out really cancels its HTTP calls.
 */
import { Context, Data, Effect, Layer, Result, Schema, SchemaIssue, Struct } from "effect"
import * as Fs from "node:fs"
import * as Http from "node:http"
import type { AddressInfo } from "node:net"
import { byFeature, type Feature, features, FeatureUsage, isFeature, table } from "../Features.js"

/**
 * The longest delay `setTimeout` can wait: Node fires a longer one after 1 ms (with a `TimeoutOverflowWarning`), so a
 * service meant to be slow would answer at once.
 */
export const maxDelayMs = 2_147_483_647

const Rate = Schema.Number.check(Schema.isBetween({ minimum: 0, maximum: 1 }))
const Millis = Schema.Int.check(Schema.isBetween({ minimum: 0, maximum: maxDelayMs }))

/** How one simulated service behaves. Rates are probabilities per request, drawn in the order hang, error, malformed. */
export const Settings = Schema.Struct({
  /** Base latency before answering. */
  latencyMs: Millis,
  /** Up to this much extra latency, uniformly drawn. */
  jitterMs: Millis,
  /** Answer 503 with a JSON error. */
  errorRate: Rate,
  /** Answer 200 with a truncated JSON body. */
  malformedRate: Rate,
  /** Never answer; the connection stays open until the client gives up. */
  hangRate: Rate,
  /** The handler throws; the server answers 500 with the stack trace, as a careless framework in dev mode does. */
  crash: Schema.Boolean
})
export type Settings = typeof Settings.Type

type SettingName = keyof Settings

/** What each setting takes, as said when a config file or a flag gives it something else. */
const expected: { readonly [K in SettingName]: string } = {
  latencyMs: `a whole number of milliseconds from 0 to ${maxDelayMs}`,
  jitterMs: `a whole number of milliseconds from 0 to ${maxDelayMs}`,
  errorRate: "a decimal number between 0 and 1",
  malformedRate: "a decimal number between 0 and 1",
  hangRate: "a decimal number between 0 and 1",
  crash: "true or false"
}

const settingNames = Object.keys(Settings.fields) as ReadonlyArray<SettingName>

const PartialSettings = Settings.mapFields(Struct.map(Schema.optionalKey))

/** A config file: a seed, the default settings, and settings per feature (one optional key per row of the table). */
export const SimulatorConfig = Schema.Struct({
  seed: Schema.Int,
  defaults: Settings,
  features: Schema.Struct(byFeature(() => Schema.optionalKey(PartialSettings)))
})
export type SimulatorConfig = typeof SimulatorConfig.Type

/**
 * A key a config file does not know (a misspelt feature or setting) is an error, like a value out of range: left
 * out, the typo would silently leave that service at its defaults. Every issue is reported, not only the first.
 */
const decodeOptions = { onExcessProperty: "error", errors: "all", reportInput: true } as const

/** Checks a config (already parsed JSON); the issues are in `configIssues`. */
export const decodeConfig = Schema.decodeUnknownResult(SimulatorConfig, decodeOptions)

const quoted = (names: ReadonlyArray<string>) => names.map((name) => JSON.stringify(name)).join(" | ")

/** The keys a config file may have at `path` (the object holding the key). */
const keysAt = (path: ReadonlyArray<PropertyKey>): ReadonlyArray<string> =>
  path.length === 0 ? Object.keys(SimulatorConfig.fields) : path.length === 1 && path[0] === "features"
    ? features
    : settingNames

/**
 * What is wrong with a config file, one `path: message` per issue: a value its setting does not take (`defaults.latencyMs:
 * must be a whole number of milliseconds from 0 to 2147483647, got 1000000000000`), a key it does not know
 * (`features.paymnets: is unexpected, expected: "listings" | ...`), a key it lacks (`seed: is missing`).
 */
export const configIssues = (error: Schema.SchemaError): ReadonlyArray<string> => {
  const lines: Array<string> = []
  const visit = (issue: SchemaIssue.Issue, path: ReadonlyArray<PropertyKey>): void => {
    switch (issue._tag) {
      case "Pointer":
        return visit(issue.issue, [...path, ...issue.path])
      case "Composite":
      case "AnyOf":
        return issue.issues.forEach((inner) => visit(inner, path))
      case "Filter":
      case "Encoding":
        return visit(issue.issue, path)
      default: {
        const at = path.map(String).join(".") || "the file"
        const last = path.at(-1)
        const got = SchemaIssue.hasInput(issue) ? `, got ${JSON.stringify(issue.input)}` : ""
        if (issue._tag === "UnexpectedKey") {
          lines.push(`${at}: is unexpected, expected: ${quoted(keysAt(path.slice(0, -1)))}`)
        } else if (issue._tag === "MissingKey" || (issue._tag === "InvalidType" && !SchemaIssue.hasInput(issue))) {
          lines.push(`${at}: is missing`)
        } else if (typeof last === "string" && Object.hasOwn(expected, last) && path[0] !== undefined) {
          lines.push(`${at}: must be ${expected[last as SettingName]}${got}`)
        } else if (last === "seed") {
          lines.push(`${at}: must be an integer${got}`)
        } else {
          lines.push(`${at}: ${SchemaIssue.makeFormatterStandardSchemaV1()(issue).issues[0]?.message ?? "is invalid"}`)
        }
      }
    }
  }
  visit(error.issue, [])
  return lines
}

/** Settings per feature, or for `all` of them at once; the shape of config overrides, flags and demo scenarios. */
export type Overrides = { readonly [K in Feature | "all"]?: Partial<Settings> }

export const defaultConfigPath = new URL("./simulators.json", import.meta.url)

/** A config file that cannot be used: it cannot be read, is not JSON, or has `issues`. */
export class ConfigFileError extends Data.TaggedError("ConfigFileError")<{
  readonly message: string
  readonly issues: ReadonlyArray<string>
}> {}

/**
 * Reads and checks a simulator config file (JSON in the `SimulatorConfig` shape; missing features use defaults, an
 * unknown key is an error).
 */
export const readConfig = (path: string | URL = defaultConfigPath): Result.Result<SimulatorConfig, ConfigFileError> => {
  let json: unknown
  try {
    json = JSON.parse(Fs.readFileSync(path, "utf8"))
  } catch (error) {
    const message = String(error instanceof Error ? error.message : error).split("\n")[0]!
    return Result.fail(new ConfigFileError({ message, issues: [] }))
  }
  return Result.mapError(decodeConfig(json), (error) => {
    const issues = configIssues(error)
    return new ConfigFileError({ message: issues.join("; "), issues })
  })
}

/** `readConfig`, throwing what it cannot use: for the config file that ships with the harness. */
export const loadConfig = (path: string | URL = defaultConfigPath): SimulatorConfig =>
  Result.getOrThrowWith(readConfig(path), (error) => new Error(error.message))

/** A command-line flag that cannot be used. `message` is one line that names the flag and says what it takes. */
export class FlagError extends Data.TaggedError("FlagError")<{ readonly message: string }> {}

/**
 * How a number is written on the command line: milliseconds in decimal digits, rates in decimal notation. `Number`
 * alone would read `0x10` as 16, `1e12` as a trillion, `Infinity`, ` 5` and an empty value (as 0).
 */
const written = { millis: /^\d+$/, rate: /^(?:\d+(?:\.\d*)?|\.\d+)$/ }

/** The value of `--<target>.<setting>=<raw>`, checked by the setting's own schema; `undefined` if it is not one. */
const settingValue = (setting: SettingName, raw: string): unknown => {
  // `"yes" === "true"` is false: it may not pass for a value silently.
  if (setting === "crash") return raw === "true" ? true : raw === "false" ? false : undefined
  const form = setting === "latencyMs" || setting === "jitterMs" ? written.millis : written.rate
  const value = form.test(raw) ? Number(raw) : NaN
  return Schema.is(Settings.fields[setting])(value) ? value : undefined
}

/**
 * Applies command-line flags to a config: `--seed=7`, `--<feature>.<setting>=<value>` or `--all.<setting>=<value>`,
 * for example `--payments.errorRate=1 --all.latencyMs=5 --calendar.crash=true`. The first flag that is unknown or
 * has a value its setting does not take is a `FlagError` naming it; nothing is applied then.
 */
export const applyFlags = (
  config: SimulatorConfig,
  argv: ReadonlyArray<string>
): Result.Result<SimulatorConfig, FlagError> => {
  const fail = (message: string) => Result.fail(new FlagError({ message }))
  let seed = config.seed
  const overrides: Record<string, Record<string, unknown>> = {}
  // A flag given twice is refused: which one was meant cannot be told.
  const seen = new Set<string>()
  for (const arg of argv) {
    const match = /^--([A-Za-z]+)(?:\.([A-Za-z]+))?=(.*)$/.exec(arg)
    if (match === null) return fail(`unrecognised flag ${arg}`)
    const [, target, setting, raw] = match as unknown as [string, string, string | undefined, string]
    const flag = setting === undefined ? target : `${target}.${setting}`
    if (seen.has(flag)) return fail(`${arg}: --${flag} is given twice`)
    seen.add(flag)
    if (target === "seed" && setting === undefined) {
      seed = /^-?\d+$/.test(raw) ? Number(raw) : NaN
      if (!Number.isSafeInteger(seed)) return fail(`${arg}: seed must be an integer`)
      continue
    }
    if (setting === undefined || !Object.hasOwn(expected, setting) || (target !== "all" && !isFeature(target))) {
      return fail(`unrecognised flag ${arg}`)
    }
    const name = setting as SettingName
    const value = settingValue(name, raw)
    if (value === undefined) return fail(`${arg}: ${name} must be ${expected[name]}`)
    ;(overrides[target] ??= {})[name] = value
  }
  const { all, ...perFeature } = overrides as Overrides
  const defaults = { ...config.defaults, ...all }
  const merged: Record<string, Partial<Settings>> = {}
  for (const feature of features) {
    // A flag for `all` beats what the config file says about that setting for any one feature.
    const fromFile = Object.entries(config.features[feature] ?? {}).filter(([key]) =>
      all?.[key as SettingName] === undefined
    )
    const settings = { ...Object.fromEntries(fromFile), ...perFeature[feature] }
    if (Object.keys(settings).length > 0) merged[feature] = settings
  }
  // Every value was checked above: decoding cannot fail here, it only gives the result its type.
  return Result.succeed(Schema.decodeUnknownSync(SimulatorConfig)({ seed, defaults, features: merged }))
}

/** Requests one simulator has seen. `aborted`: the connection closed before the answer was complete. */
export interface Counts {
  readonly started: number
  readonly completed: number
  readonly aborted: number
}

export type AllCounts = { readonly [F in Feature]: Counts }

/** The running simulators. */
export interface Simulators {
  /** Base URL of each feature service, such as `http://127.0.0.1:41234`. */
  readonly urls: { readonly [F in Feature]: string }
  /** The settings each feature uses now. */
  readonly settings: () => { readonly [F in Feature]: Settings }
  /**
   * Replaces the behaviour of every feature with the config defaults plus `overrides` (`all` first, then per
   * feature), re-seeds the RNGs and zeroes the counters: one call per scenario.
   */
  readonly scenario: (overrides: Overrides) => void
  /** Back to the config file's settings, re-seeded, counters zeroed. */
  readonly reset: () => void
  readonly counts: () => AllCounts
  /** TCP connections each simulator accepted since the last reset: fewer than requests means keep-alive reuse. */
  readonly connections: () => { readonly [F in Feature]: number }
  /** Zeroes the counters (requests still in flight are no longer counted). */
  readonly resetCounts: () => void
  /**
   * Holds `feature`'s answers: its requests are counted as they arrive, then wait, whatever the settings, until the
   * returned function releases them; from then on each goes on as its settings say (its latency counted from the
   * release). For a test that needs one call to end only once the others are known to be in flight, without
   * counting on latencies. `scenario` and `reset` release every hold.
   */
  readonly hold: (feature: Feature) => () => void
  /** Resolves as soon as `predicate` holds for the counters (checked now and after every request event). */
  readonly awaitCounts: (predicate: (counts: AllCounts) => boolean) => Promise<AllCounts>
  /** Closes every server and every open connection (hung requests included). */
  readonly close: () => Promise<void>
}

/** mulberry32: a tiny seeded PRNG, plenty for fault injection. */
const makeRng = (seed: number) => {
  let state = seed >>> 0
  return () => {
    state = (state + 0x6d2b79f5) >>> 0
    let t = state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

const hash = (text: string) => {
  let h = 2166136261
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619)
  return h >>> 0
}

/** The usage a feature's service reports for a customer: made up, but the same every time it is asked. */
export const usageOf = (feature: Feature, customerId: string): FeatureUsage => {
  const h = hash(`${feature}:${customerId}`)
  const count = h % 500
  return new FeatureUsage({
    customerId,
    feature,
    count,
    lastUsedAt: count === 0 ? null : new Date(Date.UTC(2026, 10, 1 + (h % 28))).toISOString()
  })
}

/** Each feature's answer as its row's schema encodes it, and the pattern of the path it answers. */
const services = byFeature((feature) => {
  const row = table[feature]
  const [before, after] = row.path.split(":id") as [string, string]
  const escape = (text: string) => text.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")
  return {
    pattern: new RegExp(`^${escape(before)}([^/]+)${escape(after)}$`),
    body: (customerId: string) => JSON.stringify(Schema.encodeSync(row.response)(usageOf(feature, customerId)))
  }
})

/**
 * Runs `f` once `ms` have passed, in steps of at most `maxDelayMs`: latency plus jitter can pass `setTimeout`'s limit
 * even though neither does alone. Returns what cancels it.
 */
const after = (ms: number, f: () => void): () => void => {
  let timer: ReturnType<typeof setTimeout>
  const wait = (left: number) => {
    timer = left > maxDelayMs ? setTimeout(() => wait(left - maxDelayMs), maxDelayMs) : setTimeout(f, left)
  }
  wait(ms)
  return () => clearTimeout(timer)
}

/** A throwing handler, so that crash mode produces a real stack trace. */
const crashingHandler = (feature: Feature): never => {
  throw new Error(`simulated crash in the ${feature} service: cannot read properties of undefined (reading 'plan')`)
}

/** Starts one simulator per feature on 127.0.0.1, each on an ephemeral port. */
export const start = async (config: SimulatorConfig = loadConfig()): Promise<Simulators> => {
  const resolve = (overrides: Overrides) =>
    byFeature((feature): Settings => ({ ...config.defaults, ...overrides.all, ...overrides[feature] }))
  let current = resolve(config.features)
  const rngs = new Map<Feature, () => number>()
  const counts = new Map<Feature, { started: number; completed: number; aborted: number }>()
  const waiters = new Set<() => void>()
  const connections = {} as { [F in Feature]: number }
  const resetCounts = () => {
    for (const feature of features) {
      counts.set(feature, { started: 0, completed: 0, aborted: 0 })
      connections[feature] = 0
    }
  }
  const seedAll = () => {
    features.forEach((feature, index) => rngs.set(feature, makeRng(config.seed * 31 + index)))
    resetCounts()
  }
  seedAll()
  const snapshot = (): AllCounts => byFeature((feature) => ({ ...counts.get(feature)! }))
  const notify = () => {
    for (const waiter of [...waiters]) waiter()
  }
  // The requests of each held feature, waiting to go on.
  const held = new Map<Feature, Array<() => void>>()
  const releaseAll = () => {
    const waiting = [...held.values()].flat()
    held.clear()
    for (const go of waiting) go()
  }

  // Every answer with its `content-length`, as a JSON API's framework sends it (`writeHead` without one would make
  // Node send the body chunked).
  const send = (response: Http.ServerResponse, status: number, contentType: string, body: string) =>
    response.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(body) }).end(body)

  const handler = (feature: Feature) => (request: Http.IncomingMessage, response: Http.ServerResponse) => {
    const url = new URL(request.url ?? "/", "http://localhost")
    const match = services[feature].pattern.exec(url.pathname)
    if (request.method !== "GET" || match === null) {
      send(response, 404, "application/json", JSON.stringify({ error: "not found" }))
      return
    }
    const customerId = decodeURIComponent(match[1]!)
    const count = counts.get(feature)!
    const settings = current[feature]
    const rng = rngs.get(feature)!
    count.started++
    const roll = rng()
    const delay = settings.latencyMs + rng() * settings.jitterMs
    // The caller's budget (`x-fanout-timeout: 250m`, whole milliseconds): work that cannot finish within it is not
    // started; the answer says so at once.
    const budget = request.headers["x-fanout-timeout"]
    if (budget !== undefined) {
      const parsed = typeof budget === "string" ? /^(\d{1,8})m$/.exec(budget) : null
      if (parsed === null) {
        send(
          response,
          400,
          "application/json",
          JSON.stringify({ error: `x-fanout-timeout must be whole milliseconds followed by "m", such as "250m"` })
        )
        count.completed++
        notify()
        return
      }
      const budgetMs = Number(parsed[1])
      if (delay > budgetMs) {
        send(
          response,
          504,
          "application/json",
          JSON.stringify({
            error: `${feature} cannot answer within the ${budgetMs} ms budget (it needs ${Math.ceil(delay)} ms)`
          })
        )
        count.completed++
        notify()
        return
      }
    }
    const answer = () => {
      if (settings.crash) {
        try {
          crashingHandler(feature)
        } catch (error) {
          send(response, 500, "text/plain", (error as Error).stack ?? String(error))
        }
      } else if (roll < settings.hangRate + settings.errorRate) {
        send(response, 503, "application/json", JSON.stringify({ error: `${feature} is unavailable` }))
      } else if (roll < settings.hangRate + settings.errorRate + settings.malformedRate) {
        send(response, 200, "application/json", services[feature].body(customerId).slice(0, 25))
      } else {
        send(response, 200, "application/json", services[feature].body(customerId))
      }
    }
    const hangs = !settings.crash && roll < settings.hangRate
    let closed = false
    let cancel: (() => void) | undefined = undefined
    const go = () => {
      if (!closed && !hangs) cancel = after(delay, answer)
    }
    const waiting = held.get(feature)
    if (waiting !== undefined) waiting.push(go)
    else go()
    response.on("close", () => {
      closed = true
      cancel?.()
      if (response.writableFinished) count.completed++
      else count.aborted++
      notify()
    })
    notify()
  }

  const servers = await Promise.all(features.map(async (feature) => {
    const server = Http.createServer({ keepAliveTimeout: 30_000 }, handler(feature))
    server.on("connection", () => connections[feature]++)
    await new Promise<void>((resolveListen, reject) => {
      server.once("error", reject)
      server.listen(0, "127.0.0.1", () => {
        server.off("error", reject)
        resolveListen()
      })
    })
    return [feature, server] as const
  }))
  const urls = {} as { [F in Feature]: string }
  for (const [feature, server] of servers) {
    urls[feature] = `http://127.0.0.1:${(server.address() as AddressInfo).port}`
  }

  return {
    urls,
    settings: () => current,
    scenario: (overrides) => {
      current = resolve(overrides)
      seedAll()
      releaseAll()
    },
    reset: () => {
      current = resolve(config.features)
      seedAll()
      releaseAll()
    },
    hold: (feature) => {
      if (!held.has(feature)) held.set(feature, [])
      return () => {
        const waiting = held.get(feature)
        held.delete(feature)
        for (const go of waiting ?? []) go()
      }
    },
    counts: snapshot,
    connections: () => ({ ...connections }),
    resetCounts,
    awaitCounts: (predicate) =>
      new Promise((resolveWait) => {
        const check = () => {
          const now = snapshot()
          if (predicate(now)) {
            waiters.delete(check)
            resolveWait(now)
          }
        }
        waiters.add(check)
        check()
      }),
    close: () => closeServers(servers.map(([, server]) => server))
  }
}

/** Closes `servers` and every connection they hold, open or idle. */
export const closeServers = (servers: ReadonlyArray<Http.Server>): Promise<void> =>
  Promise.all(servers.map((server) =>
    new Promise<void>((resolve) => {
      server.close(() => resolve())
      server.closeAllConnections()
    })
  )).then(() => undefined)

/** The running simulators as an Effect service, for programs and tests that build them from a Layer. */
export class SimulatorsService extends Context.Service<SimulatorsService, Simulators>()("analytics/Simulators") {}

/** Starts the simulators for the lifetime of the Layer and closes them (and their connections) when it ends. */
export const layer = (config: SimulatorConfig = loadConfig()): Layer.Layer<SimulatorsService> =>
  Layer.effect(
    SimulatorsService,
    Effect.acquireRelease(Effect.promise(() => start(config)), (simulators) => Effect.promise(simulators.close))
  )

/** Sum of counters over all features. */
export const total = (counts: AllCounts): Counts =>
  Object.values(counts).reduce(
    (sum, c) => ({
      started: sum.started + c.started,
      completed: sum.completed + c.completed,
      aborted: sum.aborted + c.aborted
    }),
    { started: 0, completed: 0, aborted: 0 }
  )
