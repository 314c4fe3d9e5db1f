/**
 * `npm run bench:load`: the reference application under load, against the same endpoint written with `Effect.all`
 * and with plain Node Promises, in one run (the Effect 4 line's port of effect3/scripts/bench/load.ts).
 *
 * Four child processes on 127.0.0.1: the twelve simulated feature services (healthy, 5–10 ms per answer), and three
 * servers of `GET /customers/:id/usage` over them, each in its own process so that its CPU time is its own (see
 * ./load/target.ts): the application (`fanout`), the application with its `Usage` written with `Effect.all`
 * (`effect-all`, passed to `Server.serveWith`), and plain `node:http` + Promises (`node`). This process drives them
 * with autocannon.
 *
 * Scenarios: every service healthy, and one service (payments) answering 503, each in `partial` and `strict` mode.
 * Every answer is checked, status and body shape (twelve panels in the table's order, the customer asked about, the
 * failed panel or the `FeatureFailed` naming payments): the wrong ones are counted and listed, and if they are more
 * than 1% of a server's answers in a scenario the run exits with code 1.
 *
 * Each round runs every server twice: saturated (`--connections`, each sending its next request as soon as the
 * previous one is answered), for requests per second and the CPU time (user + system, read by the server process
 * itself with `process.cpuUsage()` over IPC) per answered request; and one connection, one request at a time, for
 * the latency of a request that waits for nothing but its own twelve calls (p50, p99). Medians over the rounds
 * (min–max); ratios against plain Node measured in the same run. Rounds alternate the servers' order.
 *
 *   npm run bench:load                     4 rounds (3 s saturated + 2 s alone per server) after a warm-up; ~5 min
 *   npm run bench:load -- --quick          2 rounds of 2 s + 1 s; ~2 min
 *   npm run bench:load -- --seconds=5 --single-seconds=3 --rounds=5 --connections=32
 *   npm run bench:load -- --cpu-prof       only the app, healthy partial then strict, saturated for --seconds (10)
 *                                          each under `node --cpu-prof`; prints where its time goes
 *   npm run bench:load -- --choices        what each choice of the app costs: the app as deployed against itself
 *                                          with the node:http client, 4 and 128 connections per service, no
 *                                          spans, spans exported over OTLP (all, and 1 trace in 10); plain Node
 *                                          too; healthy partial
 *   npm run bench:load -- --workers        the app as `npm run serve -- --external --workers=N` serves it, N = 1
 *                                          and 2 (`--max-workers=M`: 1 to M), healthy partial, saturated with
 *                                          --connections (32 here unless given): requests/s and CPU per request
 *                                          of all its processes (the cluster primary and its workers, from
 *                                          /proc/<pid>/stat), and the scaling against one worker
 *
 * Children are killed when this process exits, on error and on Ctrl-C too; they also exit by themselves when the IPC
 * channel to this process closes.
 *
 * @since 1.0.0
 */
