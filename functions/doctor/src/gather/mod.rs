//! Live gathering: the only stage that does I/O. AWS through the SDK, Kubernetes through
//! kube; everything that does not depend on an earlier answer runs concurrently, each call
//! has a timeout, and the whole run honours the caller's deadline. Failures never abort the
//! run: each item lands in the Snapshot as present, absent, or "not collected: why".

pub mod aws;
pub mod eks_auth;
pub mod kube;
pub mod probe;

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use crate::arn::TargetGroupArn;
use crate::snapshot::{Collected, Snapshot};

/// API calls made, per service (`elasticloadbalancing`, `ec2`, `eks`, `kubernetes`), counted
/// as HTTP requests sent (retries included).
#[derive(Debug, Clone, Default)]
pub struct ApiCalls(Arc<Mutex<BTreeMap<String, u64>>>);

impl ApiCalls {
    pub fn add(&self, service: &str) {
        if let Ok(mut map) = self.0.lock() {
            *map.entry(service.to_string()).or_default() += 1;
        }
    }
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().map(|m| m.clone()).unwrap_or_default()
    }
}

/// Limits for one gathering run.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Everything must be done by then; what is not becomes "not collected: deadline".
    pub deadline: Instant,
    /// Per API call (per page).
    pub call_timeout: Duration,
}

impl Limits {
    pub fn within(total: Duration) -> Self {
        Limits {
            deadline: Instant::now() + total,
            call_timeout: Duration::from_secs(10),
        }
    }
}

/// Runs one call under the per-call timeout and the overall deadline.
pub(crate) async fn bounded<T, F>(limits: &Limits, what: &str, fut: F) -> Result<T, String>
where
    F: Future<Output = Result<T, String>>,
{
    let remaining = limits.deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        return Err(format!("{what}: deadline reached before the call"));
    }
    let budget = remaining.min(limits.call_timeout);
    match tokio::time::timeout(budget, fut).await {
        Ok(result) => result,
        Err(_) if budget < limits.call_timeout => Err(format!("{what}: overall deadline reached")),
        Err(_) => Err(format!("{what}: timed out after {}s", budget.as_secs())),
    }
}

/// Where the Kubernetes client comes from.
pub enum KubeAccess<'a> {
    /// Authenticate to the EKS cluster named by the target group (DescribeCluster + token).
    Eks(&'a eks_auth::ClusterClients),
    /// A client the caller built (kubeconfig on a laptop, tests).
    Client(::kube::Client),
    /// Do not talk to Kubernetes; the reason goes into the report.
    Skip(String),
}

/// Gathers the Snapshot for one target group.
pub async fn gather(
    aws: &aws::AwsClients,
    kube_access: KubeAccess<'_>,
    arn: &TargetGroupArn,
    cluster_hint: Option<String>,
    limits: Limits,
) -> Snapshot {
    let mut snapshot = Snapshot {
        as_of: Some(k8s_openapi::jiff::Timestamp::now()),
        target_group_arn: Some(arn.clone()),
        region: Some(arn.region.clone()),
        account_id: Some(arn.account.clone()),
        cluster_name: cluster_hint.clone(),
        ..Snapshot::default()
    };
    // Boxed: the SDK's futures are large, and nesting them unboxed overflows small stacks.
    Box::pin(aws::gather_target_group(aws, arn, &limits, &mut snapshot)).await;
    let cluster = crate::resolve::resolve(&snapshot).cluster;
    // Described once: the Snapshot keeps it and the EKS client is built from it.
    let described = match &cluster {
        Some(name) => Box::pin(aws::describe_cluster(aws, name, &limits)).await,
        None => crate::snapshot::Collected::not_collected(
            "no cluster name: the target group carries no elbv2.k8s.aws/cluster tag and none was given",
        ),
    };

    // The rest of AWS and all of Kubernetes do not depend on each other: run them together.
    let mut aws_part = snapshot.clone();
    let kube_future = Box::pin(async {
        let client = match kube_access {
            KubeAccess::Client(c) => Ok(c),
            KubeAccess::Skip(why) => Err(why),
            KubeAccess::Eks(clients) => match &cluster {
                Some(name) => clients.client_for(aws, name, &described, &limits).await,
                None => Err(
                    "no cluster name: the target group carries no elbv2.k8s.aws/cluster tag and none was given".into(),
                ),
            },
        };
        match client {
            Ok(client) => Box::pin(kube::gather(&client, &snapshot, &aws.calls, &limits)).await,
            Err(why) => (
                crate::snapshot::KubeState::all_not_collected(&format!("Kubernetes API not reached: {why}")),
                Vec::new(),
            ),
        }
    });
    let aws_future = Box::pin(aws::gather_network(aws, described.clone(), &limits, &mut aws_part));
    let ((kube_state, kube_notes), ()) = tokio::join!(kube_future, aws_future);
    snapshot.aws = aws_part.aws;
    snapshot.kube = kube_state;
    snapshot.notes.extend(kube_notes);
    snapshot.probe = Collected::not_collected("health-check replay not run");
    snapshot.api_calls = aws.calls.snapshot();
    snapshot
}
