/**
 * `npm run attack`: the analytics API in a child process, its twelve feature services replaced by hostile ones (in
 * this process), and one case after another of what a hostile client or a broken downstream does to it — all over
 * loopback, bounded in time. Per case it prints what the server did (downstream connections and requests, answers by
 * status, the slowest answer against the deadline, the peak resident set and file descriptors of the server process,
 * whether `/health` kept answering) and whether the bound of that case held; exit code 1 when one did not.
 *
 *   npm run attack               the full cases (about a minute)
 *   npm run attack -- --short    smaller bursts and floods, for CI (test/analytics/Attack.test.ts)
 *
 * The last line is `attack: {json}` with every row, for the CI test.
 */
import { spawn } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import * as Net from "node:net"
import { monitorEventLoopDelay } from "node:perf_hooks"
import { fileURLToPath } from "node:url"
import { configPrefix, features } from "../examples/analytics/Features.js"
import * as Downstream from "./attack/Downstream.js"

const argv = process.argv.slice(2)
for (const arg of argv) {
  if (arg !== "--short") {
    console.error(`attack: unrecognised flag ${arg} (the only flag is --short)`)
    process.exit(2)
  }
}
const short = argv.includes("--short")
const size = <A>(full: A, small: A): A => short ? small : full

/** The server's bounds at their defaults, as the cases check them (see Admission.ts, FeatureClient.ts, Listen.ts). */
const bounds = {
  perConnection: 4,
  maxConnections: 512,
  connectionsPerService: 32,
  maxBodyBytes: 65_536,
  /** 12 features × 3 attempts × 2 sends (the transport sends a request that got no answer once more). */
  callsPerRequest: 72
}
const deadlineMs = 2_000
/** The server's `HEADERS_TIMEOUT`: its default in the full run, shorter for CI. */
const headersTimeoutSeconds = size(10, 2)
/** How late past its deadline an answer may come: the time to write it, on a loaded event loop. */
const slackMs = 500

// ---- the server process ---------------------------------------------------------------------------------------

const downstream = await Downstream.start()
const app = spawn(process.execPath, ["--import", "tsx", fileURLToPath(new URL("./attack/app.ts", import.meta.url))], {
  env: {
    ...process.env,
    ...Object.fromEntries(features.map((feature) => [`${configPrefix(feature)}_URL`, downstream.urls[feature]])),
    PORT: "0",
    HEADERS_TIMEOUT: `${headersTimeoutSeconds} seconds`,
    HOST: "127.0.0.1"
  },
  // stdin: a pipe the server watches, so that it stops when this process ends, whichever way.
  stdio: ["pipe", "pipe", "pipe"]
})
process.on("exit", () => app.kill("SIGKILL"))
for (const signal of ["SIGINT", "SIGTERM"] as const) process.on(signal, () => process.exit(1))
let logBytes = 0
const base = await new Promise<string>((resolve, reject) => {
  let seen = ""
  const timer = setTimeout(() => reject(new Error(`the server did not start: ${seen}`)), 30_000)
  app.stdout.on("data", (data: Buffer) => {
    logBytes += data.length
    if (seen.length < 10_000) seen += data.toString()
    const ready = /ready (http:\/\/127\.0\.0\.1:\d+)/.exec(seen)
    if (ready !== null) {
      clearTimeout(timer)
      resolve(ready[1]!)
    }
  })
  app.stderr.on("data", (data: Buffer) => {
    logBytes += data.length
    if (seen.length < 10_000) seen += data.toString()
  })
  app.once("exit", (code) => reject(new Error(`the server exited with ${code}: ${seen}`)))
})
const { port } = new URL(base)

const sampleServer = () => {
  const status = Fs.readFileSync(`/proc/${app.pid}/status`, "utf8")
  const rssKb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0)
  return { rssMb: rssKb / 1024, fds: Fs.readdirSync(`/proc/${app.pid}/fd`).length }
}

// ---- clients ------------------------------------------------------------------------------------------------------

interface Answer {
  readonly status: number
  readonly ms: number
  readonly bodyBytes: number
  readonly headers: Record<string, string>
  readonly body: string
}