import autocannon from "autocannon"
import type { ChildProcess } from "node:child_process"
import { fork, spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import * as os from "node:os"
import { fileURLToPath } from "node:url"
import type { Feature } from "../../examples/analytics/Features.js"
import { configPrefix, features } from "../../examples/analytics/Features.js"
import type { Overrides } from "../../examples/analytics/harness/Simulator.js"
import type { Stats } from "./harness.js"
import { fmt, fmtStats, heading, machine, stats, table } from "./harness.js"
import * as Profile from "./load/profile.js"
import type { Command, Kind, Message } from "./load/target.js"

const flag = (name: string, fallback: number): number => {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`))
  if (arg === undefined) return fallback
  const value = Number(arg.slice(name.length + 3))
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`--${name} must be a positive integer, got ${arg}`)
  return value
}
const quick = process.argv.includes("--quick")
const cpuProf = process.argv.includes("--cpu-prof")
const seconds = flag("seconds", cpuProf ? 10 : quick ? 2 : 3)
const singleSeconds = flag("single-seconds", quick ? 1 : 2)
const rounds = flag("rounds", quick ? 2 : 4)
const workersMode = process.argv.includes("--workers")
const choicesMode = process.argv.includes("--choices")
const maxWorkers = flag("max-workers", 2)
const connections = flag("connections", workersMode ? 32 : 16)

const targetFile = fileURLToPath(new URL("./load/target.ts", import.meta.url))
/** Where each process's output goes: the servers log every failed call, which is how an unexpected answer is explained. */
const logDir = fileURLToPath(new URL("../../node_modules/.cache/bench-load/", import.meta.url))
const profileDir = `${logDir}profiles/`

interface Child {
  readonly kind: Kind
  readonly process: ChildProcess
  readonly ready: Extract<Message, { type: "ready" }>
  readonly ask: (command: Command) => Promise<Message>
  /** It hedges its calls (`FEATURE_HEDGE` set and not `off`): an ok panel may have taken 2 calls. */
  readonly hedged: boolean
}

/** Every child started, so that none outlives this process whatever way it ends. */
const started = new Set<ChildProcess>()
const killAll = () => {
  for (const child of started) if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM")
}
process.on("exit", killAll)
for (const signal of ["SIGINT", "SIGTERM"] as const) {
  process.on(signal, () => {
    killAll()
    process.exit(130)
  })
}

const start = (
  kind: Kind,
  env: Record<string, string> = {},
  execArgv: ReadonlyArray<string> = [],
  logName: string = kind
): Promise<Child> =>
  new Promise((resolve, reject) => {
    Fs.mkdirSync(logDir, { recursive: true })
    const log = Fs.openSync(`${logDir}${logName}.log`, "w")
    const child = fork(targetFile, [kind], {
      execArgv: ["--import", "tsx", ...execArgv],
      env: { ...process.env, ...env },
      stdio: ["ignore", log, log, "ipc"]
    })
    started.add(child)
    Fs.closeSync(log)
    const waiting: Array<{ readonly answer: (message: Message) => void; readonly fail: (error: Error) => void }> = []
    let exited: Error | undefined
    child.on("message", (message: Message) => {
      if (message.type === "ready") {
        resolve({
          kind,
          process: child,
          hedged: env.FEATURE_HEDGE !== undefined && env.FEATURE_HEDGE !== "off",
          ready: message,
          ask: (command) =>
            new Promise((answer, fail) => {
              if (exited !== undefined) return fail(exited)
              waiting.push({ answer, fail })
              child.send(command)
            })
        })
      } else waiting.shift()?.answer(message)
    })
    // A server that dies during a run fails the benchmark instead of leaving it waiting for an answer.
    child.once("exit", (code, signal) => {
      started.delete(child)
      exited = new Error(`the ${kind} process exited (${signal ?? `code ${code}`}); its log: ${logDir}${logName}.log`)
      reject(exited)
      for (const { fail } of waiting.splice(0)) fail(exited)
    })
  })

/** Ends a child by closing its IPC channel (it exits by itself, writing its profile if it has one). */
const stop = (child: Child): Promise<void> =>
  new Promise((resolve) => {
    if (child.process.exitCode !== null || child.process.signalCode !== null) return resolve()
    const timer = setTimeout(() => child.process.kill("SIGKILL"), 10_000)
    child.process.once("exit", () => {
      clearTimeout(timer)
      resolve()
    })
    if (child.process.connected) child.process.disconnect()
    else child.process.kill("SIGTERM")
  })

interface Scenario {
  readonly name: string
  readonly mode: "partial" | "strict"
  readonly overrides: Overrides
  readonly status: number
  /**
   * Checks one answer's body, for the customer asked about; returns what is wrong, or `undefined`. `attempts`: the
   * calls an ok panel may have taken (2 for a server that hedges).
   */
  readonly check: (body: any, customerId: string, attempts: number) => string | undefined
}

const isOkPanel = (attempts: number) => (panel: any, feature: Feature) =>
  panel?.status === "ok" && panel.feature === feature && typeof panel.durationMs === "number" &&
  Number.isInteger(panel.attempts) && panel.attempts >= 1 && panel.attempts <= attempts &&
  Number.isInteger(panel.usage?.count) && panel.usage.count >= 0 &&
  (panel.usage.lastUsedAt === null || typeof panel.usage.lastUsedAt === "string")

/** A usage page for `customerId` in `mode`, each panel in the table's order as `expect` says. */
const page = (body: any, customerId: string, mode: string, expect: (panel: any, feature: Feature) => boolean) =>
  body?.customerId === customerId && body.mode === mode && typeof body.durationMs === "number" &&
  Array.isArray(body.panels) && body.panels.length === features.length &&
  features.every((feature, i) => expect(body.panels[i], feature))

const healthy = (mode: "partial" | "strict"): Scenario => ({
  name: `healthy, ${mode}`,
  mode,
  overrides: {},
  status: 200,
  check: (body, customerId, attempts) =>
    body?.complete === true && page(body, customerId, mode, isOkPanel(attempts)) ?
      undefined :
      "expected twelve ok panels"
})

const scenarios: ReadonlyArray<Scenario> = [
  healthy("partial"),
  healthy("strict"),
  {
    name: "payments 503, partial",
    mode: "partial",
    overrides: { payments: { errorRate: 1 } },
    status: 200,
    check: (body, customerId, attempts) =>
      body?.complete === false && page(body, customerId, "partial", (panel, feature) =>
          feature === "payments" ?
            panel?.status === "failed" && panel.feature === "payments" && panel.reason === "unavailable" &&
            panel.attempts === 1 :
            isOkPanel(attempts)(panel, feature)) ?
        undefined :
        "expected eleven ok panels and payments failed (unavailable)"
  },
  {
    name: "payments 503, strict",
    mode: "strict",
    overrides: { payments: { errorRate: 1 } },
    status: 502,
    check: (body) =>
      body?._tag === "FeatureFailed" && body.feature === "payments" && body.reason === "unavailable" &&
        body.attempts === 1 && typeof body.message === "string" ?
        undefined :
        "expected FeatureFailed naming payments (unavailable, 1 attempt)"
  }
]

/** The scenarios a run measures: `--choices`, healthy partial only. */
const measured = choicesMode ? scenarios.slice(0, 1) : scenarios

const customer = (i: number) => `c-${1000 + (i % 500)}`
const path = (scenario: Scenario, customerId: string) => `/customers/${customerId}/usage?mode=${scenario.mode}`

/** What is wrong with one answer, or `undefined`. */
const judge = (
  scenario: Scenario,
  customerId: string,
  status: number,
  text: string,
  attempts: number
): string | undefined => {
  if (status !== scenario.status) return `status ${status}`
  let body: unknown
  try {
    body = JSON.parse(text)
  } catch {
    return "a body that is not JSON"
  }
  return scenario.check(body, customerId, attempts)
}

/** The calls an ok panel of `child` may take: 2 when it hedges (`FEATURE_HEDGE`), else 1. */
const attemptsOf = (child: Child): number => child.hedged ? 2 : 1

const verify = async (child: Child, scenario: Scenario) => {
  const customerId = customer(42)
  const response = await fetch(child.ready.url! + path(scenario, customerId))
  const text = await response.text()
  const wrong = judge(scenario, customerId, response.status, text, attemptsOf(child))
  if (wrong !== undefined) {
    throw new Error(`${child.kind} answers "${scenario.name}" wrongly: ${wrong}\n${text.slice(0, 400)}`)
  }
}

interface Sample {
  readonly rps: number
  readonly answered: number
  readonly p50: number
  readonly p99: number
  readonly cpuMicrosPerRequest: number
  readonly rss: number
  /** Answers with another status or a body of another shape, plus errors and timeouts. */
  readonly unexpected: number
  /** What they were: `3 × status 504`, `2 errors`. */
  readonly unexpectedDetail: ReadonlyArray<string>
}

/** One run: as many requests as `open` connections can send in `duration` seconds, one at a time on each. */
const load = async (target: Child, scenario: Scenario, duration: number, open: number): Promise<Sample> => {
  const wrong = new Map<string, number>()
  let i = 0
  const before = await target.ask({ type: "usage" })
  const result = await autocannon({
    url: target.ready.url!,
    connections: open,
    duration,
    requests: [{
      method: "GET",
      // One request at a time per connection: its context holds the customer the answer is about.
      setupRequest: (request, context: any) => {
        context.customerId = customer(i++)
        return { ...request, path: path(scenario, context.customerId) }
      },
      onResponse: (status, body, context: any) => {
        const what = judge(scenario, context.customerId, status, body, attemptsOf(target))
        if (what !== undefined) wrong.set(what, (wrong.get(what) ?? 0) + 1)
      }
    }]
  })
  const after = await target.ask({ type: "usage" })
  if (before.type !== "usage" || after.type !== "usage") throw new Error("unexpected answer to a usage request")
  const answered = result.requests.total
  const wrongCount = [...wrong.values()].reduce((a, b) => a + b, 0)
  return {
    rps: answered / result.duration,
    answered,
    p50: result.latency.p50,
    p99: result.latency.p99,
    cpuMicrosPerRequest: (after.cpuMicros - before.cpuMicros) / Math.max(answered, 1),
    rss: after.rss,
    unexpected: wrongCount + result.errors + result.timeouts,
    unexpectedDetail: [
      ...[...wrong].map(([what, count]) => `${count} × ${what}`),
      ...(result.errors > 0 ? [`${result.errors} errors`] : []),
      ...(result.timeouts > 0 ? [`${result.timeouts} timeouts`] : [])
    ]
  }
}

interface Target {
  readonly kind: Kind
  readonly name: string
  /** Extra environment of its process (`--choices`: the app's settings). */
  readonly env?: Record<string, string>
}

const nodeTarget: Target = { kind: "node", name: "node:http + Promises" }

const comparedTargets: ReadonlyArray<Target> = [
  { kind: "fanout", name: "effect-fanout (the app)" },
  { kind: "effect-all", name: "Effect.all" },
  nodeTarget
]

/**
 * `--choices`: the app as deployed (undici, 32 connections per service, spans made and not exported) and the app with
 * one choice changed, plain Node in the same run. Spans exported go over OTLP/HTTP to a sink in this process that
 * answers every POST 200 (the exporter's batching and JSON encoding are counted, a collector's work is not).
 */
const choiceTargets: ReadonlyArray<Target> = [
  { kind: "fanout", name: "the app as deployed" },
  { kind: "fanout", name: "node:http client (FEATURE_HTTP_CLIENT=node)", env: { FEATURE_HTTP_CLIENT: "node" } },
  { kind: "fanout", name: "4 connections per service", env: { FEATURE_CONNECTIONS: "4" } },
  { kind: "fanout", name: "128 connections per service", env: { FEATURE_CONNECTIONS: "128" } },
  { kind: "fanout", name: "no spans (TracerEnabled false)", env: { BENCH_SPANS: "off" } },
  { kind: "fanout", name: "spans exported (OTLP/HTTP)", env: { BENCH_SPANS: "otlp" } },
  {
    kind: "fanout",
    name: "spans exported, 1 trace in 10 (OTEL_TRACES_SAMPLER_ARG=0.1)",
    env: { BENCH_SPANS: "otlp", OTEL_TRACES_SAMPLER: "parentbased_traceidratio", OTEL_TRACES_SAMPLER_ARG: "0.1" }
  },
  { kind: "fanout", name: "metrics exported (OTLP/HTTP, every 1 s)", env: { BENCH_METRICS: "otlp" } },
  { kind: "fanout", name: "hedged calls (FEATURE_HEDGE=p95)", env: { FEATURE_HEDGE: "p95" } },
  nodeTarget
]

const targets = choicesMode ? choiceTargets : comparedTargets

/** `--choices`: where exported spans go (`BENCH_OTLP_ENDPOINT` of the app's process). */
let sinkEnv: Record<string, string> = {}

/** An OTLP/HTTP endpoint on loopback that reads every request and answers 200 (`{}`), counting the spans' bytes. */
const startSink = (): Promise<{ readonly url: string; readonly close: () => void }> =>
  new Promise((resolve) => {
    const server = Http.createServer((request, response) => {
      request.resume()
      request.on("end", () => {
        response.writeHead(200, { "content-type": "application/json" })
        response.end("{}")
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as Net.AddressInfo
      resolve({
        url: `http://127.0.0.1:${port}`,
        close: () => {
          server.closeAllConnections()
          server.close()
        }
      })
    })
  })

