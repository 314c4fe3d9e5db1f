import { assert, describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { fileURLToPath } from "node:url"
import * as stack from "../src/internal/stack.js"
import * as Outcome from "../src/Outcome.js"

const libraryDir = fileURLToPath(new URL("../src/", import.meta.url))
const frames = (text: string) => text.split("\n").filter((line) => /^\s+at /.test(line))

describe("libraryDirOf", () => {
  it("recognises the library's frames by its own directory, and none once bundled into an application", () => {
    expect(stack.libraryDirOf("file:///app/node_modules/effect-fanout/dist/internal/stack.js")).toBe(
      "/app/node_modules/effect-fanout/dist/"
    )
    expect(stack.libraryDirOf("file:///work/effect-fanout/src/internal/stack.ts")).toBe("/work/effect-fanout/src/")
    // Bundled: `..` of the bundle would be the application's own directory, holding every frame of the application.
    expect(stack.libraryDirOf("file:///app/dist/server.js")).toBeUndefined()
    expect(stack.libraryDirOf("not a url")).toBeUndefined()
  })

  it("takes this module's own URL to the src/ directory the tests run from", () => {
    expect(stack.libraryDirOf(new URL("../src/internal/stack.ts", import.meta.url).href)).toBe(libraryDir)
  })
})

describe("libraryDirsOf", () => {
  it("adds the src/ next to dist/ for the built package, where its source maps point", () => {
    expect(stack.libraryDirsOf("file:///app/node_modules/effect-fanout/dist/internal/stack.js")).toStrictEqual([
      "/app/node_modules/effect-fanout/dist/",
      "/app/node_modules/effect-fanout/src/"
    ])
    expect(stack.libraryDirsOf("file:///work/effect-fanout/src/internal/stack.ts")).toStrictEqual([
      "/work/effect-fanout/src/"
    ])
    expect(stack.libraryDirsOf("file:///app/dist/server.js")).toStrictEqual([])
  })
})

describe("trim", () => {
  const userFrame = "    at loadUsage (/app/src/usage.ts:12:9)"

  it("drops the frames of Effect's runtime wherever the package manager put it, and of its runners", () => {
    const trimmed = stack.trim([
      "Error: kaboom",
      userFrame,
      "    at ~effect/Effect/evaluate (file:///app/node_modules/effect/dist/internal/effect.js:757:19)",
      "    at FiberImpl.runLoop (file:///app/node_modules/.pnpm/effect@4.1.5/node_modules/effect/dist/internal/effect.js:495:99)",
      "    at evaluate (/app/node_modules/effect/src/internal/effect.ts:426:23)",
      "    at runPromise (file:///app/node_modules/@effect/vitest/dist/internal/internal.js:18:44)",
      "    at runMain (file:///app/node_modules/@effect/platform-node/dist/NodeRuntime.js:7:3)",
      "    at C:\\app\\node_modules\\effect\\dist\\internal\\effect.js:2551:9"
    ].join("\n"))
    expect(trimmed).toBe(`Error: kaboom\n${userFrame}`)
  })

  it("drops Node's internal frames and Vite's", () => {
    const trimmed = stack.trim([
      "Error: kaboom",
      userFrame,
      "    at process.processTicksAndRejections (node:internal/process/task_queues:105:5)",
      "    at node:internal/main/run_main_module:28:49",
      "    at Module._compile (internal/modules/cjs/loader.js:1:1)",
      "    at runTest (/app/node_modules/.vitest/runner.js:3:3)",
      "    at transform (/app/node_modules/.vite/deps/chunk.js:3:3)"
    ].join("\n"))
    expect(trimmed).toBe(`Error: kaboom\n${userFrame}`)
  })

  it("drops this library's own frames", () => {
    const trimmed = stack.trim(["Error: kaboom", userFrame, `    at settle (${libraryDir}FanOut.ts:40:3)`].join("\n"))
    expect(trimmed).toBe(`Error: kaboom\n${userFrame}`)
  })

  it("keeps the frames of packages that only share Effect's name, and every line that is not a frame", () => {
    const lines = [
      "Error: kaboom",
      "    at fetchPrice (/app/node_modules/effect-pricing/dist/index.js:3:3)",
      "    at handler (/app/node_modules/@effect-contrib/http/dist/index.js:3:3)",
      userFrame,
      "  cause: 42",
      "",
      "{ code: 'E_USAGE' }"
    ]
    expect(stack.trim(lines.join("\n"))).toBe(lines.join("\n"))
  })
})

describe("ofDefect", () => {
  it.effect("gives a thrown Error its own stack, with its message and the user's frames, without Effect's", () =>
    Effect.gen(function*() {
      const exit = yield* Effect.exit(Effect.sync((): number => {
        throw new Error("kaboom in user code")
      }))
      assert(exit._tag === "Failure" && exit.cause.reasons[0]?._tag === "Die")
      const thrown = exit.cause.reasons[0].defect as Error
      expect(thrown.stack).toMatch(/node_modules[\\/]effect[\\/]/)
      const trimmed = stack.ofDefect(thrown)
      expect(trimmed.split("\n")[0]).toBe("Error: kaboom in user code")
      expect(frames(trimmed).some((line) => line.includes("stack.test.ts"))).toBe(true)
      expect(trimmed).not.toMatch(/node_modules[\\/](@effect[\\/][^\\/]+|effect)[\\/]/)
      expect(trimmed).toBe(stack.trim(thrown.stack!))
    }))

  it("leaves the library's own frames out of the stack, keeping the user's", () => {
    // `Outcome.match` calls the user's handler: the handler's throw has the library's frames right under the user's.
    let thrown: unknown
    try {
      Outcome.match({ _tag: "Interrupted", key: 0, label: undefined, durationMillis: 0, attempts: 1 }, {
        onSuccess: () => 0,
        onFailure: () => 0,
        onDefect: () => 0,
        onTimedOut: () => 0,
        onInterrupted: () => {
          throw new Error("thrown by the user's handler")
        }
      })
    } catch (error) {
      thrown = error
    }
    expect((thrown as Error).stack).toContain(libraryDir)
    const kept = frames(stack.ofDefect(thrown))
    expect(kept.some((line) => line.includes("stack.test.ts"))).toBe(true)
    expect(kept.filter((line) => line.includes(libraryDir))).toStrictEqual([])
  })

  it("renders a value that is not an Error briefly, with no frames", () => {
    expect(stack.ofDefect("plain string defect")).toBe("Error: plain string defect")
    expect(stack.ofDefect({ code: "E_USAGE" })).toBe(`Error: {"code":"E_USAGE"}`)
    expect(stack.ofDefect(undefined)).toBe("Error: undefined")
  })

  it("renders a deep value a few levels deep, not whole (a defect holding outcomes that hold causes...)", () => {
    let deep: Record<string, unknown> = { code: "E_INNER" }
    for (let i = 0; i < 10_000; i++) deep = { outcome: deep, cause: deep }
    expect(stack.ofDefect(deep)).toBe(
      `Error: {"outcome":{"outcome":{…},"cause":{…}},"cause":{"outcome":{…},"cause":{…}}}`
    )
  })

  it("renders an Error without a stack by its name and message", () => {
    const error = new TypeError("no stack here")
    Object.defineProperty(error, "stack", { value: undefined })
    expect(stack.ofDefect(error)).toBe("TypeError: no stack here")
  })
})
