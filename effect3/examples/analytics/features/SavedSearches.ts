/**
 * Client of the saved searches feature service (`GET /customers/:id/usage`), configured by `SAVED_SEARCHES_URL`.
 */
import { Context, Data, Layer } from "effect"
import * as FeatureClient from "./FeatureClient.js"

export class SavedSearchesError extends Data.TaggedError("SavedSearchesError")<FeatureClient.ErrorFields> {}

export class SavedSearches
  extends Context.Tag("analytics/SavedSearches")<SavedSearches, FeatureClient.FeatureClient<SavedSearchesError>>()
{}

export const SavedSearchesLive = Layer.effect(
  SavedSearches,
  FeatureClient.make("savedSearches", (fields) => new SavedSearchesError(fields))
)