/**
 * Sends `requests` (raw HTTP/1.1 request heads) on one connection at once, pipelined, and reads the answers in order:
 * each with its status and its time since the send. Answers missing when the connection closes are left out.
 */
const pipelined = (requests: ReadonlyArray<string>, timeoutMs: number): Promise<Array<Answer>> =>
  new Promise((resolve) => {
    const answers: Array<Answer> = []
    let buffer = Buffer.alloc(0)
    const socket = Net.connect(Number(port), "127.0.0.1")
    const started = performance.now()
    const done = () => {
      clearTimeout(timer)
      socket.destroy()
      resolve(answers)
    }
    const timer = setTimeout(done, timeoutMs)
    socket.on("connect", () => socket.write(requests.join("")))
    socket.on("data", (data: Buffer) => {
      buffer = Buffer.concat([buffer, data])
      for (;;) {
        const end = buffer.indexOf("\r\n\r\n")
        if (end === -1) break
        const head = buffer.subarray(0, end).toString("latin1").split("\r\n")
        const headers: Record<string, string> = {}
        for (const line of head.slice(1)) {
          const colon = line.indexOf(":")
          headers[line.slice(0, colon).toLowerCase()] = line.slice(colon + 1).trim()
        }
        const length = Number(headers["content-length"] ?? 0)
        if (buffer.length < end + 4 + length) break
        const body = buffer.subarray(end + 4, end + 4 + length).toString("utf8")
        answers.push({
          status: Number(head[0]!.split(" ")[1]),
          ms: performance.now() - started,
          bodyBytes: length,
          headers,
          body
        })
        buffer = buffer.subarray(end + 4 + length)
      }
      if (answers.length === requests.length) done()
    })
    socket.on("error", () => undefined)
    socket.on("close", done)
  })

const get = (path: string, method = "GET") => `${method} ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`
const usagePath = (n: number) => `/customers/c-${n}/usage?mode=partial&deadlineMs=${deadlineMs}`

/** One request on a connection of its own. */
const single = async (path: string, method = "GET") => (await pipelined([get(path, method)], 15_000))[0]

/** `GET /health` every 100 ms on a new connection, answered within a second or counted as failed. */
const healthProbe = () => {
  let ok = 0
  let failed = 0
  let slowestMs = 0
  const probe = () => {
    const sent = performance.now()
    const request = Http.get({ host: "127.0.0.1", port, path: "/health", agent: false, timeout: 1_000 }, (response) => {
      response.resume()
      response.on("end", () => {
        if (response.statusCode !== 200) return void failed++
        ok++
        slowestMs = Math.max(slowestMs, performance.now() - sent)
      })
    })
    request.on("timeout", () => request.destroy(new Error("timeout")))
    request.on("error", () => failed++)
  }
  const timer = setInterval(probe, 100)
  return {
    stop: async () => {
      clearInterval(timer)
      await new Promise((resolve) => setTimeout(resolve, 1_100))
      return { ok, failed, slowestMs: Math.round(slowestMs) }
    }
  }
}

// ---- cases ----------------------------------------------------------------------------------------------------

/** One case's line of the table (and of the JSON verdict the test reads). */
export interface Row {
  readonly name: string
  readonly requests: number
  readonly statuses: Record<string, number>
  readonly downstreamConnections: number
  readonly downstreamRequests: number
  readonly slowestMs: number
  readonly peakRssMb: number
  readonly peakFds: number
  /** The probes answered 200 and those not (another status, an error, no answer within a second); the slowest 200. */
  readonly health: { readonly ok: number; readonly failed: number; readonly slowestMs: number }
  readonly broken: ReadonlyArray<string>
  readonly note: string
}

const rows: Array<Row> = []

const byStatus = (answers: ReadonlyArray<Answer>) => {
  const statuses: Record<string, number> = {}
  for (const answer of answers) statuses[answer.status] = (statuses[answer.status] ?? 0) + 1
  return statuses
}

/**
 * Runs one case: sets the downstream modes, samples the server's memory and descriptors every 50 ms and probes
 * `/health` while `run` runs; `run` returns the answers it saw, what broke its bound and a note.
 */
