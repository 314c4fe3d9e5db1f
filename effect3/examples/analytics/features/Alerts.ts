/**
 * Client of the alerts feature service (`GET /customers/:id/usage`), configured by `ALERTS_URL`.
 */
import { Context, Data, Layer } from "effect"
import * as FeatureClient from "./FeatureClient.js"

export class AlertsError extends Data.TaggedError("AlertsError")<FeatureClient.ErrorFields> {}

export class Alerts extends Context.Tag("analytics/Alerts")<Alerts, FeatureClient.FeatureClient<AlertsError>>() {}

export const AlertsLive = Layer.effect(Alerts, FeatureClient.make("alerts", (fields) => new AlertsError(fields)))
