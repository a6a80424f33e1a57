//! `report_only_policy` on a route: the candidate policy that decides beside
//! the enforced one without changing any response (see
//! [`crate::proxy::report_only`]).

use std::sync::Arc;

use super::file::RouteFile;
use super::routes::{named_policy, Policies};
use super::Report;
use crate::proxy::router::NamedPolicy;

/// `report_only_policy`: the name of a `[policies.*]` table other than the
/// route's `policy`. A route without `policy` may have one: that is how
/// adding CORS to a route is rolled out. Naming the enforced policy again is
/// accepted with a warning and costs nothing: the two could never differ.
pub(super) fn route_report_only_policy(
    route: &RouteFile,
    key: &str,
    policies: &Policies<'_>,
    report: &mut Report,
) -> Option<Arc<NamedPolicy>> {
    let name = route.report_only_policy.as_deref()?;
    let key_path = format!("{key}.report_only_policy");
    let candidate = named_policy(
        name,
        &key_path,
        "remove `report_only_policy`",
        policies,
        report,
    )?;
    if route.policy.as_deref() == Some(name) {
        report.warning(
            key_path,
            format!(
                "`{name}` is also the route's `policy`, so the two never differ and nothing is reported; name the policy you mean to roll out, or remove `report_only_policy` once it is enforced"
            ),
        );
        return None;
    }
    Some(candidate)
}