const startSimulators = () => start("simulators")
const serverEnv = (simulators: Child) => ({ FEATURE_URLS: JSON.stringify(simulators.ready.urls) })

const header = () => {
  console.log(`${machine()}`)
  console.log(`uptime: ${
    (() => {
      try {
        return Fs.readFileSync("/proc/loadavg", "utf8").trim()
      } catch {
        return os.loadavg().join(" ")
      }
    })()
  } (load averages 1/5/15 min, running/total tasks, last pid)`)
}

const main = async () => {
  const t0 = performance.now()
  header()
  console.log(
    `${connections} connections saturated for ${seconds} s, then 1 connection for ${singleSeconds} s, per server; ` +
      `${rounds} rounds after a warm-up round; started ${new Date().toISOString()}`
  )
  const simulators = await startSimulators()
  const children: Array<Child> = [simulators]
  const sink = choicesMode ? await startSink() : undefined
  if (sink !== undefined) sinkEnv = { BENCH_OTLP_ENDPOINT: sink.url }
  try {
    const servers = await Promise.all(
      targets.map(async (t, i) => ({
        ...t,
        child: await start(t.kind, { ...serverEnv(simulators), ...t.env, ...sinkEnv }, [], `${t.kind}-${i}`)
      }))
    )
    children.push(...servers.map((s) => s.child))
    const samples = new Map<string, Array<Sample>>()
    for (const [n, scenario] of measured.entries()) {
      await simulators.ask({ type: "scenario", overrides: scenario.overrides })
      for (const server of servers) await verify(server.child, scenario)
      for (let round = 0; round <= rounds; round++) {
        for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
          const warmUp = round === 0
          const saturated = await load(server.child, scenario, warmUp ? (n === 0 ? 2 : 1) : seconds, connections)
          const single = await load(server.child, scenario, warmUp ? 1 : singleSeconds, 1)
          if (warmUp) continue
          for (const [kind, sample] of [["saturated", saturated], ["single", single]] as const) {
            const key = `${scenario.name}|${server.name}|${kind}`
            samples.set(key, [...(samples.get(key) ?? []), sample])
          }
        }
      }
      console.log(`  ${scenario.name}: done (${Math.round((performance.now() - t0) / 1000)} s)`)
    }
    report(samples)
  } finally {
    await Promise.all(children.map(stop))
    sink?.close()
  }
  console.log(
    `\nTotal ${Math.round((performance.now() - t0) / 1000)} s. uptime at the end: ${
      os.loadavg().map((l) => l.toFixed(2)).join(" ")
    }`
  )
}

