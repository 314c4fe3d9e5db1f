/**
 * `npm run bench:calls [-- --base=<git ref>] [--rounds=N] [--client=undici|node]`: what one feature call of the
 * reference app costs in CPU, and which of its parts cost it. `bench:load` measures whole requests through three
 * servers; this isolates the client side of the twelve calls, where most of the app's CPU goes.
 *
 * The twelve simulators run in a process of their own (`load/target.ts simulators`: 5–10 ms an answer), so the CPU
 * this process spends (`process.cpuUsage()`, user + system) is the calls' own. Each runner makes 200 fan-outs of 12
 * calls (`FanOut.settle` with a 2 s deadline, as the app's partial mode, 16 fan-outs at once) per round, over one
 * shared HttpClient (undici, 32 connections per service, as deployed). Runners, in rotating order each round:
 *
 * - the app's client (`FeatureClient.make`, the working tree), and, with `--base`, the same file at that commit;
 * - a minimal call: `HttpClient.get`, `response.text`, `JSON.parse`, the feature's Schema decoder (built once);
 * - the minimal call with one of the app's parts added: the body read as a stream (`readAtMost`), a race with a
 *   timer (`Effect.timeoutOrElse`), a span (`Effect.withSpan`), `HttpClient.retryTransient`;
 * - below Effect's HttpClient: undici's own `request` (its own pool of 32 connections per service) in one
 *   `Effect.tryPromise` that aborts it when interrupted, the body decoded the same way.
 *
 * Prints a Markdown table: µs of CPU per call, median of the rounds after the first (min–max), and each runner ÷ the
 * app's client, the median of the per-round ratios (min–max).
 */
import { NodeHttpClient } from "@effect/platform-node"
import { Duration, Effect, Schema } from "effect"
import type { HttpClientResponse } from "effect/http"
import { HttpClient, HttpClientRequest } from "effect/http"
import { fork, spawnSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath, pathToFileURL } from "node:url"
import * as Undici from "undici"
import * as FeatureClient from "../../examples/analytics/FeatureClient.js"
import { configPrefix, features, pathOf, table as featureTable } from "../../examples/analytics/Features.js"
import { FanOut } from "../../src/index.js"
import { fmtStats, machine, stats, table } from "./harness.js"
import type { Message } from "./load/target.js"

const root = fileURLToPath(new URL("../../", import.meta.url))

const fail = (message: string): never => {
  console.error(`bench:calls: ${message}`)
  process.exit(1)
}
const flag = (name: string): string | undefined =>
  process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3)
for (const arg of process.argv.slice(2)) {
  if (!/^--(base|rounds|client)=/.test(arg)) {
    fail(`unrecognised flag ${arg} (the flags: --base=REF --rounds=N --client=undici|node)`)
  }
}
const roundsRaw = flag("rounds") ?? "9"
const rounds = /^\d+$/.test(roundsRaw) && Number(roundsRaw) >= 3 ? Number(roundsRaw) : fail("--rounds must be ≥ 3")
const clientKind = flag("client") ?? "undici"
if (clientKind !== "undici" && clientKind !== "node") fail("--client must be undici or node")
const baseRef = flag("base")

/**
 * `examples/analytics/FeatureClient.ts` as it was at `ref`, written beside the working tree's (so its relative
 * imports resolve to today's modules) under a name git ignores; removed when the script exits.
 */
const clientAt = (ref: string): { readonly name: string; readonly file: string } => {
  const sha = spawnSync("git", ["rev-parse", "--short", `${ref}^{commit}`], { cwd: root, encoding: "utf8" })
  if (sha.status !== 0) fail(`git rev-parse ${ref}: ${sha.stderr.trim()}`)
  const source = spawnSync("git", ["show", `${sha.stdout.trim()}:examples/analytics/FeatureClient.ts`], {
    cwd: root,
    encoding: "utf8"
  })
  if (source.status !== 0) fail(`git show ${ref}: ${source.stderr.trim()}`)
  const file = Path.join(root, "examples/analytics", `.bench-FeatureClient-${sha.stdout.trim()}.ts`)
  Fs.writeFileSync(file, source.stdout)
  process.on("exit", () => Fs.rmSync(file, { force: true }))
  return { name: `the app's client at ${ref} (${sha.stdout.trim()})`, file }
}

const simulators = fork(fileURLToPath(new URL("./load/target.ts", import.meta.url)), ["simulators"], {
  execArgv: ["--import", "tsx"],
  stdio: ["ignore", "inherit", "inherit", "ipc"]
})
process.on("exit", () => simulators.kill())
const urls = await new Promise<Record<string, string>>((resolve, reject) => {
  simulators.on("message", (message: Message) => {
    if (message.type === "ready" && message.urls !== undefined) resolve(message.urls)
  })
  simulators.on("exit", (code) => reject(new Error(`the simulators exited with code ${code}`)))
})
for (const feature of features) process.env[`${configPrefix(feature)}_URL`] = urls[feature]

type Call = (customerId: string) => Effect.Effect<unknown, unknown>
type Runner = { readonly name: string; readonly make: Effect.Effect<Call, unknown, HttpClient.HttpClient> }

