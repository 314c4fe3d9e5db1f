/**
 * `npm run bench:compare -- --base=<git ref> [--head=<git ref>]`: what a change costs, measured where the core
 * benchmark's ratios are too noisy to tell: the library at two commits (the working tree for `head` unless given),
 * each compiled by tsc into a directory of its own, loaded into one process and timed alternately, round by round,
 * with Effect 4's `Effect.all` in the same rounds.
 *
 * - `failfast`: the core benchmark's fail fast (`failFast.ts`): N = 1,000, 999 siblings waiting with a counting
 *   finalizer, the last task failing after 20 ms; ms from the failure to the return, every finalizer done.
 * - `throughput`: fan-outs that use none of the options a change adds — `settle` and `all` of `Effect.succeed` and
 *   `Effect.sync` tasks at N = 10 and 1,000, and `settle` with a `retry` never used and a `hedge` that never fires;
 *   CPU time per task (user + system, all threads); and `settle` with a `deadline` never reached.
 * - `options`: `head` alone, what turning an option on costs against the same fan-out without it — a `budget`, a
 *   `budget` with `retry` or `hedge`, attempt metrics with `retry`, an adaptive hedge delay against a fixed one; CPU
 *   time per task, N = 1,000 `Effect.sync` tasks that all succeed.
 *
 *   --only=failfast,throughput,options   the sections to run (default: all three)
 *   --rounds=31                  rounds per wait or scenario (after warm-up runs of each runner)
 *
 * Prints a Markdown table per section: per scenario and runner the median (min–max), and head ÷ base as the median of
 * the per-round ratios (min–max).
 */
import * as Effect from "effect/Effect"
import * as Schedule from "effect/Schedule"
import { spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import { effectFailFast, failN, type Wait, waits } from "./failFast.js"
import { cost, fmtStats, machine, nsPerTask, type Stats, stats, table, timeTogether } from "./harness.js"

const root = fileURLToPath(new URL("../../", import.meta.url))
const cacheDir = Path.join(root, "node_modules/.cache/effect-fanout-compare")

const flag = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)

const fail = (message: string): never => {
  console.error(`bench:compare: ${message}`)
  process.exit(1)
}

for (const arg of process.argv.slice(2)) {
  if (!/^--(base|head|rounds|only)=/.test(arg)) {
    fail(`unrecognised flag ${arg} (the flags: --base=REF --head=REF --rounds=N --only=failfast,throughput,options)`)
  }
}
const baseRef = flag("base") ?? fail("give --base=<git ref>, the commit to compare against")
const headRef = flag("head")
const roundsRaw = flag("rounds") ?? "31"
const rounds = /^\d+$/.test(roundsRaw) && Number(roundsRaw) >= 3 ? Number(roundsRaw) : fail("--rounds must be ≥ 3")
const sections = ["failfast", "throughput", "options"] as const
const only = (flag("only") ?? sections.join(",")).split(",")
for (const name of only) {
  if (!(sections as ReadonlyArray<string>).includes(name)) {
    fail(`--only: unknown section ${name} (${sections.join(", ")})`)
  }
}

const git = (...args: Array<string>): string => {
  const r = spawnSync("git", args, { cwd: root, encoding: "utf8" })
  if (r.status !== 0) fail(`git ${args.join(" ")}: ${r.stderr.trim()}`)
  return r.stdout.trim()
}