const targetsOf17 = { cpu: 1.5, rps: 0.65, p99: 1.2 }

const report = (samples: Map<string, Array<Sample>>) => {
  const runs = (scenario: Scenario, name: string, kind: "saturated" | "single") =>
    samples.get(`${scenario.name}|${name}|${kind}`) ?? []
  const of = (scenario: Scenario, name: string, kind: "saturated" | "single", pick: (s: Sample) => number): Stats =>
    stats(runs(scenario, name, kind).map(pick))
  const node = nodeTarget.name
  /** This server's median over plain Node's, same scenario, same run. */
  const x = (a: Stats, b: Stats) => `${fmt(a.median / b.median, 2)}×`
  let broken = false
  const details: Array<string> = []
  const verdicts: Array<string> = []
  const rows: Array<ReadonlyArray<string>> = []
  for (const scenario of measured) {
    const baseCpu = of(scenario, targets[0]!.name, "saturated", (s) => s.cpuMicrosPerRequest)
    const nodeRps = of(scenario, node, "saturated", (s) => s.rps)
    const nodeCpu = of(scenario, node, "saturated", (s) => s.cpuMicrosPerRequest)
    const nodeP99 = of(scenario, node, "single", (s) => s.p99)
    for (const { name } of targets) {
      const rps = of(scenario, name, "saturated", (s) => s.rps)
      const cpu = of(scenario, name, "saturated", (s) => s.cpuMicrosPerRequest)
      const p50 = of(scenario, name, "single", (s) => s.p50)
      const p99 = of(scenario, name, "single", (s) => s.p99)
      const all = [...runs(scenario, name, "saturated"), ...runs(scenario, name, "single")]
      const unexpected = all.reduce((n, s) => n + s.unexpected, 0)
      const answered = all.reduce((n, s) => n + s.answered, 0)
      if (unexpected > 0) {
        details.push(`${scenario.name}, ${name}: ${all.flatMap((s) => s.unexpectedDetail).join(", ")} of ${answered}`)
        broken ||= unexpected > answered / 100
      }
      rows.push([
        name === targets[0]!.name ? scenario.name : "",
        name,
        fmtStats(rps, 0),
        x(rps, nodeRps),
        fmtStats(cpu, 0),
        x(cpu, nodeCpu),
        ...(choicesMode ? [x(cpu, baseCpu)] : []),
        `${fmt(p50.median, 0)} / ${fmtStats(p99, 0)}`,
        x(p99, nodeP99),
        fmt(Math.max(...all.map((s) => s.rss)) / 2 ** 20, 0),
        `${unexpected} / ${answered}`
      ])
      if (name === targets[0]!.name && scenario.name.startsWith("healthy")) {
        const check = (label: string, ratio: number, limit: number, atMost: boolean) =>
          `${label} ${fmt(ratio, 2)}× (${atMost ? "≤" : "≥"} ${limit}×: ${
            (atMost ? ratio <= limit : ratio >= limit) ? "met" : "MISSED"
          })`
        verdicts.push(
          `${scenario.name}: ` + [
            check("CPU per request", cpu.median / nodeCpu.median, targetsOf17.cpu, true),
            check("throughput", rps.median / nodeRps.median, targetsOf17.rps, false),
            check("p99 alone", p99.median / nodeP99.median, targetsOf17.p99, true)
          ].join("; ")
        )
      }
    }
  }
  heading(`GET /customers/:id/usage, twelve simulators (5–10 ms), ${connections} connections / 1 connection`)
  console.log(table(
    [
      "scenario",
      "server",
      "requests/s",
      "× node",
      "CPU µs/request",
      "× node",
      ...(choicesMode ? ["CPU × the app as deployed"] : []),
      "p50 / p99 ms, alone",
      "p99 × node",
      "RSS MB",
      "unexpected / answers"
    ],
    rows,
    2
  ))
  console.log(
    `\nrequests/s and CPU: ${connections} connections, each sending its next request as soon as the previous one is ` +
      `answered; CPU = user + system time of the server's process per answered request. "alone": one connection, ` +
      `one request at a time. "× node" = this server's median / plain Node's median, same scenario, same run ` +
      `(requests/s: higher is better; CPU, p99: lower is better). Median (min–max) over ${rounds} rounds of ` +
      `${seconds} s saturated + ${singleSeconds} s alone per server. "unexpected": answers with another status or ` +
      `body shape than the scenario's, errors and timeouts, over all runs.`
  )
  console.log(`\nTargets of issue 17 (the app against plain Node):\n${verdicts.map((v) => `  ${v}`).join("\n")}`)
  if (details.length > 0) console.log(`\nUnexpected answers: ${details.join("; ")}. The servers' logs: ${logDir}`)
  if (broken) {
    console.error("\nMore than 1% of a server's answers were unexpected: the figures above are not comparable.")
    process.exitCode = 1
  }
}

