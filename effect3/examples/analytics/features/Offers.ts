/**
 * Client of the offers feature service (`GET /customers/:id/usage`), configured by `OFFERS_URL`.
 */
import { Context, Data, Layer } from "effect"
import * as FeatureClient from "./FeatureClient.js"

export class OffersError extends Data.TaggedError("OffersError")<FeatureClient.ErrorFields> {}

export class Offers extends Context.Tag("analytics/Offers")<Offers, FeatureClient.FeatureClient<OffersError>>() {}

export const OffersLive = Layer.effect(Offers, FeatureClient.make("offers", (fields) => new OffersError(fields)))
