/**
 * The core benchmark (`npm run bench:core`): FanOut against `Effect.all`, `Promise.all`/`Promise.allSettled` and
 * p-map, in one process run, as markdown tables for `docs/BENCHMARKS.md`.
 *
 * - throughput: ns per task for N = 10, 1000, 100,000, trivial tasks and tasks that yield once, unbounded and with
 *   `concurrency: 16`;
 * - memory: bytes of heap per pending task at N = 100,000 (after GC, every task blocked on one gate), and the time
 *   until all 100,000 tasks have started;
 * - fail fast: at N = 1000, time from the failure to the fan-out's return, every sibling's finalizer done;
 * - batching: ns per task for tasks that each make one request to a batched resolver, with `batching: true`;
 * - attempts: ns per task with the `timeout` and `hedge` options at N = 1000, against `Effect.all` with
 *   `Effect.timeout` or a hand-written `Effect.race` hedge per task.
 *
 * Peers: a trivial task is `Effect.sync(() => i)` / `async () => i`; a yielding task is `Effect.yieldNow()` then the
 * value / `await null` then the value. Effect 3's default scheduler runs a yielded fiber from a batched microtask
 * (a `setTimeout(0)` after 2048 nested batches), so an awaited microtask is the Promise equivalent.
 */
import * as Deferred from "effect/Deferred"
import * as Effect from "effect/Effect"
import * as Exit from "effect/Exit"
import type * as Fiber from "effect/Fiber"
import * as FiberId from "effect/FiberId"
import * as FiberRefs from "effect/FiberRefs"
import { setMaxListeners } from "node:events"
import { readFileSync } from "node:fs"
import { createRequire } from "node:module"
import { performance } from "node:perf_hooks"
import pMap from "p-map"
import {
  compileLibrary,
  fmt,
  fmtStats,
  gcAvailable,
  heading,
  heapAfterGc,
  importLibrary,
  machine,
  nsPerTask,
  ratio,
  request,
  settleEventLoop,
  type Stats,
  stats,
  table,
  time,
  until
} from "./harness.js"

const quick = process.argv.includes("--quick")
/**
 * `--only=throughput,memory,failfast,batching,attempts`: run some sections (while working on one); the targets need the
 * first three.
 */
const only = process.argv.find((a) => a.startsWith("--only="))?.slice("--only=".length).split(",")
const section = (name: string) => only === undefined || only.includes(name)

if (process.env.BENCH_SOURCE !== "1") compileLibrary()
const FanOut = await importLibrary<typeof import("../../src/FanOut.js")>("FanOut.js")

const effectVersion = (): string => {
  const path = createRequire(import.meta.url).resolve("effect/package.json")
  return (JSON.parse(readFileSync(path, "utf8")) as { version: string }).version
}

// ---------------------------------------------------------------------------------------------------------------
// throughput

type Kind = "trivial" | "yield"

interface Runner {
  readonly name: string
  /** `Infinity` or 16; ratios compare runners of the same concurrency. */
  readonly concurrency: number
  readonly peer: "effect" | "fanout" | "promise" | "p-map" | "floor"
  readonly run: (n: number, kind: Kind) => Promise<unknown>
}

const effectTasks = (n: number, kind: Kind): Array<Effect.Effect<number>> => {
  const tasks = new Array<Effect.Effect<number>>(n)
  if (kind === "trivial") {
    for (let i = 0; i < n; i++) tasks[i] = Effect.sync(() => i)
  } else {
    for (let i = 0; i < n; i++) tasks[i] = Effect.as(Effect.yieldNow(), i)
  }
  return tasks
}

const indices = (n: number): Array<number> => {
  const items = new Array<number>(n)
  for (let i = 0; i < n; i++) items[i] = i
  return items
}

const effectOf = (kind: Kind) =>
  kind === "trivial" ? (i: number) => Effect.sync(() => i) : (i: number) => Effect.as(Effect.yieldNow(), i)

