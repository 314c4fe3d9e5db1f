/**
 * Readable stacks for defects: the frames of Effect's runtime, of Node's internals and of this library say nothing
 * about where the user's code went wrong, so they are dropped.
 *
 * @internal
 */
import * as Cause from "effect/Cause"
import { fileURLToPath } from "node:url"

// The library's own directory (src/ or dist/), so its frames can be recognised whatever the install path. Bundled
// into an application, this module is no longer `internal/stack` in it, and the directory above the bundle is the
// application's: then no frame is taken for the library's, rather than every frame of the application.
const libraryDir = (() => {
  try {
    const self = fileURLToPath(import.meta.url)
    return /[\\/]internal[\\/]stack\.[cm]?[jt]s$/.test(self) ? fileURLToPath(new URL("..", import.meta.url)) : undefined
  } catch {
    return undefined
  }
})()

const internalFrame = (line: string): boolean =>
  /[\\/]node_modules[\\/]effect[\\/]/.test(line) ||
  /[\\/]node_modules[\\/]\.vite(st)?[\\/]/.test(line) ||
  /\((node:|internal\/)/.test(line) ||
  /^\s*at (node:|internal\/)/.test(line) ||
  (libraryDir !== undefined && line.includes(libraryDir))

/** @internal */
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

/** @internal */
export const ofDefect = (defect: unknown): string => {
  if (defect instanceof Error && typeof defect.stack === "string") return trim(defect.stack)
  return trim(Cause.pretty(Cause.die(defect)))
}