/** `--cpu-prof`: the app alone under `node --cpu-prof`, saturated, healthy partial then strict. */
const profile = async () => {
  header()
  Fs.rmSync(profileDir, { recursive: true, force: true })
  Fs.mkdirSync(profileDir, { recursive: true })
  const simulators = await startSimulators()
  const children: Array<Child> = [simulators]
  try {
    const app = await start("fanout", serverEnv(simulators), ["--cpu-prof", `--cpu-prof-dir=${profileDir}`])
    children.push(app)
    for (const scenario of scenarios.slice(0, 2)) {
      await verify(app, scenario)
      await load(app, scenario, 2, connections) // warm-up
      const sample = await load(app, scenario, seconds, connections)
      console.log(
        `${scenario.name}: ${fmt(sample.rps, 0)} requests/s, ${fmt(sample.cpuMicrosPerRequest, 0)} µs CPU/request, ` +
          `${sample.unexpected} unexpected of ${sample.answered}`
      )
    }
  } finally {
    await Promise.all(children.map(stop))
  }
  const files = Fs.readdirSync(profileDir).filter((f) => f.endsWith(".cpuprofile"))
  if (files.length === 0) throw new Error(`no profile written in ${profileDir}`)
  console.log(`\n${Profile.summarize(`${profileDir}${files[0]}`, 25)}`)
}

