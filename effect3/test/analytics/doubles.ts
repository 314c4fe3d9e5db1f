/**
 * `Layer.succeed` doubles of the twelve feature clients, so the fan-out and the handlers can be tested without
 * any network: each feature answers with a fixed usage unless the test gives it its own behaviour.
 */
import type { Effect } from "effect"
import { Effect as E, Layer } from "effect"
import type { CustomerId, Feature } from "../../examples/analytics/Domain.js"
import { FeatureUsage } from "../../examples/analytics/Domain.js"
import { Alerts, AlertsError } from "../../examples/analytics/features/Alerts.js"
import { Calendar, CalendarError } from "../../examples/analytics/features/Calendar.js"
import { Collections, CollectionsError } from "../../examples/analytics/features/Collections.js"
import { Documents, DocumentsError } from "../../examples/analytics/features/Documents.js"
import type { ErrorFields } from "../../examples/analytics/features/FeatureClient.js"
import { Listings, ListingsError } from "../../examples/analytics/features/Listings.js"
import { Messages, MessagesError } from "../../examples/analytics/features/Messages.js"
import { Offers, OffersError } from "../../examples/analytics/features/Offers.js"
import { Payments, PaymentsError } from "../../examples/analytics/features/Payments.js"
import { Referrals, ReferralsError } from "../../examples/analytics/features/Referrals.js"
import { Reports, ReportsError } from "../../examples/analytics/features/Reports.js"
import { SavedSearches, SavedSearchesError } from "../../examples/analytics/features/SavedSearches.js"
import { Tours, ToursError } from "../../examples/analytics/features/Tours.js"

/** Each feature's tag and error class: the doubles fail with the same typed errors as the real clients. */
export const clients = {
  listings: [Listings, ListingsError],
  savedSearches: [SavedSearches, SavedSearchesError],
  tours: [Tours, ToursError],
  offers: [Offers, OffersError],
  messages: [Messages, MessagesError],
  documents: [Documents, DocumentsError],
  collections: [Collections, CollectionsError],
  alerts: [Alerts, AlertsError],
  reports: [Reports, ReportsError],
  calendar: [Calendar, CalendarError],
  payments: [Payments, PaymentsError],
  referrals: [Referrals, ReferralsError]
} as const

export type Behaviour = (
  customerId: CustomerId,
  fail: (reason: ErrorFields["reason"]) => Effect.Effect<never, unknown>
) => Effect.Effect<FeatureUsage, unknown>

export const usageOf = (feature: Feature, customerId: string) =>
  new FeatureUsage({ customerId, feature, count: feature.length, lastUsedAt: null })

/** All twelve clients as doubles; `behaviours` replaces the default answer of some of them. */
export const doubles = (behaviours: { readonly [F in Feature]?: Behaviour } = {}) =>
  Layer.mergeAll(
    ...Object.entries(clients).map(([name, [tag, ErrorClass]]) => {
      const feature = name as Feature
      const fail = (reason: ErrorFields["reason"]) =>
        E.fail(new ErrorClass({ feature, reason, message: `${feature} double failed: ${reason}` }))
      const behaviour = behaviours[feature]
      return Layer.succeed(tag as any, {
        feature,
        usage: (customerId: CustomerId) =>
          behaviour === undefined ? E.succeed(usageOf(feature, customerId)) : behaviour(customerId, fail)
      })
    }) as [Layer.Layer<never>]
  ) as Layer.Layer<
    | Listings
    | SavedSearches
    | Tours
    | Offers
    | Messages
    | Documents
    | Collections
    | Alerts
    | Reports
    | Calendar
    | Payments
    | Referrals
  >
