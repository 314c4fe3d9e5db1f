/**
 * `npm run bench:load`: the reference application under load, against the same endpoint written with `Effect.all`
 * and with plain Node Promises, in one run.
 *
 * Four processes: the twelve simulated feature services (healthy, 5–10 ms per answer), and three servers of
 * `GET /customers/:id/usage` over them, each in its own process so that its CPU time is its own (see
 * ./load/target.ts): the application (`fanout`), the application with its fan-out written with `Effect.all`
 * (`effect-all`), and plain `node:http` + Promises (`node`). This process drives them with autocannon (a fixed number
 * of connections, each sending its next request when the previous one is answered).
 *
 * Scenarios: every service healthy, and one service (payments) answering 503, each in `partial` and `strict` mode.
 * Before measuring, each server's answer to each scenario is checked (status and body); during the runs every
 * response should have the scenario's status: the others are counted and listed, and if they are more than 1% of a
 * server's answers in a scenario (a broken server, not a rare 504 of an overloaded one) the run exits with code 1.
 *
 * Each round runs every server twice: saturated (`--connections`, each sending its next request as soon as the
 * previous one is answered), for the most requests per second and the CPU time of the server's process per request
 * (user + system: what the server costs, the least noisy figure on a shared machine); and one request at a time (one
 * connection), for the latency of a request that waits for nothing but its own twelve calls, p50 and p99.
 * Reported per scenario and server: medians over the rounds (min–max), the resident memory, and ratios against the
 * two peers measured in the same run. Rounds alternate the servers' order so that a change of load on the machine
 * hits each of them.
 *
 *   npm run bench:load                          3 s per run, 5 rounds after a warm-up round
 *   npm run bench:load -- --quick               2 s per run, 2 rounds
 *   npm run bench:load -- --seconds=10 --rounds=5 --connections=32
 */
import autocannon from "autocannon"
import { fork } from "node:child_process"
import type { ChildProcess } from "node:child_process"
import * as Fs from "node:fs"
import * as os from "node:os"
import { fileURLToPath } from "node:url"
import type { Overrides } from "../../examples/analytics/Simulator.js"
import type { Stats } from "./harness.js"
import { fmt, fmtStats, heading, machine, ratio, stats, table } from "./harness.js"
import type { Command, Kind, Message } from "./load/target.js"

