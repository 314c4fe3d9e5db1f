/**
 * The Promise facade's benchmark (`npx tsx --expose-gc scripts/bench/promise.ts [--quick] [--clock=cpu]`):
 * `effect-fanout/promise` against `Promise.all`, `Promise.allSettled` and p-map, in one process run, as Markdown
 * tables. Every ratio is to a peer measured in the same run, interleaved with it sample by sample.
 *
 * - throughput: ns per function for N = 10, 1,000 and 100,000 functions that resolve at once (`async () => i`) and
 *   functions that await once (`await null`), unbounded;
 * - fail fast: at N = 1,000, the time from the failure to the rejection, every other function aborted and settled;
 * - targets: the facade within 2× of `Promise.allSettled` at N = 1,000, both kinds.
 *
 * The facade runs each function as one task of the core: a function that returns a promise is an `Effect.callback`
 * on a fiber of the core's engine, so its cost is a fiber plus the core's bookkeeping per task plus one promise
 * callback and the result objects; the peers call the functions directly. `BENCH_SOURCE=1` runs `src/` through tsx
 * instead of the library compiled by tsc.
 */
import { setMaxListeners } from "node:events"
import { performance } from "node:perf_hooks"
import pMap from "p-map"
import {
  type Clock,
  compileLibrary,
  cost,
  effectVersion,
  fmt,
  fmtCostRange,
  fmtStats,
  gcAvailable,
  heading,
  heapAfterGc,
  importLibrary,
  machine,
  nsPerTask,
  type Plan,
  type Stats,
  stats,
  table,
  timeTogether
} from "./harness.js"

const quick = process.argv.includes("--quick")
/** `--clock=cpu`: throughput in CPU time of the process instead of elapsed time (for a machine shared with others). */
const clock: Clock = process.argv.includes("--clock=cpu") ? "cpu" : "wall"

if (process.env.BENCH_SOURCE !== "1") compileLibrary()
const P = await importLibrary<typeof import("../../src/promise.js")>("promise.js")

const count = (n: number) => n.toLocaleString("en-US")

// ---------------------------------------------------------------------------------------------------------------
// throughput

type Kind = "resolved" | "await"
const kinds: ReadonlyArray<Kind> = ["resolved", "await"]

type Fn = (signal: AbortSignal) => Promise<number>

const functions = (n: number, kind: Kind): Array<Fn> => {
  const fns = new Array<Fn>(n)
  if (kind === "resolved") {
    for (let i = 0; i < n; i++) fns[i] = async () => i
  } else {
    for (let i = 0; i < n; i++) {
      fns[i] = async () => {
        await null
        return i
      }
    }
  }
  return fns
}

interface Runner {
  readonly name: string
  readonly run: (fns: Array<Fn>) => Promise<unknown>
}

// The peers get a signal too (one for the run, never aborted), so that every runner makes the same calls.
const unused = new AbortController().signal
const call = (f: Fn) => f(unused)

const peers: ReadonlyArray<Runner> = [
  { name: "Promise.all", run: (fns) => Promise.all(fns.map(call)) },
  { name: "Promise.allSettled", run: (fns) => Promise.allSettled(fns.map(call)) },
  { name: "p-map", run: (fns) => pMap(fns, call) }
]

const facade: ReadonlyArray<Runner> = [
  { name: "runAsync", run: (fns) => P.runAsync(fns) },
  { name: "all", run: (fns) => P.all(fns) },
  { name: "runAsyncAllowErrors", run: (fns) => P.runAsyncAllowErrors(fns) },
  { name: "settle", run: (fns) => P.settle(fns) }
]

const runners = [...peers, ...facade]

const sizes = [10, 1000, 100_000] as const

/** Each sample repeats its run for at least 20 ms at the small sizes, so that they are not timed at the timer's grain. */
const plan = (n: number): Plan => {
  if (n <= 1000) return { warmup: 5, runs: quick ? 5 : 15, minSampleMs: 20, clock }
  return { warmup: 2, runs: quick ? 3 : 7, clock }
}

type Results = Map<string, Stats>
const key = (runner: string, n: number, kind: Kind) => `${runner}|${n}|${kind}`

const throughput = async (): Promise<Results> => {
  const results: Results = new Map()
  for (const n of sizes) {
    for (const kind of kinds) {
      const fns = functions(n, kind)
      heapAfterGc()
      const ms = await timeTogether(runners.map((runner) => () => runner.run(fns)), plan(n))
      runners.forEach((runner, i) => results.set(key(runner.name, n, kind), nsPerTask(ms[i]!, n)))
    }
  }
  return results
}

const printThroughput = (results: Results) => {
  for (const n of sizes) {
    heading(`Promise facade throughput, N = ${count(n)}: ns per function, median (min–max); cost in the peer's time`)
    const rows = runners.map((runner) => {
      const cells = [runner.name]
      for (const kind of kinds) {
        const self = results.get(key(runner.name, n, kind))
        cells.push(fmtStats(self))
        for (const peer of peers) cells.push(fmtCostRange(cost(self, results.get(key(peer.name, n, kind)))))
      }
      return cells
    })
    console.log(table(
      [
        "runner",
        "resolved ns/fn",
        "× all",
        "× allSettled",
        "× p-map",
        "await ns/fn",
        "× all",
        "× allSettled",
        "× p-map"
      ],
      rows
    ))
  }
  const p = (n: number) => plan(n).runs
  console.log(
    `\nFunctions: \`async () => i\` (resolved) and \`async () => { await null; return i }\` (await), built once per N ` +
      `and reused; the runners of one N and kind are timed together, round by round in rotating order. Runs per ` +
      `figure (after warm-up): N ≤ 1,000: ${p(1000)} (each sample repeats the run for ≥ 20 ms), N = 100,000: ${
        p(100_000)
      }. "× X" = this runner's time in X's (the ratio of the medians; in brackets the range of the ratios of samples ` +
      `taken in the same round): 2.00× is twice X's time. Clock: ${clock === "cpu" ? "process CPU time" : "wall time"}.`
  )
}

