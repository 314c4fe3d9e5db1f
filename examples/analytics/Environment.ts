/**
 * Environment variables read strictly: a variable's raw text is checked by the application's own rule, so that an
 * unreadable value is an error naming the variable and what it takes (`serve` prints it before anything starts),
 * never read as something else (`Number` takes `0x2` and `1e0`, a duration parser may take `-1 seconds` as 0).
 */
import { Config, Duration, Effect, Option, Result, Schema, SchemaIssue } from "effect"

/**
 * The variable `name`, read by `read`: its value, or what the variable takes (the message of the `ConfigError`,
 * which `problems` reports under the variable's name). An unset variable is missing, for `Config.withDefault`.
 */
export const variable = <A>(name: string, read: (raw: string) => Result.Result<A, string>): Config.Config<A> =>
  Config.String(name).pipe(Config.mapEffect((raw) =>
    Result.match(read(raw), {
      onSuccess: Effect.succeed,
      onFailure: (takes) =>
        Effect.fail(
          new Config.ConfigError(
            new Schema.SchemaError(
              new SchemaIssue.Pointer(
                [name],
                new SchemaIssue.InvalidValue({ message: takes }, raw, { reportInput: true })
              )
            )
          )
        )
    })
  ))

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
  variable(name, (raw) => isHttpUrl(raw) ? Result.succeed(raw) : Result.fail(httpUrlExpected))

/** One thing wrong with the environment: a variable that is unset (and has no default) or that has a bad value. */
export type Problem =
  | { readonly _tag: "Missing"; readonly name: string }
  | { readonly _tag: "Invalid"; readonly name: string; readonly value: unknown; readonly takes: string }

/** What a `ConfigError` says about the variables it was reading: each missing one, each bad value and what it takes. */
export const problems = (error: Config.ConfigError): ReadonlyArray<Problem> => {
  if (!Schema.isSchemaError(error.cause)) {
    return [{ _tag: "Invalid", name: "?", value: undefined, takes: error.message }]
  }
  const found: Array<Problem> = []
  const visit = (issue: SchemaIssue.Issue, path: ReadonlyArray<PropertyKey>): void => {
    const name = path.map(String).join("_")
    switch (issue._tag) {
      case "Pointer":
        return visit(issue.issue, [...path, ...issue.path])
      case "Composite":
      case "AnyOf":
        return issue.issues.forEach((inner) => visit(inner, path))
      case "Filter":
      case "Encoding":
        return visit(issue.issue, path)
      default: {
        // An unset variable reaches the schema as no value at all: a type issue without an input.
        if (issue._tag === "MissingKey" || (issue._tag === "InvalidType" && !SchemaIssue.hasInput(issue))) {
          found.push({ _tag: "Missing", name })
          return
        }
        const takes = SchemaIssue.makeFormatterStandardSchemaV1()(issue).issues[0]?.message ?? "a valid value"
        found.push({ _tag: "Invalid", name, value: SchemaIssue.hasInput(issue) ? issue.input : undefined, takes })
      }
    }
  }
  visit(error.cause.issue, [])
  return found
}

/**
 * A variable holding a whole number from `min` to `max`, in decimal digits (`Number` would also read `0x2`, `1e3`
 * and an empty value as 0).
 */
export const integer = (name: string, min: number, max: number): Config.Config<number> =>
  variable(
    name,
    (raw) =>
      /^\d{1,15}$/.test(raw) && Number(raw) >= min && Number(raw) <= max
        ? Result.succeed(Number(raw))
        : Result.fail(`must be an integer from ${min} to ${max}`)
  )

/** A variable holding a duration (`2 seconds`, `500 millis`) that `accepts`; `takes` says what it takes otherwise. */
export const duration = (
  name: string,
  accepts: (duration: Duration.Duration) => boolean,
  takes: string
): Config.Config<Duration.Duration> =>
  variable(name, (raw) =>
    Option.match(Option.filter(Duration.fromInput(raw as Duration.Input), accepts), {
      onNone: () => Result.fail(takes),
      onSome: Result.succeed
    }))
