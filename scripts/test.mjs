// `npm test`: every line's checks and tests, the Effect 4 line (top level) then the Effect 3 line (effect3/). Every
// step runs even when an earlier one fails, so that one run reports everything; the exit code is non-zero when any
// step failed. The Effect 3 line runs on the Node that runs npm (the machine's own: it supports Node 20), not on
// tools/node's: its tools are started with that Node by path, since npm puts every parent folder's node_modules/.bin
// (where tools/node's Node is linked) on the PATH of effect3's own scripts.
import { spawnSync } from "node:child_process"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const ownBin = Path.join(root, "node_modules/.bin")
const machinePath = (process.env.PATH ?? "").split(Path.delimiter).filter((dir) => Path.resolve(dir) !== ownBin)
const machineNode = process.env.npm_node_execpath ?? "node"
const effect3 = Path.join(root, "effect3")
const effect3Env = { ...process.env, PATH: machinePath.join(Path.delimiter) }

const steps = [
  { name: "Effect 4 line: type-check", cwd: root, args: ["run", "typecheck"] },
  { name: "Effect 4 line: lint", cwd: root, args: ["run", "lint"] },
  { name: "Effect 4 line: vitest", cwd: root, args: ["run", "vitest"] },
  {
    name: "Effect 3 line: type-check",
    cwd: effect3,
    node: ["node_modules/typescript/bin/tsc", "-p", "tsconfig.json", "--noEmit"]
  },
  { name: "Effect 3 line: lint", cwd: effect3, node: ["node_modules/eslint/bin/eslint.js", "."] },
  { name: "Effect 3 line: vitest", cwd: effect3, node: ["node_modules/vitest/vitest.mjs", "run"] }
]

const failed = []
for (const step of steps) {
  console.log(`\n── ${step.name}`)
  const result = step.node !== undefined
    ? spawnSync(machineNode, step.node, { cwd: step.cwd, env: effect3Env, stdio: "inherit" })
    : spawnSync("npm", step.args, { cwd: step.cwd, stdio: "inherit" })
  if (result.status !== 0) failed.push(step.name)
}
const machineVersion = spawnSync(machineNode, ["--version"], { encoding: "utf8" }).stdout?.trim()
console.log(`\nThe Effect 4 line ran on Node ${process.versions.node}, the Effect 3 line on Node ${machineVersion}`)
console.log(failed.length === 0 ? "\nnpm test: every step passed" : `\nnpm test: failed: ${failed.join("; ")}`)
process.exit(failed.length === 0 ? 0 : 1)
