/**
 * Readable stacks for defects: the frames of Effect's runtime, of Node's internals and of this library say nothing
 * about where the user's code went wrong, so they are dropped.
 *
 * @internal
 */
import { fileURLToPath } from "node:url"
import { show } from "./show.js"

/**
 * The library's own directory (src/ or dist/), from this module's URL, so that its frames can be recognised whatever
 * the install path. Bundled into an application, this module is no longer `internal/stack` in it, and the directory
 * above the bundle is the application's: then `undefined` (no frame is taken for the library's), rather than a
 * directory holding every frame of the application.
 *
 * @internal
 */
export const libraryDirOf = (moduleUrl: string): string | undefined => {
  try {
    return /[\\/]internal[\\/]stack\.[cm]?[jt]s$/.test(fileURLToPath(moduleUrl))
      ? fileURLToPath(new URL("..", moduleUrl))
      : undefined
  } catch {
    return undefined
  }
}

/**
 * The directories whose frames are the library's: its own, and, for the built package (dist/), the src/ next to it,
 * where its source maps point (`node --enable-source-maps` prints those paths).
 *
 * @internal
 */
export const libraryDirsOf = (moduleUrl: string): ReadonlyArray<string> => {
  const dir = libraryDirOf(moduleUrl)
  return dir === undefined ? [] : [...new Set([dir, dir.replace(/([\\/])dist([\\/])$/, "$1src$2")])]
}

const libraryDirs = libraryDirsOf(import.meta.url)

/**
 * Effect 4's runtime runs from `node_modules/effect/dist/` (its source maps point into `node_modules/effect/src/`),
 * however the package manager nests it, and is entered from its `@effect/*` runners (`NodeRuntime.runMain`,
 * `@effect/vitest`'s `it.effect`); `effect-fanout` and other packages named `effect-*` are not it.
 */
const internalFrame = (line: string): boolean =>
  /[\\/]node_modules[\\/](@effect[\\/][^\\/]+|effect)[\\/]/.test(line) ||
  /[\\/]node_modules[\\/]\.vite(st)?[\\/]/.test(line) ||
  /\((node:|internal\/)/.test(line) ||
  /^\s*at (node:|internal\/)/.test(line) ||
  libraryDirs.some((dir) => line.includes(dir))

/**
 * `stack` without the frames of Effect's runtime, of Node's internals and of this library; the message and every
 * other line are kept.
 *
 * @internal
 */
export const trim = (stack: string): string => {
  const lines = stack.split("\n")
  const kept: Array<string> = []
  for (const line of lines) {
    if (/^\s+at /.test(line)) {
      if (!internalFrame(line)) kept.push(line)
    } else {
      kept.push(line)
    }
  }
  return kept.join("\n")
}

/**
 * A readable stack for a defect: a thrown `Error`'s own stack, trimmed; for any other value (a string, an object
 * passed to `Effect.die`), `Error: <the value>` with the value shown briefly — never a full rendering, which for a
 * value that holds other outcomes and causes (a nest of fan-outs dying with them) would grow with every level.
 *
 * @internal
 */
export const ofDefect = (defect: unknown): string => {
  if (defect instanceof Error) {
    return typeof defect.stack === "string" ? trim(defect.stack) : `${defect.name}: ${defect.message}`
  }
  return `Error: ${typeof defect === "string" ? defect : show(defect)}`
}