/** Compiles `src/` of `ref` (the working tree when undefined) into a directory of its own; returns its `FanOut.js`. */
const compile = (ref: string | undefined): { readonly name: string; readonly module: string } => {
  const sha = ref === undefined ? "worktree" : git("rev-parse", "--short", `${ref}^{commit}`)
  const dir = Path.join(cacheDir, sha)
  Fs.rmSync(dir, { recursive: true, force: true })
  Fs.mkdirSync(dir, { recursive: true })
  if (ref === undefined) {
    Fs.cpSync(Path.join(root, "src"), Path.join(dir, "src"), { recursive: true })
  } else {
    const archive = spawnSync("git", ["archive", "--format=tar", sha, "src"], { cwd: root, maxBuffer: 1 << 28 })
    if (archive.status !== 0) fail(`git archive ${sha}: ${archive.stderr.toString().trim()}`)
    const untar = spawnSync("tar", ["-x", "-C", dir], { input: archive.stdout })
    if (untar.status !== 0) fail(`tar: ${untar.stderr.toString().trim()}`)
  }
  // The project's compiler options, this directory's sources; `effect` resolves to this package's node_modules.
  Fs.writeFileSync(
    Path.join(dir, "tsconfig.json"),
    JSON.stringify({
      extends: Path.join(root, "tsconfig.json"),
      compilerOptions: {
        noEmit: false,
        rootDir: "src",
        outDir: "dist",
        declaration: false,
        declarationMap: false,
        sourceMap: false,
        inlineSources: false
      },
      include: ["src"]
    })
  )
  const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")
  const r = spawnSync(process.execPath, [tsc, "-p", Path.join(dir, "tsconfig.json")], { encoding: "utf8" })
  if (r.status !== 0) console.error(`tsc reported errors for ${sha} (the emitted code runs):\n${r.stdout}${r.stderr}`)
  return { name: ref === undefined ? "working tree" : `${ref} (${sha})`, module: Path.join(dir, "dist/FanOut.js") }
}

type FanOutModule = typeof import("../../src/FanOut.js")
type BudgetModule = typeof import("../../src/Budget.js")
type HedgeModule = typeof import("../../src/Hedge.js")
type AttemptModule = typeof import("../../src/Attempt.js")

const base = compile(baseRef)
const head = compile(headRef)
const baseFanOut: FanOutModule = await import(pathToFileURL(base.module).href)
const headFanOut: FanOutModule = await import(pathToFileURL(head.module).href)
/** A module of `head`'s compiled library, by its name (`Budget`, `Hedge`, `Attempt`). */
const headModule = <M>(name: string): Promise<M> =>
  import(pathToFileURL(Path.join(Path.dirname(head.module), `${name}.js`)).href)

console.log(`bench:compare: base ${base.name}, head ${head.name}; ${machine()}`)

if (only.includes("failfast")) {
  const runners = [
    { name: `FanOut.all, base`, run: effectFailFast((tasks) => baseFanOut.all(tasks)) },
    { name: `FanOut.all, head`, run: effectFailFast((tasks) => headFanOut.all(tasks)) },
    { name: "Effect.all", run: effectFailFast((tasks) => Effect.all(tasks, { concurrency: "unbounded" })) }
  ]

  const rows: Array<Array<string>> = []
  for (const wait of waits as ReadonlyArray<Wait>) {
    for (const r of runners) for (let w = 0; w < 3; w++) await r.run(wait)
    const ms = runners.map(() => new Array<number>())
    const ratios: Array<number> = []
    for (let round = 0; round < rounds; round++) {
      const got = new Array<number>(runners.length)
      for (let k = 0; k < runners.length; k++) {
        // Each round starts with another runner, so that none always runs first.
        const i = (k + round) % runners.length
        const [latency, finalized] = await runners[i]!.run(wait)
        if (finalized !== failN - 1) fail(`${runners[i]!.name}: ${finalized} of ${failN - 1} finalizers done at return`)
        got[i] = latency
        ms[i]!.push(latency)
      }
      ratios.push(got[1]! / got[0]!)
    }
    const ratio = stats(ratios)
    runners.forEach((r, i) => {
      rows.push([
        wait,
        r.name,
        fmtStats(stats(ms[i]!)),
        i === 1 ? `${ratio.median.toFixed(2)}× (${ratio.min.toFixed(2)}–${ratio.max.toFixed(2)})` : ""
      ])
    })
  }
  console.log(table(["siblings wait on", "runner", "ms after the failure", "head ÷ base, per round"], rows, 2))
  console.log(`\n${rounds} rounds per wait after 3 warm-up runs of each runner; every finalizer done at every return.`)
}