const promiseOf = (kind: Kind) =>
  kind === "trivial" ? async (i: number) => i : async (i: number) => {
    await null
    return i
  }

const promiseTasks = (n: number, kind: Kind): Array<Promise<number>> => {
  const f = promiseOf(kind)
  const out = new Array<Promise<number>>(n)
  for (let i = 0; i < n; i++) out[i] = f(i)
  return out
}

const effectLoops = (n: number, kind: Kind): Effect.Effect<void> => {
  const f = effectOf(kind)
  const loops = new Array<Effect.Effect<void>>(16)
  for (let w = 0; w < 16; w++) {
    const share: Array<number> = []
    for (let i = w; i < n; i += 16) share.push(i)
    loops[w] = Effect.forEach(share, f, { discard: true })
  }
  return Effect.all(loops, { concurrency: "unbounded", discard: true })
}

const unbounded = { concurrency: "unbounded" } as const
const c16 = { concurrency: 16 } as const

const runners: ReadonlyArray<Runner> = [
  {
    name: "Effect.all",
    concurrency: Infinity,
    peer: "effect",
    run: (n, k) => Effect.runPromise(Effect.all(effectTasks(n, k), unbounded))
  },
  {
    name: "FanOut.all",
    concurrency: Infinity,
    peer: "fanout",
    run: (n, k) => Effect.runPromise(FanOut.all(effectTasks(n, k)))
  },
  {
    name: "FanOut.settle",
    concurrency: Infinity,
    peer: "fanout",
    run: (n, k) => Effect.runPromise(FanOut.settle(effectTasks(n, k)))
  },
  {
    name: "FanOut.forEach",
    concurrency: Infinity,
    peer: "fanout",
    run: (n, k) => Effect.runPromise(FanOut.forEach(indices(n), effectOf(k)))
  },
  {
    name: "FanOut.settleForEach",
    concurrency: Infinity,
    peer: "fanout",
    run: (n, k) => Effect.runPromise(FanOut.settleForEach(indices(n), effectOf(k)))
  },
  { name: "Promise.all", concurrency: Infinity, peer: "promise", run: (n, k) => Promise.all(promiseTasks(n, k)) },
  {
    name: "Promise.allSettled",
    concurrency: Infinity,
    peer: "promise",
    run: (n, k) => Promise.allSettled(promiseTasks(n, k))
  },
  { name: "p-map", concurrency: Infinity, peer: "p-map", run: (n, k) => pMap(indices(n), promiseOf(k)) },
  {
    name: "Effect.all c16",
    concurrency: 16,
    peer: "effect",
    run: (n, k) => Effect.runPromise(Effect.all(effectTasks(n, k), c16))
  },
  {
    name: "FanOut.all c16",
    concurrency: 16,
    peer: "fanout",
    run: (n, k) => Effect.runPromise(FanOut.all(effectTasks(n, k), c16))
  },
  {
    name: "FanOut.settle c16",
    concurrency: 16,
    peer: "fanout",
    run: (n, k) => Effect.runPromise(FanOut.settle(effectTasks(n, k), c16))
  },
  {
    name: "FanOut.forEach c16",
    concurrency: 16,
    peer: "fanout",
    run: (n, k) => Effect.runPromise(FanOut.forEach(indices(n), effectOf(k), c16))
  },
  { name: "p-map c16", concurrency: 16, peer: "p-map", run: (n, k) => pMap(indices(n), promiseOf(k), c16) },
  // The floor for Effect 3 with a bound: 16 fibers each running its share of the tasks in a loop, results discarded,
  // nothing isolated or reported. Not a fan-out: it shows what Effect's runtime itself costs per task.
  {
    name: "16 Effect loops (floor)",
    concurrency: 16,
    peer: "floor",
    run: (n, k) => Effect.runPromise(effectLoops(n, k))
  }
]

const sizes = [10, 1000, 100_000] as const
const kinds: ReadonlyArray<Kind> = ["trivial", "yield"]

