/**
 * Reads a V8 `.cpuprofile` (what `node --cpu-prof` writes) and says where the time went: self time by part of the
 * stack (the library, the application, Effect, the platform, undici, Node's internals, the garbage collector...) and
 * the functions with the most self time.
 *
 * @since 1.0.0
 */
import * as Fs from "node:fs"

interface Node {
  readonly id: number
  readonly callFrame: { readonly functionName: string; readonly url: string; readonly lineNumber: number }
}

interface Profile {
  readonly nodes: ReadonlyArray<Node>
  readonly samples: ReadonlyArray<number>
  readonly timeDeltas: ReadonlyArray<number>
}

/** Which part of the stack a function belongs to, from its script's URL. */
const part = (frame: Node["callFrame"]): string => {
  const url = frame.url
  if (url === "") {
    if (frame.functionName === "(garbage collector)") return "garbage collector"
    if (frame.functionName === "(idle)") return "idle"
    if (frame.functionName === "(program)") return "V8 / native (program)"
    return "native (V8 / Node bindings: socket writes, string encoding, parsing)"
  }
  if (url.includes("/node_modules/effect/")) {
    const module = /\/node_modules\/effect\/dist\/(.*?)\.js/.exec(url)?.[1] ?? ""
    if (module.startsWith("internal/schema") || module.startsWith("Schema")) return "effect: Schema"
    if (module.startsWith("unstable/http") || module.startsWith("http")) return "effect: http"
    return "effect: runtime and core"
  }
  if (url.includes("/node_modules/@effect/platform-node")) return "@effect/platform-node"
  if (url.includes("/node_modules/undici/") || url.includes("internal/deps/undici")) return "undici"
  if (url.includes("/node_modules/tsx/") || url.includes("/node_modules/esbuild")) return "tsx"
  if (url.includes("/node_modules/")) return `other packages`
  if (url.includes("/src/")) return "effect-fanout (src/)"
  if (url.includes("/examples/")) return "the application (examples/)"
  if (url.includes("/scripts/")) return "bench harness (scripts/)"
  if (url.startsWith("node:internal/modules") || url.startsWith("node:internal/vm")) return "module loading (start-up)"
  if (url.startsWith("node:internal/process/task_queues") || url.startsWith("node:async_hooks")) {
    return "node: nextTick, async hooks"
  }
  if (url.startsWith("node:internal/http") || url.startsWith("node:_http") || url.startsWith("node:http")) {
    return "node: http"
  }
  if (url.startsWith("node:internal/streams") || url.startsWith("node:stream")) return "node: streams"
  if (url.startsWith("node:net") || url.startsWith("node:internal/net")) return "node: net"
  if (url.startsWith("node:")) return "node: other internals"
  return "other"
}

/**
 * The summary of the profile at `path`: parts of the stack by self time, then the top `top` functions.
 *
 * @since 1.0.0
 */
export const summarize = (path: string, top = 15): string => {
  const profile = JSON.parse(Fs.readFileSync(path, "utf8")) as Profile
  const byId = new Map(profile.nodes.map((node) => [node.id, node]))
  const self = new Map<number, number>()
  let total = 0
  profile.samples.forEach((id, i) => {
    const dt = profile.timeDeltas[i] ?? 0
    self.set(id, (self.get(id) ?? 0) + dt)
    total += dt
  })
  const parts = new Map<string, number>()
  const functions = new Map<string, number>()
  let idle = 0
  for (const [id, micros] of self) {
    const frame = byId.get(id)!.callFrame
    const name = part(frame)
    if (name === "idle") {
      idle += micros
      continue
    }
    parts.set(name, (parts.get(name) ?? 0) + micros)
    const where = frame.url === ""
      ? ""
      : ` ${frame.url.replace(/^.*\/(node_modules|work\/main)\//, "")}:${frame.lineNumber + 1}`
    const key = `${frame.functionName || "(anonymous)"}${where}`
    functions.set(key, (functions.get(key) ?? 0) + micros)
  }
  const busy = total - idle
  const pct = (micros: number) => `${((100 * micros) / busy).toFixed(1)}%`
  const lines = [
    `profile ${path}: ${(total / 1e6).toFixed(1)} s sampled, ${
      (busy / 1e6).toFixed(1)
    } s busy (shares below are of busy time)`,
    "",
    "| part of the stack | self time |",
    "|:--|--:|",
    ...[...parts].sort((a, b) => b[1] - a[1]).map(([name, micros]) => `| ${name} | ${pct(micros)} |`),
    "",
    "| function (self time) | share |",
    "|:--|--:|",
    ...[...functions].sort((a, b) => b[1] - a[1]).slice(0, top).map(([name, micros]) => `| ${name} | ${pct(micros)} |`)
  ]
  return lines.join("\n")
}
