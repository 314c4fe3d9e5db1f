/**
 * The twelve product features, declared once: each one's name, the path its service answers and the schema of that
 * answer. Everything else that lists the features is derived from `table` — the `Feature` schema, the clients and
 * their typed errors (`FeatureClient.ts`), the panels and their order (`Usage.ts`), the configuration keys
 * (`<FEATURE>_URL`), the simulators (`harness/Simulator.ts`) and the tests' doubles — so a feature is added, renamed
 * or moved to another path in one row.
 */
import { Schema } from "effect"

/** What a feature service answers for `GET <path>`: how often the customer used the feature, and when last. */
export class FeatureUsage extends Schema.Class<FeatureUsage>("FeatureUsage")({
  customerId: Schema.String,
  feature: Schema.String,
  count: Schema.Int.check(Schema.isGreaterThanOrEqualTo(0)),
  lastUsedAt: Schema.NullOr(Schema.String)
}) {}

/** One row of the table: how a feature's service is called and what it answers. */
export interface Row {
  /** The path of the `GET` the client sends (and the simulator answers); `:id` stands for the customer id. */
  readonly path: `/${string}:id${string}`
  /** The answer: decoded (and checked) by the client, encoded by the simulator. */
  readonly response: Schema.Codec<FeatureUsage, unknown>
}

/** Every feature service answers the same endpoint today; a service that differs gets a row of its own. */
const usage = { path: "/customers/:id/usage", response: FeatureUsage } as const satisfies Row

/** The twelve features, in the order the page shows their panels. */
export const table = {
  listings: usage,
  savedSearches: usage,
  tours: usage,
  offers: usage,
  messages: usage,
  documents: usage,
  collections: usage,
  alerts: usage,
  reports: usage,
  calendar: usage,
  payments: usage,
  referrals: usage
} as const satisfies Record<string, Row>

export type Feature = keyof typeof table

/** The features' names, in the table's order (the order of the panels). */
export const features = Object.keys(table) as ReadonlyArray<Feature>

export const Feature = Schema.Literals(features)

/** Whether `name` is a feature's name. */
export const isFeature = (name: string): name is Feature => Object.hasOwn(table, name)

/** `f` applied to every feature, as a record by feature name in the table's order. */
export const byFeature = <A>(f: (feature: Feature) => A): { readonly [F in Feature]: A } =>
  Object.fromEntries(features.map((feature) => [feature, f(feature)])) as { readonly [F in Feature]: A }

/** The path that asks `feature`'s service about `customerId`, such as `/customers/c-1042/usage`. */
export const pathOf = (feature: Feature, customerId: string): string =>
  table[feature].path.replace(":id", encodeURIComponent(customerId))

/** `savedSearches` → `SAVED_SEARCHES`, the prefix of that feature's configuration keys (`SAVED_SEARCHES_URL`). */
export const configPrefix = (feature: Feature): string => feature.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()
