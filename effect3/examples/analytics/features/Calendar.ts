/**
 * Client of the calendar feature service (`GET /customers/:id/usage`), configured by `CALENDAR_URL`.
 */
import { Context, Data, Layer } from "effect"
import * as FeatureClient from "./FeatureClient.js"

export class CalendarError extends Data.TaggedError("CalendarError")<FeatureClient.ErrorFields> {}

export class Calendar
  extends Context.Tag("analytics/Calendar")<Calendar, FeatureClient.FeatureClient<CalendarError>>()
{}

export const CalendarLive = Layer.effect(
  Calendar,
  FeatureClient.make("calendar", (fields) => new CalendarError(fields))
)
