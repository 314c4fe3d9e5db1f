/**
 * The code examples of the README and of the doc comments compile against the library as it is: each ```ts block is
 * type-checked on its own, as a module importing `effect-fanout` (mapped to `src/`), with the project's compiler
 * options. The README's examples use services a reader would have (`Profiles.get(id)`, `Usage.get(id)`, ...): they
 * are declared below, once, with the types the examples' comments give them. (The Effect 3 line's README and doc
 * comments are checked by its own `effect3/test/docs.test.ts`.)
 */
import { describe, expect, it } from "@effect/vitest"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"
import ts from "typescript"

const root = fileURLToPath(new URL("..", import.meta.url))

/** The files whose examples are checked: the README and every public module of the package. */
const sources = [
  "README.md",
  "src/FanOut.ts",
  "src/Outcome.ts",
  "src/FanOutError.ts",
  "src/promise.ts",
  "src/Deadline.ts",
  "src/Cancellation.ts",
  "src/Budget.ts",
  "src/Hedge.ts",
  "src/Attempt.ts"
]

interface Example {
  readonly source: string
  readonly index: number
  readonly code: string
}

/** The ```ts blocks of a Markdown file, or of a TypeScript file's doc comments (their ` * ` prefixes removed). */
const examplesOf = (file: string): Array<Example> => {
  const path = Path.join(root, file)
  // A missing file has no examples; the first test names it.
  if (!Fs.existsSync(path)) return []
  const text = Fs.readFileSync(path, "utf8")
  const lines = file.endsWith(".md") ? text.split("\n") : text.split("\n").map((line) => line.replace(/^\s*\* ?/, ""))
  const examples: Array<Example> = []
  let block: Array<string> | undefined = undefined
  for (const line of lines) {
    if (block === undefined) {
      if (/^```ts\s*$/.test(line.trim())) block = []
    } else if (line.trim() === "```") {
      examples.push({ source: file, index: examples.length + 1, code: block.join("\n") })
      block = undefined
    } else {
      block.push(line)
    }
  }
  return examples
}

/**
 * The README's stand-ins: the services and values its examples call, typed as the examples' comments say (the same
 * ones as the Effect 3 line's README, whose examples the Effect 4 line's keeps). A script (no import or export), so
 * that its declarations are global.
 */
const standIns = `
type Effect<A, E = never> = import("effect").Effect.Effect<A, E>
interface Profile { readonly name: string }
interface Order { readonly total: number }
declare class ProfileNotFound { readonly _tag: "ProfileNotFound" }
declare class OrdersUnavailable { readonly _tag: "OrdersUnavailable" }
declare class LoyaltyUnavailable { readonly _tag: "LoyaltyUnavailable" }
declare const Profiles: { get(id: string): Effect<Profile, ProfileNotFound> }
declare const Orders: { list(id: string): Effect<Array<Order>, OrdersUnavailable> }
declare const Loyalty: { points(id: string): Effect<number, LoyaltyUnavailable> }
interface UsageFigures { readonly count: number }
interface Bill { readonly total: number }
declare class UsageError { readonly _tag: "UsageError" }
declare class BillingError { readonly _tag: "BillingError" }
declare class ReferralsError { readonly _tag: "ReferralsError" }
declare const Usage: { get(id: string): Effect<UsageFigures, UsageError> }
declare const Billing: { get(id: string): Effect<Bill, BillingError> }
declare const Referrals: { get(id: string): Effect<number, ReferralsError> }
declare const id: string
declare const tasks: { readonly usage: Effect<number, UsageError>; readonly billing: Effect<Bill, BillingError> }
interface User { readonly name: string }
type GetUser = import("effect").Request.Request<User, never> & { readonly id: number }
declare const GetUser: (args: { readonly id: number }) => GetUser
declare const UserResolver: import("effect").RequestResolver.RequestResolver<GetUser>
declare const ids: ReadonlyArray<number>
`

/**
 * One example as a module: a block without imports gets the library's and Effect's, and a block that uses `yield*`
 * outside a generator runs inside `Effect.gen`, as it would in the reader's code.
 */
const moduleOf = (example: Example): string => {
  let code = example.code
  if (/\byield\*/.test(code) && !/function\*/.test(code)) code = `const program = Effect.gen(function*() {\n${code}\n})`
  if (!/^import /m.test(code)) code = `import { Effect } from "effect"\nimport { FanOut } from "effect-fanout"\n${code}`
  return `${code}\nexport {}\n`
}

const examples = sources.flatMap(examplesOf)

/** Type-checks the examples in one program; the diagnostics of each, as text, by example. */
const check = (list: ReadonlyArray<Example>): Map<Example, Array<string>> => {
  const dir = Path.join(root, "test", ".examples")
  const files = new Map<string, string>()
  const nameOf = (example: Example) =>
    Path.join(dir, `${example.source.replace(/[^a-zA-Z0-9]+/g, "-")}-${example.index}.ts`)
  for (const example of list) files.set(nameOf(example), moduleOf(example))
  files.set(Path.join(dir, "stand-ins.d.ts"), standIns)
  const config = ts.readConfigFile(Path.join(root, "tsconfig.json"), ts.sys.readFile)
  const { options } = ts.parseJsonConfigFileContent(config.config, ts.sys, root)
  const compilerOptions: ts.CompilerOptions = {
    ...options,
    noEmit: true,
    baseUrl: root,
    paths: { "effect-fanout": ["src/index.ts"], "effect-fanout/promise": ["src/promise.ts"] }
  }
  const host = ts.createCompilerHost(compilerOptions)
  const getSourceFile = host.getSourceFile
  host.getSourceFile = (fileName, languageVersion, ...rest) => {
    const text = files.get(Path.resolve(fileName))
    return text !== undefined
      ? ts.createSourceFile(fileName, text, languageVersion, true)
      : getSourceFile.call(host, fileName, languageVersion, ...rest)
  }
  const fileExists = host.fileExists
  host.fileExists = (fileName) => files.has(Path.resolve(fileName)) || fileExists.call(host, fileName)
  const readFile = host.readFile
  host.readFile = (fileName) => files.get(Path.resolve(fileName)) ?? readFile.call(host, fileName)
  const program = ts.createProgram([...files.keys()], compilerOptions, host)
  const standInsFile = program.getSourceFile(Path.join(dir, "stand-ins.d.ts"))!
  const standInsProblems = [
    ...program.getSyntacticDiagnostics(standInsFile),
    ...program.getSemanticDiagnostics(standInsFile)
  ]
  if (standInsProblems.length > 0) {
    throw new Error(standInsProblems.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n")).join("\n"))
  }
  const byExample = new Map<Example, Array<string>>()
  for (const example of list) {
    const source = program.getSourceFile(nameOf(example))!
    const diagnostics = [...program.getSyntacticDiagnostics(source), ...program.getSemanticDiagnostics(source)]
    byExample.set(example, diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n")))
  }
  return byExample
}

describe("documentation examples", () => {
  it("finds the examples of the README and of the doc comments", () => {
    expect(sources.filter((file) => !Fs.existsSync(Path.join(root, file)))).toEqual([])
    expect(examples.filter((example) => example.source === "README.md").length).toBeGreaterThanOrEqual(4)
    expect(examples.filter((example) => example.source === "src/FanOut.ts").length).toBeGreaterThanOrEqual(7)
    expect(examples.length).toBeGreaterThanOrEqual(15)
  })

  it("every example type-checks against the library (and a wrong one does not)", () => {
    // Checked in the same program, so that the check is seen to fail on a wrong type.
    const wrong: Example = { source: "wrong", index: 1, code: "const n: number = FanOut.all([Effect.succeed(1)])" }
    const diagnostics = check([...examples, wrong])
    expect(diagnostics.get(wrong)!.join("\n")).toMatch(/is not assignable to type 'number'/)
    const failing = examples.flatMap((example) => {
      const messages = diagnostics.get(example)!
      return messages.length === 0 ? [] : [`${example.source} example ${example.index}: ${messages.join("; ")}`]
    })
    expect(failing).toEqual([])
  }, 120_000)
})
