/**
 * `npm run demo`: the analytics API and its twelve feature services, in one process on 127.0.0.1, walked through
 * the situations the library exists for. Every call below is real HTTP; the simulators count what they see.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Effect, Logger, References } from "effect"
import * as Embedded from "../examples/analytics/harness/Embedded.js"
import * as Simulator from "../examples/analytics/harness/Simulator.js"

interface Call {
  readonly mode: "partial" | "strict"
  readonly deadlineMs?: number
}

interface Scenario {
  readonly title: string
  readonly explain: string
  readonly overrides: Simulator.Overrides
  readonly calls: ReadonlyArray<Call>
}

// Fast, steady services so the scenarios differ only by the fault they inject.
const steady: Simulator.Overrides = {
  all: { latencyMs: 20, jitterMs: 40, errorRate: 0, malformedRate: 0, hangRate: 0 }
}

const scenarios: ReadonlyArray<Scenario> = [
  {
    title: "1. All twelve services healthy",
    explain: "Both modes answer 200 with twelve `ok` panels.",
    overrides: steady,
    calls: [{ mode: "partial" }, { mode: "strict" }]
  },
  {
    title: "2. payments answers 503",
    explain:
      "payments answers 503 in 5 ms; the other services take 250-350 ms. strict fails fast: 502 naming payments\n" +
      "   as soon as its 503 arrives, without a retry, and the eleven calls in flight are aborted. partial retries\n" +
      "   payments twice (a 503 may be a blip; it waits for the others anyway), then keeps the eleven panels that\n" +
      "   arrived and marks payments failed.",
    overrides: {
      all: { ...steady.all, latencyMs: 250, jitterMs: 100 },
      payments: { errorRate: 1, latencyMs: 5, jitterMs: 0 }
    },
    calls: [{ mode: "strict" }, { mode: "partial" }]
  },
  {
    title: "3. calendar hangs",
    explain: "partial answers at its deadline (deadlineMs=800) with calendar `timed_out`; strict answers 504.",
    overrides: { ...steady, calendar: { hangRate: 1 } },
    calls: [{ mode: "partial", deadlineMs: 800 }, { mode: "strict", deadlineMs: 800 }]
  },
  {
    title: "4. reports crashes",
    explain: "Its handler throws and answers 500 with a stack trace (partial retries it like any 5xx): the stack is\n" +
      "   logged here, never sent on. strict answers 502 naming reports.",
    overrides: { ...steady, reports: { crash: true } },
    calls: [{ mode: "partial" }, { mode: "strict" }]
  },
  {
    title: "5. documents answers malformed JSON",
    explain:
      "Schema decoding rejects the body: the panel is `failed` with reason `bad_response` (never retried: the\n" +
      "   service would send the same body again); strict answers 502 naming documents.",
    overrides: { ...steady, documents: { malformedRate: 1 } },
    calls: [{ mode: "partial" }, { mode: "strict" }]
  },
  {
    title: "6. reports needs more time than the budget",
    explain: "reports takes 600 ms; the request's deadline is 300 ms. Each call carries the budget left\n" +
      "   (x-fanout-timeout: about 300m): reports gives up at once and answers 504 saying so, so partial marks it `timed_out`\n" +
      "   in a few ms instead of waiting for the deadline; strict answers 502 at once and logs, per call it cancels,\n" +
      "   why (feature call cancelled: SiblingFailed by reports).",
    overrides: { all: { ...steady.all, latencyMs: 100, jitterMs: 50 }, reports: { latencyMs: 600, jitterMs: 0 } },
    calls: [{ mode: "partial", deadlineMs: 300 }, { mode: "strict", deadlineMs: 300 }]
  }
]

const dim = (text: string) => process.stdout.isTTY ? `\x1b[2m${text}\x1b[0m` : text
const bold = (text: string) => process.stdout.isTTY ? `\x1b[1m${text}\x1b[0m` : text

/** The first line of `text`, cut at a word to at most `max` characters, with "…" when something was left out. */
const firstLine = (text: string, max: number): string => {
  const [line = ""] = text.split("\n")
  if (line.length <= max) return line
  const cut = line.lastIndexOf(" ", max - 1)
  return `${line.slice(0, cut > max / 2 ? cut : max - 1)}…`
}