const feature = "listings"
const decode = Schema.decodeUnknownEffect(featureTable[feature].response)
/** The minimal call, with `part` wrapped around it or in it. */
const minimal = (
  name: string,
  part: {
    readonly client?: (client: HttpClient.HttpClient) => HttpClient.HttpClient
    readonly read?: (response: HttpClientResponse.HttpClientResponse) => Effect.Effect<string>
    readonly around?: <A, E>(call: Effect.Effect<A, E>) => Effect.Effect<A, unknown>
  } = {}
): Runner => ({
  name,
  make: Effect.map(HttpClient.HttpClient, (base) => {
    const client = (part.client ?? ((c) => c))(
      base.pipe(HttpClient.mapRequest(HttpClientRequest.prependUrl(urls[feature]!)))
    )
    const read = part.read ?? ((response) => Effect.orDie(response.text))
    const around = part.around ?? ((call) => call)
    return (customerId: string) =>
      around(
        client.get(pathOf(feature, customerId)).pipe(
          Effect.flatMap(read),
          Effect.flatMap((text) => decode(JSON.parse(text)))
        )
      )
  })
})

const appClient = (name: string, module: typeof FeatureClient): Runner => ({
  name,
  make: Effect.map(module.make(feature), (client): Call => (customerId) => client.usage(customerId as never))
})

const runners: Array<Runner> = [appClient("the app's client (working tree)", FeatureClient)]
if (baseRef !== undefined) {
  const { file, name } = clientAt(baseRef)
  runners.push(appClient(name, await import(pathToFileURL(file).href)))
}
runners.push(
  minimal("minimal: get, text, JSON.parse, decode"),
  minimal("minimal + body as a stream (readAtMost)", {
    read: (response) =>
      Effect.orDie(Effect.map(FeatureClient.readAtMost(response.pipe(streamOnly), 65_536), ({ text }) => text))
  }),
  minimal("minimal + Effect.timeoutOrElse (5 s)", {
    around: (call) => Effect.timeoutOrElse(call, { duration: Duration.seconds(5), orElse: () => Effect.fail("t") })
  }),
  minimal("minimal + Effect.withSpan", {
    around: (call) => Effect.withSpan(call, "feature.listings.usage", { attributes: { feature, customerId: "c" } })
  }),
  minimal("minimal + retryTransient", {
    client: HttpClient.retryTransient({ retryOn: "errors-only", times: 1 })
  })
)

// The floor under any client on undici: its own `request`, in one Effect that aborts it when interrupted.
const pool = new Undici.Agent({ connections: 32 })
runners.push({
  name: "undici.request in Effect.tryPromise, decode",
  make: Effect.succeed((customerId: string) =>
    Effect.tryPromise({
      try: (signal) =>
        Undici.request(`${urls[feature]}${pathOf(feature, customerId)}`, { dispatcher: pool, signal }).then((r) =>
          r.body.text()
        ),
      catch: (e) => e
    }).pipe(Effect.flatMap((text) => decode(JSON.parse(text))))
  )
})

/** The response without its `content-length`, so that `readAtMost` reads it as a stream. */
function streamOnly(
  response: HttpClientResponse.HttpClientResponse
): HttpClientResponse.HttpClientResponse {
  const { "content-length": _, ...headers } = response.headers
  return new Proxy(response, { get: (target, key) => key === "headers" ? headers : Reflect.get(target, key) })
}

const fanOuts = 200
const calls = fanOuts * 12

const program = Effect.gen(function*() {
  const built: Array<Call> = []
  for (const runner of runners) built.push(yield* runner.make)
  const micros = runners.map(() => new Array<number>())
  for (let round = 0; round < rounds; round++) {
    for (let k = 0; k < built.length; k++) {
      // Each round starts with another runner, so that none always runs first.
      const i = (k + round) % built.length
      const call = built[i]!
      let failures = 0
      const before = process.cpuUsage()
      yield* Effect.forEach(
        Array.from({ length: fanOuts }, (_, n) => n),
        (n) =>
          Effect.map(
            FanOut.settle(Array.from({ length: 12 }, (_, c) => call(`c-${round}-${n}-${c}`)), {
              deadline: Duration.seconds(2)
            }),
            (outcomes) => {
              failures += outcomes.filter((outcome) => outcome._tag !== "Success").length
            }
          ),
        { concurrency: 16, discard: true }
      )
      const used = process.cpuUsage(before)
      if (failures > 0) fail(`${runners[i]!.name}: ${failures} of ${calls} calls did not succeed`)
      // The first round warms every runner up; it is not counted.
      if (round > 0) micros[i]!.push((used.user + used.system) / calls)
    }
  }
  const rows = runners.map((runner, i) => {
    const ratio = stats(micros[i]!.map((x, r) => x / micros[0]![r]!))
    return [
      runner.name,
      fmtStats(stats(micros[i]!)),
      i === 0 ? "1.00×" : `${ratio.median.toFixed(2)}× (${ratio.min.toFixed(2)}–${ratio.max.toFixed(2)})`
    ]
  })
  console.log(table(["runner", "CPU µs per call", "÷ the app's client, per round"], rows))
  console.log(
    `\n${rounds - 1} rounds of ${fanOuts} fan-outs × 12 calls per runner after a warm-up round; every call succeeded.`
  )
})

console.log(`bench:calls: ${clientKind} client; ${machine()}`)
await Effect.runPromise(
  program.pipe(
    Effect.provide(
      clientKind === "node" ?
        NodeHttpClient.layerNodeHttpOptions({ keepAlive: true, maxSockets: 32 }) :
        NodeHttpClient.layerUndiciOptions({ connections: 32 })
    )
  )
)
process.exit(0)