// ---------------------------------------------------------------------------------------------------------------
// --workers: the app on N processes sharing one port, as `npm run serve -- --workers=N` runs it

const serveFile = fileURLToPath(new URL("../serve.ts", import.meta.url))
const clockTicks = 100 // USER_HZ: the unit of utime and stime in /proc/<pid>/stat on Linux

/**
 * The pids of `pid`'s children that run serve.ts (the cluster's workers), from /proc: not tsx's esbuild service, a
 * child of every process here, whose CPU is the loader's, not the app's.
 */
const childrenOf = (pid: number): Array<number> =>
  Fs.readdirSync("/proc").filter((name) => /^\d+$/.test(name)).flatMap((name) => {
    try {
      const stat = Fs.readFileSync(`/proc/${name}/stat`, "utf8")
      const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
      if (Number(fields[1]) !== pid) return []
      return Fs.readFileSync(`/proc/${name}/cmdline`, "utf8").includes("serve.ts") ? [Number(name)] : []
    } catch {
      return [] // the process ended meanwhile
    }
  })

/** User + system CPU time of `pid` and of its children, in microseconds, and their resident memory in bytes. */
const treeUsage = (pid: number): { readonly cpuMicros: number; readonly rss: number; readonly processes: number } => {
  let cpuMicros = 0
  let rss = 0
  const pids = [pid, ...childrenOf(pid)]
  for (const p of pids) {
    const stat = Fs.readFileSync(`/proc/${p}/stat`, "utf8")
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ")
    // Fields after the command: state(0) ppid(1) ... utime(11) stime(12) ... rss(21), in pages.
    cpuMicros += ((Number(fields[11]) + Number(fields[12])) / clockTicks) * 1e6
    rss += Number(fields[21]) * 4096
  }
  return { cpuMicros, rss, processes: pids.length }
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = Net.createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as Net.AddressInfo
      server.close(() => resolve(port))
    })
  })