/** Runs per size; `Effect.all` at N = 100,000 takes seconds per call, so it gets fewer. */
const plan = (n: number, runner: Runner) => {
  if (n <= 10) return { warmup: 5, runs: quick ? 5 : 15, minSampleMs: 20 }
  if (n <= 1000) return { warmup: 5, runs: quick ? 5 : 9, minSampleMs: 20 }
  if (runner.peer === "effect") return { warmup: 1, runs: quick ? 1 : 3 }
  return { warmup: 2, runs: quick ? 3 : 5 }
}

type Results = Map<string, Stats>
const key = (runner: string, n: number, kind: Kind) => `${runner}|${n}|${kind}`

const throughput = async (): Promise<Results> => {
  const results: Results = new Map()
  for (const n of sizes) {
    for (const kind of kinds) {
      for (const runner of runners) {
        const p = plan(n, runner)
        const ms = await time(() => runner.run(n, kind), p)
        results.set(key(runner.name, n, kind), nsPerTask(ms, n))
      }
    }
  }
  return results
}

const printThroughput = (results: Results) => {
  for (const n of sizes) {
    heading(`Throughput, N = ${n.toLocaleString("en-US")}: ns per task, median (min–max)`)
    const rows = runners.map((runner) => {
      const cells = [runner.name]
      const effectPeer = runner.concurrency === Infinity ? "Effect.all" : "Effect.all c16"
      const pMapPeer = runner.concurrency === Infinity ? "p-map" : "p-map c16"
      for (const kind of kinds) {
        const self = results.get(key(runner.name, n, kind))!
        cells.push(
          fmtStats(self),
          ratio(results.get(key(effectPeer, n, kind)), self),
          ratio(results.get(key(pMapPeer, n, kind)), self)
        )
      }
      return cells
    })
    console.log(table(
      [
        "runner",
        "trivial ns/task",
        "× vs Effect.all",
        "× vs p-map",
        "yield ns/task",
        "× vs Effect.all",
        "× vs p-map"
      ],
      rows
    ))
  }
  const runsFor = (n: number, peer: Runner["peer"]) => plan(n, { peer } as Runner)
  console.log(
    `\nRuns per figure (after warm-up): N = 10: ${runsFor(10, "fanout").runs}, N = 1000: ${
      runsFor(1000, "fanout").runs
    } (each sample repeats the fan-out for ≥ 20 ms), N = 100,000: ${runsFor(100_000, "fanout").runs}, Effect.all at ` +
      `N = 100,000: ${runsFor(100_000, "effect").runs} (capped: seconds per call). ` +
      `"× vs X" = X's median / this runner's median, same concurrency (> 1: faster than X).`
  )
}

// ---------------------------------------------------------------------------------------------------------------
// memory per pending task, and time to start them all

const pendingN = 100_000

interface Pending {
  readonly name: string
  readonly runs: number
  /** Builds the tasks (not measured), then returns a launcher: start them all, and a way to release and await. */
  readonly prepare: (onStart: () => void) => () => { readonly release: () => Promise<unknown> }
}

const effectPending =
  (fanOut: (tasks: Array<Effect.Effect<void>>) => Effect.Effect<unknown, unknown>) => (onStart: () => void) => {
    const gate = Deferred.unsafeMake<void>(undefined as never)
    const tasks = new Array<Effect.Effect<void>>(pendingN)
    for (let i = 0; i < pendingN; i++) tasks[i] = Effect.zipRight(Effect.sync(onStart), Deferred.await(gate))
    return () => {
      const done = Effect.runPromise(fanOut(tasks))
      return {
        release: () => {
          Deferred.unsafeDone(gate, Exit.void)
          return done
        }
      }
    }
  }