const attack = async (
  name: string,
  modes: Parameters<Downstream.Downstream["set"]>[0],
  run: () => Promise<{ answers: ReadonlyArray<Answer>; requests: number; broken: Array<string>; note: string }>
) => {
  downstream.set(modes)
  let peak = sampleServer()
  const sampler = setInterval(() => {
    const now = sampleServer()
    peak = { rssMb: Math.max(peak.rssMb, now.rssMb), fds: Math.max(peak.fds, now.fds) }
  }, 50)
  const health = healthProbe()
  // This process's own event-loop delay: when it is high, the client's times (and /health's) are its own lag too.
  const lag = monitorEventLoopDelay({ resolution: 10 })
  lag.enable()
  const result = await run()
  const healthSeen = await health.stop()
  lag.disable()
  clearInterval(sampler)
  const counts = Downstream.total(downstream.counts())
  const broken = [...result.broken]
  if (healthSeen.failed > 0) broken.push(`/health failed ${healthSeen.failed} times`)
  if (peak.fds > 1_024) broken.push(`the server held ${peak.fds} file descriptors`)
  const row: Row = {
    name,
    requests: result.requests,
    statuses: byStatus(result.answers),
    downstreamConnections: counts.connections,
    downstreamRequests: counts.requests,
    slowestMs: Math.round(Math.max(0, ...result.answers.map((answer) => answer.ms))),
    peakRssMb: Math.round(peak.rssMb),
    peakFds: peak.fds,
    health: healthSeen,
    broken,
    note: `${result.note}${result.note === "" ? "" : "; "}attack process loop delay max ${Math.round(lag.max / 1e6)} ms`
  }
  rows.push(row)
  console.log(
    `${name.padEnd(22)} ${broken.length === 0 ? "held  " : "BROKEN"} ${JSON.stringify(row.statuses)} · ` +
      `downstream ${row.downstreamConnections} conn / ${row.downstreamRequests} req · slowest ${row.slowestMs} ms · ` +
      `peak ${row.peakRssMb} MB, ${row.peakFds} fds · /health ${healthSeen.ok} ok, ${healthSeen.failed} failed, ` +
      `slowest ${healthSeen.slowestMs} ms` +
      (row.note === "" ? "" : ` · ${row.note}`) + (broken.length === 0 ? "" : `\n${"".padEnd(23)}${broken.join("; ")}`)
  )
}

/** What every usage answer under overload must be: a 200 (or 502/504) by its deadline, or a 503 with Retry-After. */
const overloadBounds = (answers: ReadonlyArray<Answer>, requests: number) => {
  const broken: Array<string> = []
  if (answers.length !== requests) broken.push(`${requests - answers.length} requests got no answer`)
  const late = answers.filter((answer) => answer.ms > deadlineMs + slackMs)
  if (late.length > 0) broken.push(`${late.length} answers after ${deadlineMs + slackMs} ms`)
  const bad = answers.filter((answer) => ![200, 502, 503, 504].includes(answer.status))
  if (bad.length > 0) broken.push(`${bad.length} answers with status ${[...new Set(bad.map((a) => a.status))]}`)
  const noRetryAfter = answers.filter((answer) => answer.status === 503 && answer.headers["retry-after"] !== "1")
  if (noRetryAfter.length > 0) broken.push(`${noRetryAfter.length} 503s without Retry-After`)
  return broken
}

const started = performance.now()
console.log(
  `attack${short ? " --short" : ""}: server pid ${app.pid} at ${base}, deadlineMs=${deadlineMs}, ` +
    `ulimit -n ${Fs.readFileSync(`/proc/${app.pid}/limits`, "utf8").match(/Max open files\s+(\d+)/)?.[1]}`
)

// The cases judge a server in service, not one that has never run a fan-out (whose first fan-outs run interpreted
// code and hold its loop past the admission bound): first 100 usage requests against healthy services answered 200,
// sent 10 at a time on connections of their own, a 503 busy sent again; any other answer, or 30 s, ends the script.
{
  downstream.set({ all: { _tag: "Ok", latencyMs: 0 } })
  let answered = 0
  const until = performance.now() + 30_000
  while (answered < 100) {
    const round = await Promise.all(Array.from({ length: 10 }, (_, n) => single(usagePath(-1 - answered - n))))
    // `find` could not tell a missing answer from none wrong: the index can.
    const wrong = round.findIndex((answer) => answer === undefined || ![200, 503].includes(answer.status))
    if (wrong !== -1 || performance.now() > until) {
      const answer = wrong === -1 ? undefined : round[wrong]
      console.error(
        `attack: the warm-up got ${
          wrong === -1
            ? "no 100 answers in 30 s"
            : answer === undefined
            ? "no answer"
            : `${answer.status} ${answer.body}`
        }`
      )
      process.exit(1)
    }
    answered += round.filter((answer) => answer?.status === 200).length
  }
}

