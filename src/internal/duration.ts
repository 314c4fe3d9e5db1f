/**
 * Durations in messages, one rule for every message of the library.
 *
 * @internal
 */
import * as Duration from "effect/Duration"

/**
 * `Duration.format`, except that zero reads "0ms" rather than a bare "0".
 *
 * @internal
 */
export const formatDuration = (duration: Duration.Duration): string =>
  Duration.isZero(duration) ? "0ms" : Duration.format(duration)