/**
 * CPU ns per task of each fan-out `make` builds (`n` tasks), timed together: each sample runs `k` of them in a row,
 * `rounds` rounds after 3 warm-up samples, the order rotating.
 */
const cpuPerTask = async (
  makes: ReadonlyArray<() => Effect.Effect<unknown, unknown>>,
  n: number,
  k: number
): Promise<Array<Stats>> => {
  const bodies = makes.map((make) => () =>
    Effect.runPromise(Effect.exit(Effect.repeat(Effect.suspend(make), { times: k - 1 })))
  )
  return (await timeTogether(bodies, { runs: rounds, warmup: 3, clock: "cpu" })).map((s) => nsPerTask(s, n * k))
}

/** `self` ÷ `peer`: the ratio of the medians, with the min–max of the per-round ratios. */
const ratioOf = (self: Stats, peer: Stats): string => {
  const ratio = cost(self, peer)!
  return `${ratio.ratio.toFixed(2)}× (${ratio.min.toFixed(2)}–${ratio.max.toFixed(2)})`
}

if (only.includes("throughput")) {
  // Each scenario: a fan-out of `n` tasks, made anew per call; `k` fan-outs in a row per sample.
  const succeed = (n: number) => Array.from({ length: n }, (_, i) => Effect.succeed(i))
  const sync = (n: number) => Array.from({ length: n }, (_, i) => Effect.sync(() => i))
  const retry = Schedule.recurs(2)
  const hedge = { delay: "1 hour" } as const
  const scenarios: ReadonlyArray<{
    readonly name: string
    readonly n: number
    readonly fanOut: (lib: FanOutModule, n: number) => Effect.Effect<unknown, unknown>
    readonly peer: (n: number) => Effect.Effect<unknown, unknown>
  }> = [
    {
      name: "settle, N = 10, Effect.succeed",
      n: 10,
      fanOut: (lib, n) => lib.settle(succeed(n)),
      peer: (n) => Effect.all(succeed(n), { concurrency: "unbounded", mode: "result" })
    },
    {
      name: "all, N = 10, Effect.succeed",
      n: 10,
      fanOut: (lib, n) => lib.all(succeed(n)),
      peer: (n) => Effect.all(succeed(n), { concurrency: "unbounded" })
    },
    {
      name: "settle, N = 1,000, Effect.succeed",
      n: 1000,
      fanOut: (lib, n) => lib.settle(succeed(n)),
      peer: (n) => Effect.all(succeed(n), { concurrency: "unbounded", mode: "result" })
    },
    {
      name: "all, N = 1,000, Effect.sync",
      n: 1000,
      fanOut: (lib, n) => lib.all(sync(n)),
      peer: (n) => Effect.all(sync(n), { concurrency: "unbounded" })
    },
    {
      name: "settle, N = 1,000, retry never used",
      n: 1000,
      fanOut: (lib, n) => lib.settle(sync(n), { retry }),
      peer: (n) => Effect.all(sync(n).map((t) => Effect.retry(t, retry)), { concurrency: "unbounded", mode: "result" })
    },
    {
      name: "settle, N = 1,000, hedge never fires",
      n: 1000,
      fanOut: (lib, n) => lib.settle(sync(n), { hedge }),
      peer: (n) => Effect.all(sync(n), { concurrency: "unbounded", mode: "result" })
    },
    {
      name: "settle, N = 10, deadline never reached",
      n: 10,
      fanOut: (lib, n) => lib.settle(succeed(n), { deadline: "1 hour" }),
      peer: (n) => Effect.timeout(Effect.all(succeed(n), { concurrency: "unbounded", mode: "result" }), "1 hour")
    }
  ]
  const rows: Array<Array<string>> = []
  for (const scenario of scenarios) {
    // About 60,000 tasks a sample.
    const k = Math.max(1, Math.round(60_000 / scenario.n))
    const perTask = await cpuPerTask(
      [
        () => scenario.fanOut(baseFanOut, scenario.n),
        () => scenario.fanOut(headFanOut, scenario.n),
        () => scenario.peer(scenario.n)
      ],
      scenario.n,
      k
    )
    const names = ["FanOut, base", "FanOut, head", "Effect.all"]
    perTask.forEach((s, i) => {
      rows.push([scenario.name, names[i]!, fmtStats(s), i === 1 ? ratioOf(perTask[1]!, perTask[0]!) : ""])
    })
  }
  console.log(table(["fan-out (no new option)", "runner", "CPU ns per task", "head ÷ base"], rows, 2))
  console.log(
    `\n${rounds} rounds per scenario after 3 warm-up samples of each runner, runners rotated each round; a sample is ` +
      "about 60,000 tasks (6,000 fan-outs of 10, 60 of 1,000); head ÷ base: ratio of the medians, min–max of the " +
      "per-round ratios."
  )
}