const pendings: ReadonlyArray<Pending> = [
  { name: "FanOut.all", runs: 3, prepare: effectPending((tasks) => FanOut.all(tasks)) },
  { name: "FanOut.settle", runs: 3, prepare: effectPending((tasks) => FanOut.settle(tasks)) },
  {
    // Each pending task also holds its time limit's alarm.
    name: "FanOut.settle, timeout",
    runs: 3,
    prepare: effectPending((tasks) => FanOut.settle(tasks, { timeout: "1 hour" }))
  },
  { name: "Effect.all", runs: quick ? 1 : 2, prepare: effectPending((tasks) => Effect.all(tasks, unbounded)) },
  {
    // The floor for Effect 3: one bare fiber per task (the running fiber's class, shared fiber refs, no observer,
    // no result collection). Not a fan-out: it shows what running N suspended fibers costs at all.
    name: "bare fibers (floor)",
    runs: 3,
    prepare: (onStart) => {
      const gate = Deferred.unsafeMake<void>(undefined as never)
      const tasks = new Array<Effect.Effect<void>>(pendingN)
      for (let i = 0; i < pendingN; i++) tasks[i] = Effect.zipRight(Effect.sync(onStart), Deferred.await(gate))
      const parent = Effect.runSync(
        Effect.withFiberRuntime<Fiber.RuntimeFiber<unknown, unknown>>((fiber) => Effect.succeed(fiber))
      )
      const FiberRuntime = parent.constructor as new(id: FiberId.Runtime, refs: unknown, flags: unknown) => {
        start(effect: Effect.Effect<void>): void
        unsafePoll(): unknown
      }
      const refs = FiberRefs.forkAs(parent.getFiberRefs(), FiberId.unsafeMake())
      const flags = (parent as unknown as { currentRuntimeFlags: unknown }).currentRuntimeFlags
      return () => {
        const fibers = new Array<{ unsafePoll(): unknown }>(pendingN)
        for (let i = 0; i < pendingN; i++) {
          const fiber = new FiberRuntime(FiberId.unsafeMake(), refs, flags)
          fiber.start(tasks[i]!)
          fibers[i] = fiber
        }
        return {
          release: async () => {
            Deferred.unsafeDone(gate, Exit.void)
            await until(() => fibers.every((fiber) => fiber.unsafePoll() !== null))
          }
        }
      }
    }
  },
  {
    name: "Promise.all",
    runs: 3,
    prepare: (onStart) => {
      let open!: () => void
      const gate = new Promise<void>((resolve) => {
        open = resolve
      })
      const fns = new Array<() => Promise<void>>(pendingN)
      for (let i = 0; i < pendingN; i++) {
        fns[i] = async () => {
          onStart()
          await gate
        }
      }
      return () => {
        const done = Promise.all(fns.map((f) => f()))
        return {
          release: () => {
            open()
            return done
          }
        }
      }
    }
  }
]

interface PendingResult {
  readonly bytes: Stats
  readonly startMs: Stats
}

const memory = async (): Promise<Map<string, PendingResult>> => {
  const out = new Map<string, PendingResult>()
  for (const p of pendings) {
    const bytes: Array<number> = []
    const startMs: Array<number> = []
    for (let r = 0; r < p.runs + 1; r++) {
      let started = 0
      let allStartedAt = 0
      const launch = p.prepare(() => {
        if (++started === pendingN) allStartedAt = performance.now()
      })
      await settleEventLoop()
      const before = heapAfterGc()
      const t0 = performance.now()
      const running = launch()
      await until(() => started === pendingN)
      const after = heapAfterGc()
      await running.release()
      if (r === 0) continue // warm-up
      startMs.push(allStartedAt - t0)
      bytes.push((after - before) / pendingN)
    }
    out.set(p.name, { bytes: stats(bytes), startMs: stats(startMs) })
  }
  return out
}