// ---------------------------------------------------------------------------------------------------------------
// fail fast

const failN = 1000
const failAfterMs = 20

class Boom extends Error {}

interface Counter {
  aborted: number
  failedAt: number
}

/** 999 functions that wait for their signal (then count and reject with its reason), one that fails after 20 ms. */
const failingFunctions = (counter: Counter) => {
  const fns = new Array<(signal: AbortSignal) => Promise<void>>(failN)
  for (let i = 0; i < failN - 1; i++) {
    fns[i] = (signal) =>
      new Promise<void>((_, reject) => {
        signal.addEventListener("abort", () => {
          counter.aborted++
          reject(signal.reason)
        }, { once: true })
      })
  }
  fns[failN - 1] = async () => {
    await new Promise((resolve) => setTimeout(resolve, failAfterMs))
    counter.failedAt = performance.now()
    throw new Boom("failed")
  }
  return fns
}

interface FailFast {
  readonly name: string
  /** Runs the fan-out until it rejects; the functions count their aborts. */
  readonly run: (fns: Array<(signal: AbortSignal) => Promise<void>>) => Promise<unknown>
}

const failFasts: ReadonlyArray<FailFast> = [
  { name: "runAsync", run: (fns) => P.runAsync(fns) },
  { name: "runAsync, detach", run: (fns) => P.runAsync(fns, { detach: true }) },
  {
    name: "Promise.all + AbortController",
    run: async (fns) => {
      const controller = new AbortController()
      setMaxListeners(0, controller.signal)
      const promises = fns.map((f) => f(controller.signal))
      try {
        await Promise.all(promises)
      } catch {
        controller.abort()
        // Wait for every sibling to settle, as runAsync does by default.
        await Promise.allSettled(promises)
        throw new Error("failed")
      }
    }
  }
]

interface FailFastResult {
  readonly latency: Stats
  readonly aborted: number
}

const failFast = async (): Promise<Map<string, FailFastResult>> => {
  const out = new Map<string, FailFastResult>()
  const runs = quick ? 3 : 11
  for (const f of failFasts) {
    const once = async () => {
      const counter: Counter = { aborted: 0, failedAt: 0 }
      await f.run(failingFunctions(counter)).then(
        () => {
          throw new Error(`${f.name} did not fail`)
        },
        () => undefined
      )
      return [performance.now() - counter.failedAt, counter.aborted] as const
    }
    for (let w = 0; w < 3; w++) await once()
    const latencies: Array<number> = []
    let aborted = Infinity
    for (let r = 0; r < runs; r++) {
      heapAfterGc()
      const [latency, n] = await once()
      latencies.push(latency)
      aborted = Math.min(aborted, n)
    }
    out.set(f.name, { latency: stats(latencies), aborted })
  }
  return out
}

const printFailFast = (results: Map<string, FailFastResult>) => {
  heading(`Promise facade fail fast, N = ${count(failN)}: ms from the failure to the rejection`)
  const peer = results.get("Promise.all + AbortController")
  console.log(table(
    ["runner", "ms after the failure", "× Promise.all + AbortController", "aborted at rejection"],
    failFasts.map((f) => {
      const r = results.get(f.name)!
      return [f.name, fmtStats(r.latency), fmtCostRange(cost(r.latency, peer?.latency)), `${r.aborted} / ${failN - 1}`]
    })
  ))
  console.log(
    `\n${failN - 1} functions wait for their signal, then count and reject with its reason; the last function ` +
      `throws after ${failAfterMs} ms. Latency: from just before the throw to just after the rejection. ` +
      `Promise.all + AbortController: \`Promise.all\` rejects, \`abort()\`, then \`Promise.allSettled\` of all ` +
      `functions (what runAsync does by default: nothing left running). Median (min–max) of ${
        quick ? 3 : 11
      } runs after 3 warm-up runs, one runner after the other.`
  )
}

// ---------------------------------------------------------------------------------------------------------------
// targets

const target = 2

const printTargets = (t: Results) => {
  heading(`Targets: the facade within ${target}× of Promise.allSettled, N = 1,000`)
  const rows: Array<Array<string>> = []
  for (const runner of facade) {
    for (const kind of kinds) {
      const c = cost(t.get(key(runner.name, 1000, kind)), t.get(key("Promise.allSettled", 1000, kind)))
      rows.push([`${runner.name}, ${kind}`, c !== undefined && c.ratio <= target ? "yes" : "NO", fmtCostRange(c)])
    }
  }
  console.log(table(["runner, functions", "met", "time in Promise.allSettled's"], rows))
}

// ---------------------------------------------------------------------------------------------------------------

const main = async () => {
  const t0 = performance.now()
  console.log(
    `### Promise facade benchmark\n\n${machine()}; effect ${effectVersion()}${quick ? "; --quick" : ""}; library ${
      process.env.BENCH_SOURCE === "1" ? "from src/ through tsx" : "compiled by tsc"
    }`
  )
  if (!gcAvailable()) console.log("\n(no --expose-gc: the runs are not preceded by a full GC)")
  const t = await throughput()
  printThroughput(t)
  printFailFast(await failFast())
  printTargets(t)
  console.log(`\n(${fmt((performance.now() - t0) / 1000, 1)} s)`)
}

await main()