// 1. One connection, pipelined requests, every downstream resetting its connections.
await attack("pipelined-reset", { all: { _tag: "Reset" } }, async () => {
  const requests = size(1_000, 200)
  const answers = await pipelined(Array.from({ length: requests }, (_, n) => get(usagePath(n))), 30_000)
  const broken = overloadBounds(answers, requests)
  const admitted = answers.filter((answer) => answer.status !== 503).length
  const counts = Downstream.total(downstream.counts())
  if (counts.connections > admitted * bounds.callsPerRequest) {
    broken.push(`${counts.connections} downstream connections for ${admitted} admitted requests`)
  }
  return { answers, requests, broken, note: `${admitted} admitted` }
})

// 2. Many connections pipelining at once against slow services: the bound in all, the pool bound per service.
await attack("pipelined-burst", { all: { _tag: "Ok", latencyMs: 300 } }, async () => {
  const connections = size(50, 20)
  const perConnection = size(20, 10)
  const all = await Promise.all(
    Array.from(
      { length: connections },
      (_, c) => pipelined(Array.from({ length: perConnection }, (_, n) => get(usagePath(c * 1000 + n))), 30_000)
    )
  )
  const answers = all.flat()
  const requests = connections * perConnection
  const broken = overloadBounds(answers, requests)
  const counts = Downstream.total(downstream.counts())
  if (counts.maxInFlight > bounds.connectionsPerService) {
    broken.push(`${counts.maxInFlight} requests in flight at one service`)
  }
  const ok = answers.filter((answer) => answer.status === 200)
  const okMs = ok.map((answer) => answer.ms).sort((a, b) => a - b)
  // The server's own count, from the request's start in its handler to the answer: what the client's time adds to
  // it is the time before the server read the request and after it wrote the answer.
  const serverMs = ok.map((answer) => {
    try {
      return Number(JSON.parse(answer.body).durationMs)
    } catch {
      return 0
    }
  })
  return {
    answers,
    requests,
    broken,
    note: `most in flight at one service ${counts.maxInFlight}; 200s p50 ${
      Math.round(okMs[Math.floor(okMs.length / 2)] ?? 0)
    } ms; longest durationMs in a 200 body ${Math.round(Math.max(0, ...serverMs))}`
  }
})

// 3. One client opening sockets and sending nothing.
await attack("idle-socket-flood", { all: { _tag: "Ok", latencyMs: 0 } }, async () => {
  const sockets = size(4_000, 1_500)
  const open: Array<Net.Socket> = []
  let closedByServer = 0
  for (let n = 0; n < sockets; n++) {
    const socket = Net.connect(Number(port), "127.0.0.1")
    socket.on("error", () => undefined)
    socket.on("close", () => closedByServer++)
    open.push(socket)
    if (n % 200 === 199) await new Promise((resolve) => setTimeout(resolve, 20))
  }
  await new Promise((resolve) => setTimeout(resolve, size(3_000, 1_500)))
  const fds = sampleServer().fds
  const answer = await single("/health")
  for (const socket of open) socket.destroy()
  const broken: Array<string> = []
  if (answer?.status !== 200) broken.push(`/health after the flood answered ${answer?.status}`)
  return {
    answers: answer === undefined ? [] : [answer],
    requests: 1,
    broken,
    note: `${sockets} sockets opened, ${closedByServer} closed by the server, ${fds} server fds at the end`
  }
})

