/**
 * `npm run soak`: the analytics API with its embedded simulators, one service hanging on every call and one crashing
 * on every call, under a steady load over loopback for a set time; fails when anything grows without bound.
 *
 *   npm run soak                      10 minutes, a sample every 30 s
 *   npm run soak -- --minutes=2       2 minutes
 *   npm run soak -- --seconds=20      20 seconds, a sample every 2 s (the CI version, test/soak.test.ts)
 *   --rate=30                         requests a second (default 30), at most --concurrency=64 in flight
 *   --hang=calendar --crash=payments  which services hang and crash (the defaults)
 *
 * The server runs in a child process (this script with `--serve`, run with `--expose-gc`), so the load generator's own
 * memory is not counted. Each sample records, for the interval since the last one, the status codes, the unexpected
 * answers (in partial mode every request is a 200: any 5xx, any other status, any connection error or client-side
 * time-out counts), the requests skipped because `--concurrency` were already in flight, the p99 latency; and from
 * the server the resident set, the heap used after a full GC (asked over IPC), its open file descriptors and how many
 * of them are sockets (/proc/<pid>/fd). After the run it compares the median of the last third of the samples with
 * the median of the first third (the first sample, the warm-up, is left out) and fails, exit code 1, when any of them
 * grew past a generous bound, or on any unexpected answer, or when fewer than a quarter of the requests were sent.
 * The last line is `soak: {json}` with the samples and the verdict, for the CI test.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Effect, Exit, Logger, Result, Runtime } from "effect"
import { fork } from "node:child_process"
import * as Fs from "node:fs"
import * as Http from "node:http"
import { fileURLToPath } from "node:url"
import { features } from "../examples/analytics/Features.js"
import * as Embedded from "../examples/analytics/harness/Embedded.js"
import * as Simulator from "../examples/analytics/harness/Simulator.js"

/** `--name=value` flags, each checked: a bad one is one line and exit code 1. */
const flags = (argv: ReadonlyArray<string>) => {
  const known = ["minutes", "seconds", "rate", "concurrency", "hang", "crash", "serve"] as const
  const values: Partial<Record<(typeof known)[number], string>> = {}
  for (const arg of argv) {
    const name = known.find((name) => arg === `--${name}` || arg.startsWith(`--${name}=`))
    if (name === undefined) return bad(`unrecognised flag ${arg}`)
    values[name] = arg === `--${name}` ? "" : arg.slice(name.length + 3)
  }
  const number = (name: "minutes" | "seconds" | "rate" | "concurrency", fallback: number, max: number) => {
    const raw = values[name]
    if (raw === undefined) return fallback
    const value = /^\d+(\.\d+)?$/.test(raw) ? Number(raw) : NaN
    return value > 0 && value <= max ? value : bad(`--${name}=${raw}: ${name} must be a number above 0, at most ${max}`)
  }
  const feature = (name: "hang" | "crash", fallback: string) => {
    const raw = values[name] ?? fallback
    return (features as ReadonlyArray<string>).includes(raw) ?
      raw :
      bad(`--${name}=${raw}: not a feature (the features are ${features.join(", ")})`)
  }
  if (values.minutes !== undefined && values.seconds !== undefined) bad("give --minutes or --seconds, not both")
  const seconds = values.seconds !== undefined ? number("seconds", 0, 86_400) : number("minutes", 10, 1440) * 60
  const hang = feature("hang", "calendar")
  const crash = feature("crash", "payments")
  if (hang === crash) bad(`--hang and --crash name the same service (${hang})`)
  return {
    serve: values.serve !== undefined,
    seconds,
    rate: number("rate", 30, 10_000),
    concurrency: number("concurrency", 64, 10_000),
    hang,
    crash,
    // Every 30 s, or ten samples in a short run.
    sampleSeconds: Math.min(30, Math.max(1, seconds / 10))
  }
}

function bad(message: string): never {
  console.error(`soak: ${message}`)
  process.exit(1)
}

const options = flags(process.argv.slice(2))

/** What the server process reports when asked. */
interface ServerSample {
  readonly rss: number
  readonly heapUsed: number
  /** Memory outside the JS heap that V8 knows of: `Buffer`s and other ArrayBuffers, included in `external`. */
  readonly external: number
  /** The heap V8 holds from the system (used or not), after the same GC. */
  readonly heapTotal: number
}

/** The server side: the API and the simulators, answering `"sample"` over IPC with its memory after a full GC. */
const serve = () =>
  Effect.gen(function*() {
    const base = yield* Embedded.apiUrl
    yield* Effect.sync(() => {
      process.on("message", (message) => {
        if (message !== "sample") return
        ;(globalThis as { gc?: () => void }).gc?.()
        const { external, heapTotal, heapUsed, rss } = process.memoryUsage()
        process.send?.({ sample: { rss, heapUsed, external, heapTotal } satisfies ServerSample })
      })
      // The IPC channel closes when the soak ends, however it ended (even killed): the server stops then too.
      process.on("disconnect", () => process.kill(process.pid, "SIGTERM"))
      process.send?.({ ready: base })
    })
    return yield* Effect.never
  }).pipe(
    Effect.provide(Embedded.layer({
      listen: { port: 0, host: "127.0.0.1" },
      simulators: Result.getOrThrow(
        Simulator.applyFlags(Simulator.loadConfig(), [`--${options.hang}.hangRate=1`, `--${options.crash}.crash=true`])
      )
    })),
    Effect.provide(Logger.layer([Logger.consoleLogFmt])),
    // SIGTERM is how the soak stops it: a clean exit (0) once everything has closed.
    NodeRuntime.runMain({
      teardown: (exit, onExit) =>
        Exit.isFailure(exit) && Cause.hasInterruptsOnly(exit.cause) ? onExit(0) : Runtime.defaultTeardown(exit, onExit)
    })
  )