const printMemory = (results: Map<string, PendingResult>) => {
  heading(`Pending tasks, N = ${pendingN.toLocaleString("en-US")}: heap per pending task and time to start them all`)
  const promise = results.get("Promise.all")
  const effect = results.get("Effect.all")
  console.log(table(
    ["runner", "bytes per pending task", "× vs Effect.all", "ms until all started", "× vs Effect.all"],
    pendings.map((p) => {
      const r = results.get(p.name)!
      return [
        p.name,
        fmtStats(r.bytes, 0),
        ratio(effect?.bytes, r.bytes),
        fmtStats(r.startMs),
        ratio(effect?.startMs, r.startMs)
      ]
    })
  ))
  console.log(
    `\nEach task: a counter bump, then blocked on one shared gate (Deferred / Promise). Heap used after a full GC ` +
      `with all ${pendingN.toLocaleString("en-US")} tasks blocked, minus heap used after a full GC with the tasks ` +
      `built but not started, divided by N. Median of the runs after one warm-up run. Promise.all for reference: ` +
      `${promise === undefined ? "—" : fmt(promise.bytes.median, 0)} B.`
  )
}

// ---------------------------------------------------------------------------------------------------------------
// fail fast

const failN = 1000
const failAfterMs = 20

interface FailFast {
  readonly name: string
  readonly runs: number
  /** Resolves with [ms from the failure to the return, finalizers done at the return]. */
  readonly run: () => Promise<readonly [number, number]>
}

class Boom {
  readonly _tag = "Boom"
}

const effectFailFast =
  (fanOut: (tasks: Array<Effect.Effect<void, Boom>>) => Effect.Effect<unknown, unknown>) =>
  async (): Promise<readonly [number, number]> => {
    let finalized = 0
    let failedAt = 0
    const tasks = new Array<Effect.Effect<void, Boom>>(failN)
    for (let i = 0; i < failN - 1; i++) {
      tasks[i] = Effect.ensuring(
        Effect.never,
        Effect.sync(() => {
          finalized++
        })
      )
    }
    tasks[failN - 1] = Effect.zipRight(
      Effect.sleep(failAfterMs),
      Effect.suspend(() => {
        failedAt = performance.now()
        return Effect.fail(new Boom())
      })
    )
    return Effect.runPromise(Effect.flatMap(
      Effect.exit(fanOut(tasks)),
      () => Effect.sync(() => [performance.now() - failedAt, finalized] as const)
    ))
  }

const failFasts: ReadonlyArray<FailFast> = [
  { name: "FanOut.all", runs: quick ? 3 : 9, run: effectFailFast((tasks) => FanOut.all(tasks)) },
  { name: "Effect.all", runs: quick ? 3 : 9, run: effectFailFast((tasks) => Effect.all(tasks, unbounded)) },
  {
    name: "Promise.all + AbortController",
    runs: quick ? 3 : 9,
    run: async () => {
      let finalized = 0
      let failedAt = 0
      const controller = new AbortController()
      const signal = controller.signal
      setMaxListeners(0, signal)
      const fns = new Array<() => Promise<void>>(failN)
      for (let i = 0; i < failN - 1; i++) {
        fns[i] = () =>
          new Promise<void>((_, reject) => {
            signal.addEventListener("abort", () => {
              finalized++
              reject(signal.reason)
            }, { once: true })
          })
      }
      fns[failN - 1] = async () => {
        await new Promise((resolve) => setTimeout(resolve, failAfterMs))
        failedAt = performance.now()
        throw new Boom()
      }
      const promises = fns.map((f) => f())
      try {
        await Promise.all(promises)
      } catch {
        controller.abort()
        // Wait for every sibling's cleanup, as the Effect runners do.
        await Promise.allSettled(promises)
      }
      return [performance.now() - failedAt, finalized] as const
    }
  }
]

const failFast = async (): Promise<Map<string, { readonly latency: Stats; readonly finalized: number }>> => {
  const out = new Map<string, { readonly latency: Stats; readonly finalized: number }>()
  for (const f of failFasts) {
    for (let w = 0; w < 3; w++) await f.run()
    const latencies: Array<number> = []
    let finalized = Infinity
    for (let r = 0; r < f.runs; r++) {
      const [latency, done] = await f.run()
      latencies.push(latency)
      finalized = Math.min(finalized, done)
    }
    out.set(f.name, { latency: stats(latencies), finalized })
  }
  return out
}