if (only.includes("options")) {
  const Budget = await headModule<BudgetModule>("Budget")
  const Hedge = await headModule<HedgeModule>("Hedge")
  const Attempt = await headModule<AttemptModule>("Attempt")
  const n = 1000
  const k = 60
  const sync = () => Array.from({ length: n }, (_, i) => Effect.sync(() => i))
  const retry = Schedule.recurs(2)
  // Budgets and the adaptive delay are made once and shared, as an application shares them across requests.
  const budget = Budget.makeUnsafe({ maxTokens: 10, tokenRatio: 0.1 })
  const adaptive = Hedge.adaptive({ percentile: 0.95, window: 100, min: "1 hour", max: "1 hour" })
  const F = headFanOut
  const pairs: ReadonlyArray<{
    readonly name: string
    readonly against: string
    readonly on: () => Effect.Effect<unknown, unknown>
    readonly off: () => Effect.Effect<unknown, unknown>
  }> = [
    {
      name: "`budget` alone",
      against: "no option",
      on: () => F.settle(sync(), { budget }),
      off: () => F.settle(sync())
    },
    {
      name: "`retry` + `budget`",
      against: "`retry`",
      on: () => F.settle(sync(), { retry, budget }),
      off: () => F.settle(sync(), { retry })
    },
    {
      name: "`hedge` + `budget`",
      against: "`hedge`",
      on: () => F.settle(sync(), { hedge: { delay: "1 hour" }, budget }),
      off: () => F.settle(sync(), { hedge: { delay: "1 hour" } })
    },
    {
      name: "`retry` under `Attempt.layerMetrics`",
      against: "`retry`",
      on: () => Effect.provide(F.settle(sync(), { retry }), Attempt.layerMetrics),
      off: () => F.settle(sync(), { retry })
    },
    {
      name: "`hedge` with `Hedge.adaptive` (window 100)",
      against: "`hedge` with a fixed delay",
      on: () => F.settle(sync(), { hedge: { delay: adaptive } }),
      off: () => F.settle(sync(), { hedge: { delay: "1 hour" } })
    }
  ]
  const rows: Array<Array<string>> = []
  for (const pair of pairs) {
    const [on, off] = await cpuPerTask([pair.on, pair.off], n, k)
    rows.push([pair.name, pair.against, fmtStats(on), fmtStats(off), ratioOf(on!, off!)])
  }
  console.log(table(["option (head)", "against", "CPU ns per task, on", "off", "on ÷ off"], rows, 2))
  console.log(
    `\n${head.name}, N = ${n} Effect.sync tasks that all succeed, ${k} fan-outs a sample, ${rounds} rounds, the two ` +
      "alternating; on ÷ off: ratio of the medians, min–max of the per-round ratios."
  )
}