interface Sample {
  readonly t: number
  readonly sent: number
  readonly statuses: Record<string, number>
  readonly unexpected: number
  readonly errors: number
  readonly skipped: number
  readonly p99Ms: number
  readonly rssMb: number
  readonly heapMb: number
  /** Shown, not bounded: where RSS grows when the heap in use does not. */
  readonly externalMb: number
  readonly heapTotalMb: number
  readonly fds: number
  readonly sockets: number
}

const median = (values: ReadonlyArray<number>) => {
  const sorted = [...values].sort((a, b) => a - b)
  const middle = Math.floor(sorted.length / 2)
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2
}

/**
 * How far each figure may grow from the first third to the last: a factor and an allowance, both generous. Sockets
 * (and so fds) rise and fall with the requests in flight, each holding its client connection and, until the deadline,
 * its call to the hanging service, both ends of which are in the server's process: a machine that slows down holds
 * more of them at once without leaking any. Their allowance is that envelope, three per request that may be in flight
 * (`--concurrency`: its client connection, both ends of its call to the hanging service), which a leak of one socket
 * a request passes within a minute at the soak's rate.
 */
const bounds = {
  rssMb: { factor: 1.5, plus: 48 },
  heapMb: { factor: 1.5, plus: 16 },
  fds: { factor: 1.5, plus: 32 + 3 * options.concurrency },
  sockets: { factor: 1.5, plus: 32 + 3 * options.concurrency }
} as const

const fdCounts = (pid: number) => {
  const dir = `/proc/${pid}/fd`
  let fds = 0
  let sockets = 0
  for (const fd of Fs.readdirSync(dir)) {
    try {
      const target = Fs.readlinkSync(`${dir}/${fd}`)
      fds++
      if (target.startsWith("socket:")) sockets++
    } catch {
      // Closed between the listing and the look.
    }
  }
  return { fds, sockets }
}