const printFailFast = (results: Map<string, { readonly latency: Stats; readonly finalized: number }>) => {
  heading(`Fail fast, N = ${failN}: ms from the failure to the return, siblings' finalizers done`)
  const effect = results.get("Effect.all")
  console.log(table(
    ["runner", "ms after the failure", "× vs Effect.all", "finalizers done at return"],
    failFasts.map((f) => {
      const r = results.get(f.name)!
      return [f.name, fmtStats(r.latency), ratio(effect?.latency, r.latency), `${r.finalized} / ${failN - 1}`]
    })
  ))
  console.log(
    `\n${failN - 1} tasks block forever with a finalizer (\`Effect.ensuring\` / an abort listener) that counts; the ` +
      `last task fails after ${failAfterMs} ms. Latency: from just before the failing task fails to just after the ` +
      `fan-out returns (Promise: after \`Promise.all\` rejects, \`abort()\` and \`Promise.allSettled\` of all tasks).`
  )
}

// ---------------------------------------------------------------------------------------------------------------
// targets

const printTargets = (
  t: Results,
  m: Map<string, PendingResult>,
  f: Map<string, { readonly latency: Stats; readonly finalized: number }>
) => {
  heading("Targets (issue 3)")
  const lines: Array<[string, boolean, string]> = []
  const med = (name: string, n: number, kind: Kind) => t.get(key(name, n, kind))!.median
  for (const name of ["FanOut.all", "FanOut.settle"]) {
    const r = med("Effect.all", 1000, "trivial") / med(name, 1000, "trivial")
    lines.push([`${name} ≥ 10× faster than Effect.all, unbounded, N = 1000, trivial`, r >= 10, `${fmt(r, 1)}×`])
  }
  let worst = Infinity
  let worstAt = ""
  for (const runner of runners.filter((r) => r.peer === "fanout")) {
    const peer = runner.concurrency === Infinity ? "Effect.all" : "Effect.all c16"
    for (const n of sizes) {
      for (const kind of kinds) {
        const r = med(peer, n, kind) / med(runner.name, n, kind)
        if (r < worst) {
          worst = r
          worstAt = `${runner.name}, N = ${n}, ${kind}`
        }
      }
    }
  }
  lines.push(["never slower than Effect.all (worst case)", worst >= 1, `${fmt(worst, 2)}× (${worstAt})`])
  for (const name of ["FanOut.all c16", "FanOut.settle c16", "FanOut.forEach c16"]) {
    for (const kind of kinds) {
      const r = med(name, 100_000, kind) / med("p-map c16", 100_000, kind)
      lines.push([`${name} within 2× of p-map c16, N = 100,000, ${kind}`, r <= 2, `${fmt(r, 2)}× p-map's time`])
    }
  }
  for (const name of ["FanOut.all", "FanOut.settle"]) {
    const r = m.get(name)!
    lines.push([
      `${name} ≤ 3.8 KB per pending task, N = 100,000`,
      r.bytes.median <= 3800,
      `${fmt(r.bytes.median, 0)} B`
    ])
    lines.push([
      `${name}: 100,000 tasks started within 0.5 s`,
      r.startMs.median <= 500,
      `${fmt(r.startMs.median, 0)} ms`
    ])
  }
  const ff = f.get("FanOut.all")!
  lines.push([
    "FanOut.all fail fast at N = 1000 returns within 10 ms, finalizers done",
    ff.latency.median <= 10 && ff.finalized === failN - 1,
    `${fmt(ff.latency.median, 2)} ms, ${ff.finalized} / ${failN - 1} finalizers`
  ])
  console.log(table(["target", "met", "measured (median)"], lines.map(([t, ok, v]) => [t, ok ? "yes" : "**no**", v])))
}

// ---------------------------------------------------------------------------------------------------------------
// batching: every task makes one request; the resolver answers the whole batch at once

