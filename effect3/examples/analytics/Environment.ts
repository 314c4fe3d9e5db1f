/**
 * Environment variables read strictly: a variable's raw text is checked by the application's own rule, so that an
 * unreadable value is an error naming the variable and what it takes (`serve` prints it before anything starts),
 * never read as something else (`Config.integer` takes `0x2` and `1e0`, `Config.duration` takes `-1 seconds` as 0).
 */
import { Config, ConfigError, Either } from "effect"

/**
 * The variable `name`, read by `read`: its value, or what the variable takes (the message of the error, which
 * `ConfigError` reports under the variable's name).
 */
export const variable = <A>(name: string, read: (raw: string) => Either.Either<A, string>): Config.Config<A> =>
  Config.nested(
    Config.mapOrFail(
      Config.string(),
      (raw) => Either.mapLeft(read(raw), (takes) => ConfigError.InvalidData([], takes))
    ),
    name
  )

/** What an address variable takes, as said when it is given something else. */
export const httpUrlExpected = "must be an absolute http:// or https:// URL, such as http://127.0.0.1:4318"

/** Whether `raw` is an absolute http(s) URL. */
export const isHttpUrl = (raw: string): boolean => {
  try {
    const url = new URL(raw)
    return (url.protocol === "http:" || url.protocol === "https:") && url.hostname !== ""
  } catch {
    return false
  }
}

/** A variable holding an absolute http(s) URL. */
export const httpUrl = (name: string): Config.Config<string> =>
  variable(name, (raw) => isHttpUrl(raw) ? Either.right(raw) : Either.left(httpUrlExpected))