const soak = async () => {
  const script = fileURLToPath(import.meta.url)
  const child = fork(script, ["--serve", `--hang=${options.hang}`, `--crash=${options.crash}`], {
    execArgv: ["--import", "tsx", "--expose-gc"],
    // The soak measures faults at a steady load, not overload: the server does not shed on its event loop's delay
    // (a loaded machine delays it; `npm run attack` is where shedding is measured), unless the caller says otherwise.
    env: { MAX_EVENT_LOOP_DELAY: "60000", ...process.env },
    stdio: ["ignore", "ignore", "pipe", "ipc"]
  })
  const tail: Array<string> = []
  child.stderr!.setEncoding("utf8").on("data", (chunk: string) => {
    tail.push(...chunk.split("\n").filter((line) => line !== ""))
    tail.splice(0, Math.max(0, tail.length - 20))
  })
  const childExit = new Promise<number | null>((resolve) => child.once("exit", (code) => resolve(code)))
  const base = await new Promise<string>((resolve, reject) => {
    child.on("message", (message: { ready?: string }) => {
      if (message.ready !== undefined) resolve(message.ready)
    })
    child.once("exit", (code) => reject(new Error(`the server exited (code ${code}):\n${tail.join("\n")}`)))
  })
  const ask = () =>
    new Promise<ServerSample>((resolve) => {
      const listener = (message: { sample?: ServerSample }) => {
        if (message.sample === undefined) return
        child.off("message", listener)
        resolve(message.sample)
      }
      child.on("message", listener)
      child.send("sample")
    })

  const agent = new Http.Agent({ keepAlive: true, maxSockets: options.concurrency })
  const path = "/customers/c-1042/usage?mode=partial&deadlineMs=500"
  let inFlight = 0
  let window = { sent: 0, statuses: {} as Record<string, number>, unexpected: 0, errors: 0, skipped: 0 }
  let latencies: Array<number> = []
  const request = () => {
    if (inFlight >= options.concurrency) {
      window.skipped++
      return
    }
    inFlight++
    window.sent++
    const started = performance.now()
    // Counted in the interval it is answered in.
    const done = (status: string, expected: boolean) => {
      inFlight--
      latencies.push(performance.now() - started)
      window.statuses[status] = (window.statuses[status] ?? 0) + 1
      if (!expected) window.unexpected++
    }
    const outgoing = Http.get(`${base}${path}`, { agent, timeout: 10_000 }, (response) => {
      response.resume()
      response.on("end", () => done(String(response.statusCode), response.statusCode === 200))
    })
    outgoing.on("timeout", () => outgoing.destroy(new Error("client time-out")))
    outgoing.on("error", () => {
      window.errors++
      done("error", false)
    })
  }

  // A fixed rate: every 50 ms the requests due by now, so that a slow tick does not lower the rate.
  const start = performance.now()
  let issued = 0
  const ticker = setInterval(() => {
    const due = Math.floor(((performance.now() - start) / 1000) * options.rate)
    for (; issued < due; issued++) request()
  }, 50)

  const samples: Array<Sample> = []
  const columns = "    t(s)   sent    2xx  other  unexp  skip  p99ms  rssMB heapMB  extMB totalMB   fds  socks"
  console.log(
    `soak: ${options.seconds} s at ${options.rate} req/s (at most ${options.concurrency} in flight), ` +
      `${options.hang} hanging, ${options.crash} crashing, a sample every ${options.sampleSeconds} s, server pid ${child.pid}`
  )
  console.log(columns)
  const total = Math.max(3, Math.round(options.seconds / options.sampleSeconds))
  for (let i = 1; i <= total; i++) {
    await new Promise((resolve) => setTimeout(resolve, start + i * options.sampleSeconds * 1000 - performance.now()))
    const memory = await ask()
    const { fds, sockets } = fdCounts(child.pid!)
    const sorted = latencies.sort((a, b) => a - b)
    const sample: Sample = {
      t: Math.round((performance.now() - start) / 1000),
      ...window,
      p99Ms: sorted.length === 0
        ? 0
        : Math.round(sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!),
      rssMb: Math.round(memory.rss / 1048576 * 10) / 10,
      heapMb: Math.round(memory.heapUsed / 1048576 * 10) / 10,
      externalMb: Math.round(memory.external / 1048576 * 10) / 10,
      heapTotalMb: Math.round(memory.heapTotal / 1048576 * 10) / 10,
      fds,
      sockets
    }
    window = { sent: 0, statuses: {}, unexpected: 0, errors: 0, skipped: 0 }
    latencies = []
    samples.push(sample)
    const ok = sample.statuses["200"] ?? 0
    const other = Object.values(sample.statuses).reduce((sum, n) => sum + n, 0) - ok
    console.log(
      [
        sample.t,
        sample.sent,
        ok,
        other,
        sample.unexpected,
        sample.skipped,
        sample.p99Ms,
        sample.rssMb,
        sample.heapMb,
        sample.externalMb,
        sample.heapTotalMb,
        fds,
        sockets
      ]
        .map((value, index) => String(value).padStart(index === 0 ? 8 : index < 6 ? 6 : 6))
        .join(" ")
    )
  }
  clearInterval(ticker)
  // Let the requests in flight finish (each ends within the deadline, or the client's time-out), then stop the server.
  while (inFlight > 0) await new Promise((resolve) => setTimeout(resolve, 50))
  agent.destroy()
  child.kill("SIGTERM")
  const code = await childExit

  const steady = samples.slice(1)
  const third = Math.max(1, Math.floor(steady.length / 3))
  const growth = Object.entries(bounds).map(([name, bound]) => {
    const key = name as keyof typeof bounds
    const first = median(steady.slice(0, third).map((sample) => sample[key]))
    const last = median(steady.slice(-third).map((sample) => sample[key]))
    const limit = first * bound.factor + bound.plus
    return { name, first, last, limit, ok: last <= limit }
  })
  const sent = samples.reduce((sum, sample) => sum + sample.sent, 0)
  const unexpected = samples.reduce((sum, sample) => sum + sample.unexpected, 0)
  const statuses: Record<string, number> = {}
  for (const sample of samples) {
    for (const [status, n] of Object.entries(sample.statuses)) statuses[status] = (statuses[status] ?? 0) + n
  }
  const problems = [
    ...growth.filter((figure) => !figure.ok).map((figure) =>
      `${figure.name} grew from ${figure.first} to ${figure.last} (bound ${figure.limit.toFixed(1)})`
    ),
    ...(unexpected > 0 ? [`${unexpected} unexpected answers (${JSON.stringify(statuses)})`] : []),
    ...(sent < options.rate * options.seconds / 4
      ? [`only ${sent} requests sent of ${options.rate * options.seconds}`]
      : []),
    ...(code !== 0 ? [`the server exited with code ${code} on SIGTERM:\n${tail.join("\n")}`] : [])
  ]
  for (const figure of growth) {
    console.log(
      `${figure.name}: first third ${figure.first}, last third ${figure.last}, bound ${figure.limit.toFixed(1)}`
    )
  }
  console.log(
    `statuses: ${JSON.stringify(statuses)}; ${sent} requests; ${
      problems.length === 0 ? "nothing grew, no unexpected answer" : problems.join("; ")
    }`
  )
  console.log(`soak: ${JSON.stringify({ ok: problems.length === 0, problems, statuses, sent, growth, samples })}`)
  process.exit(problems.length === 0 ? 0 : 1)
}

if (options.serve) serve()
else {
  void soak().catch((error: unknown) => bad(error instanceof Error ? error.message : String(error)))
}