const batchingRunners: ReadonlyArray<
  { readonly name: string; readonly peer: string; readonly run: (n: number) => Promise<unknown> }
> = [
  {
    name: "Effect.forEach",
    peer: "Effect.forEach",
    run: (n) => Effect.runPromise(Effect.forEach(indices(n), request, { ...unbounded, batching: true }))
  },
  {
    name: "FanOut.forEach",
    peer: "Effect.forEach",
    run: (n) => Effect.runPromise(FanOut.forEach(indices(n), request, { batching: true }))
  },
  {
    name: "FanOut.settleForEach",
    peer: "Effect.forEach",
    run: (n) => Effect.runPromise(FanOut.settleForEach(indices(n), request, { batching: true }))
  },
  {
    name: "Effect.forEach c16",
    peer: "Effect.forEach c16",
    run: (n) => Effect.runPromise(Effect.forEach(indices(n), request, { ...c16, batching: true }))
  },
  {
    name: "FanOut.forEach c16",
    peer: "Effect.forEach c16",
    run: (n) => Effect.runPromise(FanOut.forEach(indices(n), request, { ...c16, batching: true }))
  }
]

const batching = async (): Promise<Results> => {
  const results: Results = new Map()
  for (const n of sizes) {
    for (const runner of batchingRunners) {
      const p = plan(n, { peer: runner.name.startsWith("Effect") ? "effect" : "fanout" } as Runner)
      const ms = await time(() => runner.run(n), p)
      results.set(key(runner.name, n, "trivial"), nsPerTask(ms, n))
    }
  }
  return results
}

const printBatching = (results: Results) => {
  heading("Batched requests: ns per task, median (min–max), every task one request, `batching: true`")
  console.log(table(
    ["runner", ...sizes.flatMap((n) => [`N = ${n.toLocaleString("en-US")}`, "× vs Effect"])],
    batchingRunners.map((runner) => [
      runner.name,
      ...sizes.flatMap((n) => {
        const self = results.get(key(runner.name, n, "trivial"))!
        return [fmtStats(self), ratio(results.get(key(runner.peer, n, "trivial")), self)]
      })
    ])
  ))
  console.log(
    `\nThe resolver gets one batch of N requests in every runner. "× vs Effect" = \`Effect.forEach\` with the same ` +
      `concurrency and \`batching: true\` (> 1: faster). Same runs per figure as the throughput tables.`
  )
}

// ---------------------------------------------------------------------------------------------------------------
// per-attempt policies: the `timeout` and `hedge` options against Effect's own combinators on every task

const limit = "1 minute"
const attemptsN = 1000

/** How an Effect user hedges a call by hand: a second try after the delay, the first to succeed wins. */
const hedgedByRace = <A>(task: Effect.Effect<A>) => Effect.race(task, Effect.zipRight(Effect.sleep(limit), task))

const attemptRunners: ReadonlyArray<
  { readonly name: string; readonly peer: string; readonly run: (n: number, kind: Kind) => Promise<unknown> }