// 4. Services answering with bodies of 400 MB: a 503 and a 200.
await attack("huge-downstream-body", {
  all: { _tag: "Ok", latencyMs: 0 },
  payments: { _tag: "Huge", status: 503, bytes: 400 * 1024 * 1024 },
  listings: { _tag: "Huge", status: 200, bytes: 400 * 1024 * 1024 }
}, async () => {
  const requests = size(10, 3)
  const answers: Array<Answer> = []
  for (let n = 0; n < requests; n++) {
    const answer = await single(usagePath(n))
    if (answer !== undefined) answers.push(answer)
  }
  const counts = downstream.counts()
  const written = counts.payments.bytesWritten + counts.listings.bytesWritten
  const perCall = written / (counts.payments.requests + counts.listings.requests)
  const broken: Array<string> = []
  // What a call may cost: the cap, plus what the loopback socket buffers take before the client stops reading.
  if (perCall > 16 * 1024 * 1024) broken.push(`${Math.round(perCall / 1024 / 1024)} MB written per call`)
  const panels = answers.flatMap((answer) => {
    try {
      return JSON.parse(answer.body).panels as Array<{ feature: string; reason?: string }>
    } catch {
      return []
    }
  })
  const listings = panels.filter((panel) => panel.feature === "listings").map((panel) => panel.reason)
  if (answers.length !== requests || answers.some((answer) => answer.status !== 200)) {
    broken.push(`answers ${JSON.stringify(byStatus(answers))}`)
  }
  if (listings.some((reason) => reason !== "too_large")) broken.push(`listings panels ${listings.join(",")}`)
  return {
    answers,
    requests,
    broken,
    note: `${(perCall / 1024 / 1024).toFixed(1)} MB written per call of 400 MB (cap ${bounds.maxBodyBytes} B)`
  }
})

// 5. Small cases, one request each: what comes back and what is called.
const smallCase = async (
  name: string,
  path: string,
  method: string,
  check: (answer: Answer) => string | undefined
) =>
  attack(name, { all: { _tag: "Ok", latencyMs: 0 } }, async () => {
    const answer = await single(path, method)
    const broken: Array<string> = []
    if (answer === undefined) broken.push("no answer")
    else {
      const wrong = check(answer)
      if (wrong !== undefined) broken.push(wrong)
      if (answer.body.includes("Encoded side") || answer.body.includes("└─")) {
        broken.push("schema internals in the body")
      }
    }
    const calls = Downstream.total(downstream.counts()).requests
    if (calls > 0) broken.push(`${calls} downstream calls`)
    return {
      answers: answer === undefined ? [] : [answer],
      requests: 1,
      broken,
      note: answer === undefined ? "" : `${answer.bodyBytes} B body`
    }
  })

const unknownNames = Array.from({ length: 3_000 }, (_, n) => n.toString(36).padStart(3, "0"))
await smallCase(
  "oversized-query",
  `/customers/c-1/usage?${unknownNames.join("&")}`,
  "GET",
  (answer) =>
    answer.status !== 400 ?
      `answered ${answer.status}` :
      answer.bodyBytes > 4_096 ?
      `a ${answer.bodyBytes} B body` :
      !answer.body.includes("more") ?
      "the body does not count the issues left out" :
      undefined
)
await smallCase(
  "__proto__",
  "/customers/c-1/usage?__proto__=1",
  "GET",
  (answer) => answer.status !== 400 ? `answered ${answer.status}` : undefined
)
await smallCase(
  "HEAD",
  "/customers/c-1/usage",
  "HEAD",
  (answer) =>
    answer.status !== 405 || answer.bodyBytes !== 0 ? `answered ${answer.status} with ${answer.bodyBytes} B` : undefined
)
await smallCase(
  "long-404",
  `/${"a".repeat(15_000)}`,
  "GET",
  (answer) =>
    answer.status !== 404 || answer.bodyBytes > 512 ? `answered ${answer.status} with ${answer.bodyBytes} B` : undefined
)
await smallCase(
  "malformed-deadline",
  "/customers/c-1/usage?deadlineMs=0x20",
  "GET",
  (answer) => answer.status !== 400 ? `answered ${answer.status}` : undefined
)
await smallCase(
  "64KB-url",
  `/customers/c-1/usage?x=${"a".repeat(64 * 1024)}`,
  "GET",
  (answer) => answer.status !== 431 ? `answered ${answer.status}` : undefined
)

