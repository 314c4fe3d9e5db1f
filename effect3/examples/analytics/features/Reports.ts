/**
 * Client of the reports feature service (`GET /customers/:id/usage`), configured by `REPORTS_URL`.
 */
import { Context, Data, Layer } from "effect"
import * as FeatureClient from "./FeatureClient.js"

export class ReportsError extends Data.TaggedError("ReportsError")<FeatureClient.ErrorFields> {}

export class Reports extends Context.Tag("analytics/Reports")<Reports, FeatureClient.FeatureClient<ReportsError>>() {}

export const ReportsLive = Layer.effect(Reports, FeatureClient.make("reports", (fields) => new ReportsError(fields)))