const flag = (name: string, fallback: number): number => {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`))
  if (arg === undefined) return fallback
  const value = Number(arg.slice(name.length + 3))
  if (!Number.isInteger(value) || value <= 0) throw new RangeError(`--${name} must be a positive integer, got ${arg}`)
  return value
}
const quick = process.argv.includes("--quick")
const seconds = flag("seconds", quick ? 2 : 3)
const rounds = flag("rounds", quick ? 2 : 5)
const connections = flag("connections", 16)

const targetFile = fileURLToPath(new URL("./load/target.ts", import.meta.url))
/** Where each process's output goes: the servers log every failed call, which is how an unexpected answer is explained. */
const logDir = fileURLToPath(new URL("../../node_modules/.cache/bench-load/", import.meta.url))

interface Child {
  readonly process: ChildProcess
  readonly ready: Extract<Message, { type: "ready" }>
  readonly ask: (command: Command) => Promise<Message>
}

const start = (kind: Kind, env: Record<string, string> = {}): Promise<Child> =>
  new Promise((resolve, reject) => {
    Fs.mkdirSync(logDir, { recursive: true })
    const log = Fs.openSync(`${logDir}${kind}.log`, "w")
    const child = fork(targetFile, [kind], {
      execArgv: ["--import", "tsx"],
      env: { ...process.env, ...env },
      stdio: ["ignore", log, "inherit", "ipc"]
    })
    Fs.closeSync(log)
    const waiting: Array<{ readonly answer: (message: Message) => void; readonly fail: (error: Error) => void }> = []
    let exited: Error | undefined
    child.on("message", (message: Message) => {
      if (message.type === "ready") {
        resolve({
          process: child,
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
      exited = new Error(`the ${kind} process exited (${signal ?? `code ${code}`})`)
      reject(exited)
      for (const { fail } of waiting.splice(0)) fail(exited)
    })
  })

interface Scenario {
  readonly name: string
  readonly mode: "partial" | "strict"
  readonly overrides: Overrides
  readonly status: number
  /** Checks one answer's body; returns what is wrong, or `undefined`. */
  readonly check: (body: any) => string | undefined
}

const allOk = (body: any) =>
  body.complete === true && body.panels?.length === 12 && body.panels.every((p: any) => p.status === "ok") ?
    undefined :
    "expected twelve ok panels"

const scenarios: ReadonlyArray<Scenario> = [
  { name: "healthy, partial", mode: "partial", overrides: {}, status: 200, check: allOk },
  { name: "healthy, strict", mode: "strict", overrides: {}, status: 200, check: allOk },
  {
    name: "payments 503, partial",
    mode: "partial",
    overrides: { payments: { errorRate: 1 } },
    status: 200,
    check: (body) => {
      const failed = body.panels?.filter((p: any) => p.status !== "ok") ?? []
      return body.complete === false && failed.length === 1 && failed[0].feature === "payments" &&
          failed[0].reason === "unavailable" ?
        undefined :
        "expected eleven ok panels and payments failed (unavailable)"
    }
  },
  {
    name: "payments 503, strict",
    mode: "strict",
    overrides: { payments: { errorRate: 1 } },
    status: 502,
    check: (body) =>
      body._tag === "FeatureFailed" && body.feature === "payments"
        ? undefined
        : "expected FeatureFailed naming payments"
  }
]

const path = (scenario: Scenario, i: number) => `/customers/c-${1000 + (i % 500)}/usage?mode=${scenario.mode}`

const verify = async (name: string, base: string, scenario: Scenario) => {
  const response = await fetch(base + path(scenario, 42))
  const body = await response.json()
  const wrong = response.status !== scenario.status ?
    `status ${response.status}, expected ${scenario.status}` :
    scenario.check(body)
  if (wrong !== undefined) {
    throw new Error(`${name} answers "${scenario.name}" wrongly: ${wrong}\n${JSON.stringify(body).slice(0, 400)}`)
  }
}

interface Sample {
  readonly rps: number
  readonly answered: number
  readonly p50: number
  readonly p99: number
  readonly cpuMicrosPerRequest: number
  readonly rss: number
  /** Responses with another status than the scenario's, plus errors and timeouts. */
  readonly unexpected: number
  /** What they were: `1 × 504`, `2 errors`. */
  readonly unexpectedDetail: ReadonlyArray<string>
}

/** One run: as many requests as `open` connections can send in `duration` seconds, one at a time on each. */
const load = async (target: Child, scenario: Scenario, duration: number, open: number): Promise<Sample> => {
  const before = await target.ask({ type: "usage" })
  let i = 0
  const result = await autocannon({
    url: target.ready.url!,
    connections: open,
    duration,
    requests: [{ method: "GET", setupRequest: (request) => ({ ...request, path: path(scenario, i++) }) }]
  })
  const after = await target.ask({ type: "usage" })
  if (before.type !== "usage" || after.type !== "usage") throw new Error("unexpected answer to a usage request")
  const answered = result.requests.total
  const byStatus = Object.entries(result.statusCodeStats as Record<string, { count: number }>)
  const expected = byStatus.find(([status]) => status === String(scenario.status))?.[1].count ?? 0
  const unexpectedDetail = [
    ...byStatus.filter(([status]) => status !== String(scenario.status)).map(([status, { count }]) =>
      `${count} × ${status}`
    ),
    ...(result.errors > 0 ? [`${result.errors} errors`] : []),
    ...(result.timeouts > 0 ? [`${result.timeouts} timeouts`] : [])
  ]
  return {
    rps: result.requests.average,
    answered,
    p50: result.latency.p50,
    p99: result.latency.p99,
    cpuMicrosPerRequest: (after.cpuMicros - before.cpuMicros) / Math.max(answered, 1),
    rss: after.rss,
    unexpected: answered - expected + result.errors + result.timeouts,
    unexpectedDetail
  }
}

const targets: ReadonlyArray<{ readonly kind: Kind; readonly name: string }> = [
  { kind: "fanout", name: "effect-fanout (the app)" },
  { kind: "effect-all", name: "Effect.all" },
  { kind: "node", name: "node:http + Promises" }
]

const main = async () => {
  const t0 = performance.now()
  console.log(`${await machine()}; load average ${os.loadavg().map((l) => l.toFixed(2)).join(" ")}`)
  console.log(`${connections} connections, ${seconds} s per run, ${rounds} rounds after a warm-up round`)
  const simulators = await start("simulators")
  const children: Array<Child> = [simulators]
  try {
    const env = { FEATURE_URLS: JSON.stringify(simulators.ready.urls) }
    const servers = await Promise.all(targets.map(async (t) => ({ ...t, child: await start(t.kind, env) })))
    children.push(...servers.map((s) => s.child))
    const samples = new Map<string, Array<Sample>>()
    for (const scenario of scenarios) {
      await simulators.ask({ type: "scenario", overrides: scenario.overrides })
      for (const server of servers) await verify(server.name, server.child.ready.url!, scenario)
      for (let round = 0; round <= rounds; round++) {
        for (const server of round % 2 === 0 ? servers : [...servers].reverse()) {
          const duration = round === 0 ? Math.min(seconds, 2) : seconds
          const saturated = await load(server.child, scenario, duration, connections)
          const single = await load(server.child, scenario, duration, 1)
          if (round === 0) continue // warm-up
          for (const [kind, sample] of [["saturated", saturated], ["single", single]] as const) {
            const key = `${scenario.name}|${server.name}|${kind}`
            samples.set(key, [...(samples.get(key) ?? []), sample])
          }
        }
      }
      process.stdout.write(`  ${scenario.name}: done\n`)
    }
    report(samples)
  } finally {
    for (const child of children) if (child.process.connected) child.process.disconnect()
  }
  console.log(`\nTotal ${Math.round((performance.now() - t0) / 1000)} s.`)
}

const report = (samples: Map<string, Array<Sample>>) => {
  const runs = (scenario: Scenario, name: string, kind: "saturated" | "single") =>
    samples.get(`${scenario.name}|${name}|${kind}`) ?? []
  const of = (scenario: Scenario, name: string, kind: "saturated" | "single", pick: (s: Sample) => number): Stats =>
    stats(runs(scenario, name, kind).map(pick))
  const [, effectAll, node] = targets.map((t) => t.name) as [string, string, string]
  let broken = false
  const details: Array<string> = []
  for (const scenario of scenarios) {
    heading(`${scenario.name}: GET /customers/:id/usage?mode=${scenario.mode}, every answer ${scenario.status}`)
    console.log(table(
      [
        "server",
        "max requests/s",
        "× Effect.all",
        "× node",
        "CPU µs/request",
        "× Effect.all",
        "× node",
        "p50 ms, alone",
        "p99 ms, alone",
        "RSS MB",
        "unexpected"
      ],
      targets.map(({ name }) => {
        const rps = of(scenario, name, "saturated", (s) => s.rps)
        const cpu = of(scenario, name, "saturated", (s) => s.cpuMicrosPerRequest)
        const all = [...runs(scenario, name, "saturated"), ...runs(scenario, name, "single")]
        const unexpected = all.reduce((n, s) => n + s.unexpected, 0)
        if (unexpected > 0) {
          const answered = all.reduce((n, s) => n + s.answered, 0)
          details.push(
            `${scenario.name}, ${name}: ${all.flatMap((s) => s.unexpectedDetail).join(", ")} of ${answered} answers`
          )
          broken ||= unexpected > answered / 100
        }
        return [
          name,
          fmtStats(rps),
          ratio(rps, of(scenario, effectAll, "saturated", (s) => s.rps)),
          ratio(rps, of(scenario, node, "saturated", (s) => s.rps)),
          fmtStats(cpu),
          ratio(of(scenario, effectAll, "saturated", (s) => s.cpuMicrosPerRequest), cpu),
          ratio(of(scenario, node, "saturated", (s) => s.cpuMicrosPerRequest), cpu),
          fmtStats(of(scenario, name, "single", (s) => s.p50)),
          fmtStats(of(scenario, name, "single", (s) => s.p99)),
          fmt(Math.max(...all.map((s) => s.rss)) / 2 ** 20, 0),
          String(unexpected)
        ]
      })
    ))
  }
  console.log(
    `\nmax requests/s and CPU: ${connections} connections, each sending its next request as soon as the previous ` +
      `one is answered; CPU is the user + system time of the server's process per answered request. Latency ` +
      `("alone"): one connection, one request at a time, so a request waits for nothing but its own twelve calls. "× X" = how many times better than X, same scenario, same run (> 1: more requests per ` +
      `second, less CPU per request). "unexpected": answers with another status than the scenario's, errors and ` +
      `timeouts, over all runs. Median (min–max) over ${rounds} rounds of ${seconds} s per server and load.`
  )
  if (details.length > 0) console.log(`\nUnexpected answers: ${details.join("; ")}. The servers' logs: ${logDir}`)
  if (broken) {
    console.error("\nMore than 1% of a server's answers were unexpected: the figures above are not comparable.")
    process.exitCode = 1
  }
}

await main()
