/**
 * The package as a user gets it: `npm pack` (which builds it), installed from the tarball into a fresh ESM
 * application beside effect 3.22, where a program imports it and runs, and a user's module that exports settle results
 * type-checks with declarations on. Everything happens in a directory of its own under the system's temporary
 * directory, outside the repository, so that nothing resolves to the repository's own packages.
 */
import { afterAll, beforeAll, describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import * as Fs from "node:fs"
import { createRequire } from "node:module"
import * as Os from "node:os"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const tsc = createRequire(import.meta.url).resolve("typescript/bin/tsc")

/** Runs a command to its end, within `timeout`; one that fails rejects with its command line, its exit and its output. */
const run = (command: string, args: ReadonlyArray<string>, cwd: string, timeout = 120_000) =>
  new Promise<{ readonly stdout: string; readonly stderr: string }>((resolve, reject) => {
    execFile(
      command,
      args,
      { cwd, timeout, killSignal: "SIGKILL", maxBuffer: 64 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error === null) return resolve({ stdout, stderr })
        const end = error.killed ?
          `was killed after ${timeout} ms` :
          `failed (${typeof error.code === "number" ? `exit code ${error.code}` : error.code ?? error.signal})`
        reject(
          new Error(`\`${[command, ...args].join(" ")}\` in ${cwd} ${end}\n── stderr\n${stderr}\n── stdout\n${stdout}`)
        )
      }
    )
  })

/** What `npm pack --json` says of the tarball it wrote. */
interface Packed {
  readonly filename: string
  readonly files: ReadonlyArray<{ readonly path: string }>
}

const scratch = Fs.mkdtempSync(Path.join(Os.tmpdir(), "effect-fanout-package-"))
const app = Path.join(scratch, "app")
const installed = Path.join(app, "node_modules", "effect-fanout")
afterAll(() => Fs.rmSync(scratch, { recursive: true, force: true }))

/**
 * The user's program: both entry points, a fail-fast and a settled fan-out, the facade's two outcomes, and a stack
 * trimmed to the program's own frames (the library's `dist/` and Effect's are not the user's code).
 */
const program = `
import { Effect } from "effect"
import { FanOut, Outcome } from "effect-fanout"
import { runAsync } from "effect-fanout/promise"

const crash = () => {
  throw new Error("alerts crashed")
}
const page = await Effect.runPromise(FanOut.all({ usage: Effect.succeed(12), billing: Effect.succeed("paid") }))
const panels = await Effect.runPromise(
  FanOut.settle([Effect.succeed(1), Effect.fail("billing down"), Effect.sync(crash)])
)
const called = []
await runAsync([async () => called.push("usage"), () => called.push("billing")])
const failed = await runAsync([
  () => Promise.reject(new Error("alerts down")),
  (signal) => new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)))
]).then(() => "resolved", (error) => error.message)
const internals = await import("effect-fanout/internal/engine.js").then(() => "exported", (error) => error.code)
const frames = panels[2].stack.split("\\n").map((line) => line.includes(import.meta.url) ? "main.js" : line)
console.log(JSON.stringify({
  page,
  settle: panels.map((outcome) => outcome._tag),
  errors: Outcome.errors(panels).map((error) => error instanceof Error ? error.message : error ?? null),
  frames,
  called,
  failed,
  internals
}))
`

/**
 * A user's module whose exported values have settle results in their types, named nowhere in it: the declarations tsc
 * emits must reach `Outcome` through an export path of the package (before `./Outcome` was one, this was TS2742,
 * "cannot be named without a reference to .../dist/Outcome.js"). No `skipLibCheck`: the package's own declarations
 * are checked too.
 */
const userModule = `
import { Effect } from "effect"
import { FanOut } from "effect-fanout"
import { settle } from "effect-fanout/promise"

export const panels = FanOut.settle({ usage: Effect.succeed(1), billing: Effect.fail("down" as const) })
export const settled = Effect.runSync(panels)
export const billing = settled.billing
export const listed = FanOut.settleForEach([1, 2], (n) => Effect.succeed(n * 2))
export const page = FanOut.all([Effect.succeed(1), Effect.fail("unavailable" as const)], { report: true })
export const results = settle([() => 1, async () => "two"])
`

