//! Counters of the guard's outcomes through the `metrics` facade (feature `metrics`): the
//! application installs whichever exporter it uses (Prometheus, StatsD, …). Without the feature
//! these are no-ops the compiler removes.

/// The counter every decision increments once.
#[cfg(feature = "metrics")]
const REQUESTS_TOTAL: &str = "dpop_guard_requests_total";

/// One refused request: `code` is the RFC error code (`invalid_dpop_proof`, …), or
/// `unauthorized` for a request without credentials.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(super) fn count_rejection(code: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(REQUESTS_TOTAL, "outcome" => "rejected", "code" => code).increment(1);
}

/// One admitted request: `kind` is `authenticated` (a validated token) or `proof_only`.
#[cfg_attr(not(feature = "metrics"), allow(unused_variables))]
pub(super) fn count_admission(kind: &'static str) {
    #[cfg(feature = "metrics")]
    metrics::counter!(REQUESTS_TOTAL, "outcome" => "admitted", "code" => kind).increment(1);
}