/** `npm run serve -- --external --workers=N` on a free port, against the simulators; ready once /health answers. */
const startServe = async (workers: number, simulators: Child): Promise<Child> => {
  const port = await freePort()
  const urls = simulators.ready.urls!
  Fs.mkdirSync(logDir, { recursive: true })
  const log = Fs.openSync(`${logDir}serve-${workers}.log`, "w")
  const child = spawn(process.execPath, ["--import", "tsx", serveFile, "--external", `--workers=${workers}`], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: "127.0.0.1",
      FEATURE_RETRIES: "0",
      // Capacity, not shedding: saturated, the event loop's delay passes the default bound (100 ms) and the API would
      // answer 503 busy to part of the load (the soak does the same).
      MAX_EVENT_LOOP_DELAY: process.env.MAX_EVENT_LOOP_DELAY ?? "60000",
      ...Object.fromEntries(features.map((feature) => [`${configPrefix(feature)}_URL`, urls[feature]]))
    },
    stdio: ["ignore", log, log]
  })
  started.add(child)
  Fs.closeSync(log)
  child.once("exit", () => started.delete(child))
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 300; i++) {
    if (child.exitCode !== null) {
      throw new Error(`serve --workers=${workers} exited; its log: ${logDir}serve-${workers}.log`)
    }
    const up = await fetch(`${url}/health`).then((r) => r.ok, () => false)
    // With workers, every one of them has to be listening: the primary forks them at once, they come up within a second.
    if (up && (workers === 1 || childrenOf(child.pid!).length >= workers)) {
      await new Promise((resolve) => setTimeout(resolve, workers === 1 ? 0 : 1000))
      const pid = child.pid!
      return {
        kind: "fanout",
        process: child,
        hedged: false,
        ready: { type: "ready", url },
        ask: async () => ({ type: "usage", ...treeUsage(pid) })
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(
    `serve --workers=${workers} did not answer /health within 30 s; its log: ${logDir}serve-${workers}.log`
  )
}

/** Stops `serve` as Ctrl-C would (SIGTERM to the primary, which stops its workers), and checks none is left. */
const stopServe = async (child: Child): Promise<void> => {
  const pid = child.process.pid!
  const workerPids = childrenOf(pid)
  await new Promise<void>((resolve) => {
    if (child.process.exitCode !== null || child.process.signalCode !== null) return resolve()
    const timer = setTimeout(() => child.process.kill("SIGKILL"), 15_000)
    child.process.once("exit", () => {
      clearTimeout(timer)
      resolve()
    })
    child.process.kill("SIGTERM")
  })
  const alive = (worker: number) => {
    try {
      // A worker that has exited but not been reaped yet is a zombie: gone, for this purpose.
      return !Fs.readFileSync(`/proc/${worker}/stat`, "utf8").includes(") Z ")
    } catch {
      return false
    }
  }
  for (let i = 0; i < 30 && workerPids.some(alive); i++) await new Promise((resolve) => setTimeout(resolve, 100))
  for (const worker of workerPids.filter(alive)) {
    process.kill(worker, "SIGKILL")
    console.error(`worker ${worker} was still running 3 s after its primary exited: killed`)
    process.exitCode = 1
  }
}

const scaling = async () => {
  const t0 = performance.now()
  header()
  const scenario = scenarios[0]!
  console.log(
    `${connections} connections saturated for ${seconds} s per run, ${rounds} rounds after a warm-up, ` +
      `workers 1 to ${maxWorkers}, ${scenario.name}; started ${new Date().toISOString()}`
  )
  const simulators = await startSimulators()
  const counts = Array.from({ length: maxWorkers }, (_, i) => i + 1)
  const servers: Array<{ readonly workers: number; readonly child: Child }> = []
  try {
    for (const workers of counts) servers.push({ workers, child: await startServe(workers, simulators) })
    for (const server of servers) await verify(server.child, scenario)
    const samples = new Map<number, Array<Sample>>()
    for (let round = 0; round <= rounds; round++) {
      for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
        const sample = await load(server.child, scenario, round === 0 ? 2 : seconds, connections)
        if (round > 0) samples.set(server.workers, [...(samples.get(server.workers) ?? []), sample])
      }
    }
    const one = stats(samples.get(1)!.map((s) => s.rps))
    const rows = counts.map((workers) => {
      const runs = samples.get(workers)!
      const rps = stats(runs.map((s) => s.rps))
      const unexpected = runs.reduce((n, s) => n + s.unexpected, 0)
      const answered = runs.reduce((n, s) => n + s.answered, 0)
      return [
        String(workers),
        String(treeUsage(servers[workers - 1]!.child.process.pid!).processes),
        fmtStats(rps, 0),
        `${fmt(rps.median / one.median, 2)}×`,
        fmtStats(stats(runs.map((s) => s.cpuMicrosPerRequest)), 0),
        fmtStats(stats(runs.map((s) => s.p99)), 0),
        fmt(Math.max(...runs.map((s) => s.rss)) / 2 ** 20, 0),
        `${unexpected} / ${answered}`
      ]
    })
    heading(`serve --workers=N: ${scenario.name}, ${connections} connections`)
    console.log(table(
      [
        "workers",
        "processes",
        "requests/s",
        "× 1 worker",
        "CPU µs/request (all processes)",
        "p99 ms",
        "RSS MB (all)",
        "unexpected / answers"
      ],
      rows,
      1
    ))
    console.log(
      `
One port, \`node:cluster\` (the primary accepts and hands connections to the workers round-robin); ` +
        `with 1 worker, one process and no cluster. CPU: user + system time of the primary and its workers ` +
        `(/proc/<pid>/stat), per answered request. The load generator (this process) and the simulators ` +
        `run on the same ${os.cpus().length} cores. Median (min–max) over ${rounds} rounds, servers alternated.`
    )
    for (const workers of counts) {
      const detail = samples.get(workers)!.flatMap((s) => s.unexpectedDetail)
      if (detail.length > 0) console.log(`\nUnexpected answers, ${workers} worker(s): ${detail.join(", ")}`)
    }
    const broken = counts.some((w) => samples.get(w)!.some((s) => s.unexpected > s.answered / 100))
    if (broken) {
      console.error(`\nMore than 1% unexpected answers in a run; the logs: ${logDir}`)
      process.exitCode = 1
    }
  } finally {
    await Promise.all(servers.map((s) => stopServe(s.child)))
    await stop(simulators)
  }
  console.log(`\nTotal ${Math.round((performance.now() - t0) / 1000)} s.`)
}

await (cpuProf ? profile() : workersMode ? scaling() : main()).catch((error) => {
  console.error(error instanceof Error ? error.stack ?? error.message : error)
  process.exitCode = 1
})
