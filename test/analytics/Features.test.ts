/**
 * The table of features and what is derived from it: one row per feature, and every part of the application and the
 * harness reading the same rows.
 */
import { describe, expect, it } from "@effect/vitest"
import { Schema } from "effect"
import * as FeatureClient from "../../examples/analytics/FeatureClient.js"
import {
  byFeature,
  configPrefix,
  Feature,
  features,
  isFeature,
  pathOf,
  table
} from "../../examples/analytics/Features.js"
import * as Simulator from "../../examples/analytics/harness/Simulator.js"

describe("the feature table", () => {
  it("lists twelve features in the order of the panels", () => {
    expect(features).toEqual([
      "listings",
      "savedSearches",
      "tours",
      "offers",
      "messages",
      "documents",
      "collections",
      "alerts",
      "reports",
      "calendar",
      "payments",
      "referrals"
    ])
    expect(Schema.is(Feature)("payments")).toBe(true)
    expect(Schema.is(Feature)("billing")).toBe(false)
    expect([isFeature("tours"), isFeature("toString"), isFeature("constructor")]).toEqual([true, false, false])
  })

  it("derives each feature's configuration key and request path from its row", () => {
    expect(byFeature(configPrefix)).toMatchObject({ listings: "LISTINGS", savedSearches: "SAVED_SEARCHES" })
    expect(pathOf("tours", "c-1/../x")).toBe("/customers/c-1%2F..%2Fx/usage")
    for (const feature of features) expect(pathOf(feature, "c-7")).toBe(table[feature].path.replace(":id", "c-7"))
  })

  it("gives every feature its own client service and its own tagged error", () => {
    expect(new Set(features.map((feature) => FeatureClient.services[feature].key)).size).toBe(12)
    const listings = new FeatureClient.errors.listings({ feature: "listings", reason: "Timeout", message: "late" })
    expect(listings).toMatchObject({ _tag: "ListingsError", feature: "listings", reason: "Timeout", message: "late" })
    expect(
      new FeatureClient.errors.savedSearches({ feature: "savedSearches", reason: "Unavailable", message: "" })._tag
    )
      .toBe("SavedSearchesError")
  })

  it("has the simulators answer what each row's schema decodes", () => {
    for (const feature of features) {
      const answer = Schema.encodeSync(table[feature].response)(Simulator.usageOf(feature, "c-3"))
      expect(Schema.decodeUnknownSync(table[feature].response)(answer)).toMatchObject({ customerId: "c-3", feature })
    }
  })
})