> = [
  {
    name: "Effect.all, Effect.timeout per task",
    peer: "Effect.all, Effect.timeout per task",
    run: (n, k) => Effect.runPromise(Effect.all(effectTasks(n, k).map((t) => Effect.timeout(t, limit)), unbounded))
  },
  {
    name: "FanOut.settle, no option",
    peer: "Effect.all, Effect.timeout per task",
    run: (n, k) => Effect.runPromise(FanOut.settle(effectTasks(n, k)))
  },
  {
    name: "FanOut.settle, timeout",
    peer: "Effect.all, Effect.timeout per task",
    run: (n, k) => Effect.runPromise(FanOut.settle(effectTasks(n, k), { timeout: limit }))
  },
  {
    name: "FanOut.all, timeout",
    peer: "Effect.all, Effect.timeout per task",
    run: (n, k) => Effect.runPromise(FanOut.all(effectTasks(n, k), { timeout: limit }))
  },
  {
    name: "FanOut.settle c16, timeout",
    peer: "Effect.all, Effect.timeout per task",
    run: (n, k) => Effect.runPromise(FanOut.settle(effectTasks(n, k), { ...c16, timeout: limit }))
  },
  {
    // What the option cost when it wrapped every attempt in `Effect.timeoutFail`.
    name: "FanOut.settle, Effect.timeoutFail per task",
    peer: "Effect.all, Effect.timeout per task",
    run: (n, k) =>
      Effect.runPromise(FanOut.settle(
        effectTasks(n, k).map((t) => Effect.timeoutFail(t, { duration: limit, onTimeout: () => "timeout" }))
      ))
  },
  {
    name: "Effect.all, Effect.race hedge per task",
    peer: "Effect.all, Effect.race hedge per task",
    run: (n, k) => Effect.runPromise(Effect.all(effectTasks(n, k).map(hedgedByRace), unbounded))
  },
  {
    name: "FanOut.settle, hedge",
    peer: "Effect.all, Effect.race hedge per task",
    run: (n, k) => Effect.runPromise(FanOut.settle(effectTasks(n, k), { hedge: { delay: limit } }))
  }
]

const attemptPolicies = async (): Promise<Results> => {
  const results: Results = new Map()
  for (const kind of kinds) {
    for (const runner of attemptRunners) {
      const p = plan(attemptsN, { peer: "fanout" } as Runner)
      const ms = await time(() => runner.run(attemptsN, kind), p)
      results.set(key(runner.name, attemptsN, kind), nsPerTask(ms, attemptsN))
    }
  }
  return results
}

const printAttemptPolicies = (results: Results) => {
  heading(`Per-attempt policies, N = ${attemptsN.toLocaleString("en-US")}: ns per task, median (min–max)`)
  const plain = "FanOut.settle, no option"
  console.log(table(
    ["runner", ...kinds.flatMap((kind) => [`${kind} ns/task`, "× vs Effect peer", "× vs no option"])],
    attemptRunners.map((runner) => [
      runner.name,
      ...kinds.flatMap((kind) => {
        const self = results.get(key(runner.name, attemptsN, kind))!
        return [
          fmtStats(self),
          ratio(results.get(key(runner.peer, attemptsN, kind)), self),
          ratio(results.get(key(plain, attemptsN, kind)), self)
        ]
      })
    ])
  ))
  console.log(
    `\nEvery task ends well within its limit (${limit}) and before its hedging delay (${limit}), so no backup ` +
      `starts. "Effect peer" = \`Effect.all\` with \`Effect.timeout\` per task (time-out rows), with a hand-written ` +
      `hedge per task, \`Effect.race(task, Effect.zipRight(Effect.sleep(delay), task))\` (hedge rows). ` +
      `"× vs X" = X's median / this runner's median (> 1: faster than X). Same runs per figure as the throughput ` +
      `tables at N = 1,000.`
  )
}

// ---------------------------------------------------------------------------------------------------------------

const main = async () => {
  const t0 = performance.now()
  console.log(
    `## Core benchmark\n\n${await machine()}; effect ${effectVersion()}${quick ? "; --quick" : ""}; library ${
      process.env.BENCH_SOURCE === "1" ? "from src/ through tsx" : "compiled by tsc"
    }`
  )
  if (!gcAvailable()) console.log("\n(no --expose-gc: heap figures are unreliable; run through `npm run bench:core`)")
  const t = section("throughput") ? await throughput() : undefined
  if (t !== undefined) printThroughput(t)
  const m = section("memory") ? await memory() : undefined
  if (m !== undefined) printMemory(m)
  const f = section("failfast") ? await failFast() : undefined
  if (f !== undefined) printFailFast(f)
  if (section("batching")) printBatching(await batching())
  if (section("attempts")) printAttemptPolicies(await attemptPolicies())
  if (t !== undefined && m !== undefined && f !== undefined) printTargets(t, m, f)
  console.log(`\nTotal ${fmt((performance.now() - t0) / 1000, 0)} s.`)
}

await main()
