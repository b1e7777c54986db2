//! Load balancer target states and reason codes, as Elastic Load Balancing reports them in
//! `DescribeTargetHealth` (API reference, `TargetHealth`:
//! <https://docs.aws.amazon.com/elasticloadbalancing/latest/APIReference/API_TargetHealth.html>;
//! NLB `unhealthy.draining`:
//! <https://docs.aws.amazon.com/elasticloadbalancing/latest/network/target-group-health.html#unhealthy-target-connection-termination>).
//!
//! `UnHealthyHostCount` counts targets in `unhealthy` (and `unhealthy.draining`, an NLB
//! target that failed its checks and keeps its connections for the draining interval).
//! `initial`, `draining`, `unused` and `unavailable` targets are not counted: they are
//! being registered, deregistered, not in use, or not health-checked.

use crate::aws::TargetHealth;

/// Whether the target counts as failing its health checks now.
pub fn is_failing(state: &str) -> bool {
    matches!(state, "unhealthy" | "unhealthy.draining")
}

/// Being deregistered (`draining`) or failed-and-draining connections (NLB).
pub fn is_draining(state: &str) -> bool {
    matches!(state, "draining" | "unhealthy.draining")
}

/// What a reason code means, in the API reference's words, with what it implies here.
pub fn meaning(reason: &str) -> Option<&'static str> {
    Some(match reason {
        "Elb.RegistrationInProgress" => "the target is being registered (normal)",
        "Elb.InitialHealthChecking" => "the load balancer is still sending the first health checks (normal right after registration)",
        "Target.ResponseCodeMismatch" => "the health check answered an HTTP code outside the matcher (ALB)",
        "Target.Timeout" => "the health check timed out (ALB; an NLB reports timeouts as Target.FailedHealthChecks)",
        "Target.FailedHealthChecks" => "the connection failed or the response was malformed (on an NLB also timeouts and, for HTTP checks, unexpected codes)",
        "Elb.InternalError" => "the health checks failed because of an internal error of the load balancer itself, not of your configuration (ALB)",
        "Target.NotRegistered" => "the target is not registered with the target group",
        "Target.NotInUse" => "the target group is not used by any load balancer, or the target's zone is not enabled on it",
        "Target.InvalidState" => "the instance is stopped or terminated",
        "Target.IpUnusable" => "the address is reserved for use by a load balancer and cannot be a target",
        "Target.DeregistrationInProgress" => "the target is being deregistered (draining)",
        "Target.HealthCheckDisabled" => "health checks are disabled for the target group",
        _ => return None,
    })
}

/// A one-line reading of a target's health: state, reason and meaning.
pub fn describe(health: &TargetHealth) -> String {
    match health.reason.as_deref() {
        Some(reason) => match meaning(reason) {
            Some(m) => format!("{} ({reason}: {m})", health.state),
            None => format!("{} ({reason})", health.state),
        },
        None => health.state.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failing_states_are_the_ones_unhealthyhostcount_counts() {
        for s in ["unhealthy", "unhealthy.draining"] {
            assert!(is_failing(s), "{s}");
        }
        for s in ["healthy", "initial", "draining", "unused", "unavailable"] {
            assert!(!is_failing(s), "{s}");
        }
        assert!(is_draining("unhealthy.draining") && is_draining("draining") && !is_draining("unhealthy"));
    }

    #[test]
    fn every_documented_reason_has_a_meaning() {
        for r in [
            "Elb.RegistrationInProgress",
            "Elb.InitialHealthChecking",
            "Target.ResponseCodeMismatch",
            "Target.Timeout",
            "Target.FailedHealthChecks",
            "Elb.InternalError",
            "Target.NotRegistered",
            "Target.NotInUse",
            "Target.InvalidState",
            "Target.IpUnusable",
            "Target.DeregistrationInProgress",
            "Target.HealthCheckDisabled",
        ] {
            assert!(meaning(r).is_some(), "{r}");
        }
        let h = TargetHealth {
            state: "unhealthy".into(),
            reason: Some("Elb.InternalError".into()),
            description: None,
        };
        assert!(describe(&h).contains("not of your configuration"));
    }
}