// 6. Raw requests on a connection of their own: a head too large, bytes that are not HTTP, a head sent a byte at a time.
const raw = (name: string, send: (socket: Net.Socket) => void, expected: number, withinMs: number) =>
  attack(name, { all: { _tag: "Ok", latencyMs: 0 } }, async () => {
    const started = performance.now()
    const answer = await new Promise<{ status: number; ms: number } | undefined>((resolve) => {
      const socket = Net.connect(Number(port), "127.0.0.1")
      let seen = ""
      const timer = setTimeout(() => finish(undefined), withinMs + 5_000)
      const finish = (result: { status: number; ms: number } | undefined) => {
        clearTimeout(timer)
        socket.destroy()
        resolve(result)
      }
      socket.on("connect", () => send(socket))
      socket.on("data", (data: Buffer) => {
        seen += data.toString("latin1")
        const line = /^HTTP\/1\.1 (\d{3})/.exec(seen)
        if (line !== null) finish({ status: Number(line[1]), ms: performance.now() - started })
      })
      socket.on("error", () => undefined)
      socket.on("close", () => finish(undefined))
    })
    const broken: Array<string> = []
    if (answer === undefined) broken.push("no answer")
    else if (answer.status !== expected) broken.push(`answered ${answer.status}`)
    else if (answer.ms > withinMs) broken.push(`answered after ${Math.round(answer.ms)} ms`)
    const calls = Downstream.total(downstream.counts()).requests
    if (calls > 0) broken.push(`${calls} downstream calls`)
    return {
      answers: answer === undefined
        ? []
        : [{ status: answer.status, ms: answer.ms, bodyBytes: 0, headers: {}, body: "" }],
      requests: 1,
      broken,
      note: `expected ${expected} within ${withinMs} ms`
    }
  })

await raw(
  "100KB-headers",
  (socket) => socket.write(`GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nx-big: ${"a".repeat(100 * 1024)}\r\n\r\n`),
  431,
  2_000
)
await raw("malformed-http", (socket) => socket.write("HELLO THERE\r\n\r\n"), 400, 2_000)
const slowlorisTimers: Array<NodeJS.Timeout> = []
await raw(
  "slowloris",
  (socket) => {
    socket.write("GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n")
    const drip = setInterval(() => socket.writable && socket.write("x"), 500)
    slowlorisTimers.push(drip)
    socket.once("close", () => clearInterval(drip))
  },
  408,
  headersTimeoutSeconds * 1_000 + 2_000
)
for (const timer of slowlorisTimers) clearInterval(timer)

// 7. Logs under faults: every request meets a service down and one resetting.
await attack("log-volume", {
  all: { _tag: "Ok", latencyMs: 0 },
  payments: { _tag: "Unavailable" },
  calendar: { _tag: "Reset" }
}, async () => {
  const requests = size(300, 100)
  const before = logBytes
  const answers: Array<Answer> = []
  for (let batch = 0; batch < requests / 4; batch++) {
    answers.push(...await pipelined(Array.from({ length: 4 }, (_, n) => get(usagePath(batch * 4 + n))), 10_000))
  }
  const perRequest = (logBytes - before) / requests
  const broken: Array<string> = []
  if (perRequest > 100) broken.push(`${perRequest.toFixed(0)} B of logs per request`)
  if (answers.some((answer) => answer.status !== 200)) broken.push(`answers ${JSON.stringify(byStatus(answers))}`)
  return { answers, requests, broken, note: `${perRequest.toFixed(1)} B of logs per request` }
})

// ---- the verdict ------------------------------------------------------------------------------------------------

app.kill("SIGTERM")
await new Promise((resolve) => app.once("exit", resolve))
await downstream.close()
const broken = rows.filter((row) => row.broken.length > 0)
console.log(
  `attack: ${rows.length - broken.length} of ${rows.length} bounds held in ${
    ((performance.now() - started) / 1000).toFixed(1)
  } s${broken.length === 0 ? "" : `; broken: ${broken.map((row) => row.name).join(", ")}`}`
)
console.log(`attack: ${JSON.stringify({ short, rows })}`)
process.exit(broken.length === 0 ? 0 : 1)
