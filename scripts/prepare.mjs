// `npm ci` / `npm install` at the top level installs every line of the project: the Effect 3 line's own packages
// (effect3/ is a package of its own, with its own lock file) and, on a machine whose Node is older than Effect 4's
// floor, the Node 24 of tools/node, linked as node_modules/.bin/node so that every npm script runs on it.
// Plain JavaScript, so that it runs on whatever Node the machine has.
import { execFileSync } from "node:child_process"
import * as Fs from "node:fs"
import * as Path from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("..", import.meta.url))
const command = process.env.npm_command
// `npm pack` and `npm publish` run `prepare` too: they need the build (prepack), not the other lines' packages. And
// installed as a dependency (from git or a tarball, where npm runs `prepare`), the package has no other line to install.
const ownInstall = process.env.INIT_CWD !== undefined && Path.resolve(process.env.INIT_CWD) === Path.resolve(root)
if ((command !== "ci" && command !== "install") || !ownInstall || !Fs.existsSync(Path.join(root, "effect3"))) {
  process.exit(0)
}

const npm = (cwd) =>
  execFileSync("npm", [command === "ci" ? "ci" : "install", "--no-audit", "--no-fund"], { cwd, stdio: "inherit" })

const [major, minor] = process.versions.node.split(".").map(Number)
const floorMet = major > 22 || (major === 22 && minor >= 19)
if (!floorMet) {
  console.log(
    `Node ${process.versions.node} is older than Effect 4's floor (22.19): installing Node 24 from tools/node`
  )
  npm(Path.join(root, "tools/node"))
  const binary = Path.join(root, "tools/node/node_modules", `node-${process.platform}-${process.arch}`, "bin/node")
  if (!Fs.existsSync(binary)) {
    console.error(
      `No Node 24 binary for ${process.platform}-${process.arch} in tools/node: install Node 22.19 or later ` +
        "(24 LTS preferred) and run npm ci again. The Effect 3 line (effect3/) runs on Node 20."
    )
    process.exit(1)
  }
  const link = Path.join(root, "node_modules/.bin/node")
  Fs.mkdirSync(Path.dirname(link), { recursive: true })
  Fs.rmSync(link, { force: true })
  Fs.symlinkSync(Path.relative(Path.dirname(link), binary), link)
}
npm(Path.join(root, "effect3"))