describe("the packed package", () => {
  let packed: Packed

  beforeAll(async () => {
    const { stdout } = await run("npm", ["pack", "--json", "--pack-destination", scratch], root)
    packed = (JSON.parse(stdout) as ReadonlyArray<Packed>)[0]!
    Fs.mkdirSync(app)
    Fs.writeFileSync(Path.join(app, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }))
    await run(
      "npm",
      ["install", "--prefer-offline", "--no-audit", "--no-fund", Path.join(scratch, packed.filename), "effect@3.22.x"],
      app
    )
  }, 240_000)

  it("holds the built modules with their declarations and source maps, their sources, the licence and the readme, nothing else", () => {
    const paths = packed.files.map((file) => file.path)
    const others = paths.filter((path) => !/^dist\/.+\.(js|d\.ts)(\.map)?$/.test(path) && !/^src\/.+\.ts$/.test(path))
    expect(others.sort()).toEqual(["LICENSE", "README.md", "package.json"].sort())
    // The declaration maps point into src/, so the sources they name are shipped (go-to-definition lands there).
    const declarationMap = JSON.parse(Fs.readFileSync(Path.join(installed, "dist", "FanOut.d.ts.map"), "utf8")) as {
      readonly sources: ReadonlyArray<string>
    }
    for (const source of declarationMap.sources) expect(paths).toContain(Path.posix.join("dist", source))
    for (const module of ["index", "FanOut", "Outcome", "FanOutError", "promise"]) {
      for (const extension of [".js", ".d.ts", ".js.map", ".d.ts.map"]) {
        expect(paths).toContain(`dist/${module}${extension}`)
      }
    }
    const manifest = JSON.parse(Fs.readFileSync(Path.join(root, "package.json"), "utf8")) as {
      readonly exports: Record<string, null | string | Record<string, string>>
    }
    const targets = Object.values(manifest.exports).flatMap((target) =>
      target === null ? [] : typeof target === "string" ? [target] : Object.values(target)
    )
    for (const target of targets) expect(paths).toContain(target.replace(/^\.\//, ""))
  })

  it("ships source maps that carry their sources", () => {
    const map = JSON.parse(Fs.readFileSync(Path.join(installed, "dist", "FanOut.js.map"), "utf8")) as {
      readonly sources: ReadonlyArray<string>
      readonly sourcesContent: ReadonlyArray<string>
    }
    expect(map.sources).toEqual(["../src/FanOut.ts"])
    expect(map.sourcesContent).toEqual([Fs.readFileSync(Path.join(root, "src", "FanOut.ts"), "utf8")])
  })

  it("runs FanOut.all, FanOut.settle and runAsync in a fresh ESM application, its internals hidden", async () => {
    Fs.writeFileSync(Path.join(app, "main.js"), program)
    const { stderr, stdout } = await run(process.execPath, ["main.js"], app, 30_000)
    const expected = {
      page: { usage: 12, billing: "paid" },
      settle: ["Success", "Failure", "Defect"],
      errors: [null, "billing down", "alerts crashed"],
      frames: ["Error: alerts crashed", "main.js"],
      called: ["usage", "billing"],
      failed: "alerts down",
      internals: "ERR_PACKAGE_PATH_NOT_EXPORTED"
    }
    expect({ stdout, stderr }).toEqual({ stdout: `${JSON.stringify(expected)}\n`, stderr: "" })
  }, 60_000)

  it("types a user's module that exports settle results, naming Outcome by the package's export path", async () => {
    Fs.writeFileSync(Path.join(app, "user.ts"), userModule)
    const options = ["--strict", "--target", "es2022", "--module", "nodenext", "--declaration", "--emitDeclarationOnly"]
    await run(process.execPath, [tsc, ...options, "--outDir", "out", "user.ts"], app, 180_000)
    const declarations = Fs.readFileSync(Path.join(app, "out", "user.d.ts"), "utf8")
    expect(declarations).toContain(
      `export declare const billing: import("effect-fanout/Outcome").Outcome<never, "down">;`
    )
    expect(declarations).toContain(
      `export declare const listed: Effect.Effect<import("effect-fanout/Outcome").Outcome<number, never>[], never, never>;`
    )
  }, 240_000)
})
