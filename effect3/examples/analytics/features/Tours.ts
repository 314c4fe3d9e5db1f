/**
 * Client of the tours feature service (`GET /customers/:id/usage`), configured by `TOURS_URL`.
 */
import { Context, Data, Layer } from "effect"
import * as FeatureClient from "./FeatureClient.js"

export class ToursError extends Data.TaggedError("ToursError")<FeatureClient.ErrorFields> {}

export class Tours extends Context.Tag("analytics/Tours")<Tours, FeatureClient.FeatureClient<ToursError>>() {}

export const ToursLive = Layer.effect(Tours, FeatureClient.make("tours", (fields) => new ToursError(fields)))