/** Server-side logs, one short line each: enough to see that details are logged, not a wall of stack frames. */
const compactLogger = Logger.make(({ fiber, logLevel, message }) => {
  const text = (Array.isArray(message) ? message : [message]).map(String).join(" ")
  const annotations = fiber.getRef(References.CurrentLogAnnotations)
  const details = ["status", "body", "stack"].flatMap((key) =>
    annotations[key] === undefined ? [] : [`${key}=${firstLine(String(annotations[key]), 90)}`]
  )
  process.stdout.write(
    dim(`      server log ${logLevel.toUpperCase()} ${text}${details.length ? ` (${details.join(", ")})` : ""}`) + "\n"
  )
})

interface PanelJson {
  readonly feature: string
  readonly status: string
  readonly durationMs: number
  readonly attempts: number
  readonly reason?: string
  readonly usage?: { readonly count: number }
}

/** The two shapes of answer: a `UsageResponse`, or a `FeatureFailed` / `DeadlineExceeded` error. */
interface ResponseJson {
  readonly complete: boolean
  readonly panels: ReadonlyArray<PanelJson>
  readonly _tag: string
  readonly message: string
  readonly pending?: ReadonlyArray<string>
}

const printTable = (panels: ReadonlyArray<PanelJson>) => {
  console.log(dim("      feature         status       ms  detail"))
  for (const panel of panels) {
    const detail = (panel.usage !== undefined ? `count=${panel.usage.count}` : panel.reason ?? "") +
      (panel.attempts > 1 ? ` after ${panel.attempts} attempts` : "")
    console.log(
      `      ${panel.feature.padEnd(15)} ${panel.status.padEnd(10)} ${String(panel.durationMs).padStart(4)}  ${detail}`
    )
  }
}

const run = (base: string, simulators: Simulator.Simulators, call: Call) =>
  Effect.gen(function*() {
    const query = `mode=${call.mode}${call.deadlineMs === undefined ? "" : `&deadlineMs=${call.deadlineMs}`}`
    const path = `/customers/c-1042/usage?${query}`
    console.log(`\n   ${bold(`GET ${path}`)}`)
    const started = performance.now()
    const [status, body] = yield* Effect.promise(async () => {
      const response = await fetch(`${base}${path}`)
      return [response.status, (await response.json()) as ResponseJson] as const
    })
    const elapsed = Math.round(performance.now() - started)
    // Let the simulators see every connection close before counting what happened to the calls.
    const counts = yield* Effect.promise(() =>
      simulators.awaitCounts((all) => {
        const sum = Simulator.total(all)
        return sum.started === sum.completed + sum.aborted
      })
    ).pipe(Effect.timeoutOrElse({ duration: "2 seconds", orElse: () => Effect.sync(() => simulators.counts()) }))
    const sum = Simulator.total(counts)
    if (status === 200) {
      console.log(`   → 200, complete: ${body.complete}`)
      printTable(body.panels)
    } else {
      const pending = body.pending === undefined ? "" : ` (pending: ${body.pending.join(", ")})`
      console.log(`   → ${status} ${body._tag}: ${body.message}${pending}`)
    }
    console.log(
      `   total ${elapsed} ms · downstream calls: ${sum.started} started, ${sum.completed} answered, ${sum.aborted} aborted`
    )
    simulators.resetCounts()
  })

const program = Effect.gen(function*() {
  const simulators = yield* Simulator.SimulatorsService
  const base = yield* Embedded.apiUrl
  console.log(bold("effect-fanout demo: an analytics API fanning out to twelve feature services"))
  console.log(`API on ${base}; feature services on ${Object.values(simulators.urls).length} loopback ports.`)
  console.log("partial = FanOut.settle with a deadline (one panel per feature); strict = FanOut.all (fail fast).")
  console.log(
    dim(
      "partial retries a call to an unavailable service twice (FEATURE_RETRIES); strict fails at the first failure\n" +
        "(STRICT_RETRIES=0). See the spans with `npm run serve -- --trace=console`."
    )
  )
  const started = performance.now()
  for (const scenario of scenarios) {
    console.log(`\n${bold(scenario.title)}\n   ${scenario.explain}`)
    simulators.scenario(scenario.overrides)
    for (const call of scenario.calls) yield* run(base, simulators, call)
  }
  return performance.now() - started
})

program.pipe(
  Effect.provide(Embedded.layer({ listen: { port: 0, host: "127.0.0.1" } })),
  // After the layer is released: the API and the simulators have closed by now.
  Effect.tap((elapsed) =>
    Effect.sync(() => console.log(`\nDone in ${(elapsed / 1000).toFixed(1)} s; servers closed.`))
  ),
  Effect.provide(Logger.layer([compactLogger])),
  NodeRuntime.runMain
)
