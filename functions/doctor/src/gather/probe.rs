//! The health-check replay (the runbook's manual `curl` / `nc` against the target): the load
//! balancer's health check, asked again from where this code runs, once per target; and,
//! when a target fails, the same request sent to a few selected pods directly on their
//! `targetPort` and their application's ports (which port answers is what a
//! `set-target-port` fix must be proven by). It is
//! off unless the caller asks for it (the Lambda only when deployed in the VPC), and a test
//! gives a `redirect` table: every target is then connected to its local test server, and a
//! target without one is not replayed, so nothing ever connects to a scenario's addresses.

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use http_body_util::Empty;
use tokio::time::Instant;

use super::Limits;
use crate::snapshot::{Collected, ProbeOutcome, ProbeResult, Snapshot};

/// Below this much time before the deadline (or the check's own timeout, if shorter), the
/// replay is not started.
const MIN_TIME: Duration = Duration::from_secs(1);

/// The load balancer's own User-Agent: some applications answer it differently.
const USER_AGENT: &str = "ELB-HealthChecker/2.0";

#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Targets replayed at most, unhealthy ones first.
    pub max_targets: usize,
    /// Per-target timeout; default: the target group's HealthCheckTimeoutSeconds.
    pub timeout: Option<Duration>,
    /// Where each target address is really connected to. With a table, a target missing
    /// from it is not replayed.
    pub redirect: Option<BTreeMap<SocketAddr, SocketAddr>>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        ReplayOptions {
            max_targets: 10,
            timeout: None,
            redirect: None,
        }
    }
}

/// What to ask one target (or, with `pod`, one pod directly on one of its ports).
#[derive(Debug, Clone)]
struct Probe {
    target_id: String,
    address: SocketAddr,
    connect_to: SocketAddr,
    pod: Option<String>,
}

/// Pods probed directly at most, and ports per pod.
const MAX_PODS: usize = 3;
const MAX_PORTS: usize = 4;

/// The runbook's manual check of the pods themselves: each selected pod (ready ones first,
/// at most [`MAX_PODS`]) on the Service's resolved `targetPort` and on the ports its
/// application containers declare or probe. Which of them answers is the proof a
/// `set-target-port` fix needs (declared ports alone are informational).
fn pod_probes(snapshot: &Snapshot) -> Vec<(String, String, SocketAddr)> {
    let resolution = crate::resolve::resolve(snapshot);
    let cx = crate::checks::CheckContext::new(snapshot, &resolution);
    let (Ok(backend), Ok(port), Ok(mut pods)) = (cx.backend(), cx.service_port(), cx.selected_pods()) else {
        return Vec::new();
    };
    pods.sort_by_key(|p| !crate::kubernetes::is_pod_ready(p));
    let target = port
        .target_port
        .clone()
        .unwrap_or(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(
            port.port,
        ));
    let mut out = Vec::new();
    for pod in pods.into_iter().take(MAX_PODS) {
        let Some(ip) = crate::checks::pod_ips(pod)
            .next()
            .and_then(|ip| ip.parse::<IpAddr>().ok())
        else {
            continue;
        };
        let mut ports: Vec<i32> = crate::kubernetes::resolve_target_port(pod, &target)
            .into_iter()
            .collect();
        for p in crate::kubernetes::app_ports(pod) {
            if !ports.contains(&p) {
                ports.push(p);
            }
        }
        let name = format!("{}/{}", backend.namespace, crate::checks::pod_name(pod));
        for p in ports.into_iter().take(MAX_PORTS).filter_map(|p| u16::try_from(p).ok()) {
            out.push((ip.to_string(), name.clone(), SocketAddr::new(ip, p)));
        }
    }
    out
}

/// Replays the target group's health check against its targets (see the module docs).
pub async fn replay(snapshot: &Snapshot, opts: &ReplayOptions, limits: &Limits) -> Collected<Vec<ProbeResult>> {
    let Some(tg) = snapshot.aws.target_group.present() else {
        return Collected::not_collected("health-check replay: the target group was not collected");
    };
    let health = match snapshot.aws.target_health.items() {
        Ok(h) => h,
        Err(why) => {
            return Collected::not_collected(format!("health-check replay: target health not collected: {why}"))
        }
    };
    let protocol = tg
        .health_check_protocol
        .clone()
        .unwrap_or_else(|| "HTTP".into())
        .to_ascii_uppercase();
    if !matches!(protocol.as_str(), "HTTP" | "TCP") {
        return Collected::not_collected(format!(
            "health-check replay: {protocol} health checks are not replayed"
        ));
    }
    if tg.matcher.as_ref().is_some_and(|m| m.grpc_code.is_some()) {
        return Collected::not_collected("health-check replay: gRPC health checks are not replayed");
    }
    let path = tg.health_check_path.clone().unwrap_or_else(|| "/".into());
    let timeout = opts.timeout.unwrap_or(Duration::from_secs(u64::from(
        tg.health_check_timeout_seconds.unwrap_or(5),
    )));
    let instances = snapshot.aws.instances.items().unwrap_or_default();

    let mut ordered: Vec<_> = health.iter().collect();
    ordered.sort_by_key(|d| d.target_health.state == "healthy");
    let mut probes = Vec::new();
    let mut skipped = Vec::new();
    for d in ordered.into_iter().take(opts.max_targets) {
        let id = &d.target.id;
        let ip: Option<IpAddr> = if id.starts_with("i-") {
            instances
                .iter()
                .find(|i| &i.instance_id == id)
                .and_then(|i| i.private_ip_address.as_deref())
                .and_then(|ip| ip.parse().ok())
        } else {
            id.parse().ok()
        };
        // DescribeTargetHealth names the port per target; a dump may not carry it.
        let port = d
            .health_check_port
            .as_deref()
            .and_then(|p| p.parse().ok())
            .or_else(|| tg.health_check_port_for(&d.target));
        let (Some(ip), Some(port)) = (ip, port) else {
            skipped.push(format!("{id}: no address"));
            continue;
        };
        let address = SocketAddr::new(ip, port);
        let connect_to = match &opts.redirect {
            None => address,
            Some(table) => match table.get(&address) {
                Some(local) => *local,
                None => {
                    skipped.push(format!("{id}: no local test server for {address}"));
                    continue;
                }
            },
        };
        probes.push(Probe {
            target_id: id.clone(),
            address,
            connect_to,
            pod: None,
        });
    }
    // The pods themselves, when something fails (healthy targets already prove the port).
    if health.iter().any(|d| d.target_health.state != "healthy") {
        for (ip, pod, address) in pod_probes(snapshot) {
            let connect_to = match &opts.redirect {
                None => address,
                Some(table) => match table.get(&address) {
                    Some(local) => *local,
                    None => {
                        skipped.push(format!("pod {pod}: no local test server for {address}"));
                        continue;
                    }
                },
            };
            probes.push(Probe {
                target_id: ip,
                address,
                connect_to,
                pod: Some(pod),
            });
        }
    }
    if probes.is_empty() {
        let why = if skipped.is_empty() {
            "no targets".to_string()
        } else {
            skipped.join("; ")
        };
        return Collected::not_collected(format!("health-check replay: nothing to replay ({why})"));
    }
    // Too little time left would turn every probe into a "timeout" and invent an unreachable
    // target: better not replayed than wrong.
    let remaining = limits.deadline.saturating_duration_since(Instant::now());
    if remaining < timeout.min(MIN_TIME) {
        return Collected::not_collected("health-check replay: the gathering deadline left no time for it");
    }
    let timeout = timeout.min(remaining);
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build(hyper_util::client::legacy::connect::HttpConnector::new());
    let asks = probes.into_iter().map(|p| {
        let client = client.clone();
        let protocol = protocol.clone();
        let path = path.clone();
        let http_path = (protocol == "HTTP").then(|| path.clone());
        async move {
            let started = Instant::now();
            let (outcome, status_code, detail) = if protocol == "TCP" {
                tcp(p.connect_to, timeout).await
            } else {
                http(&client, &p, &path, timeout).await
            };
            ProbeResult {
                target_id: p.target_id,
                address: Some(p.address.ip().to_string()),
                port: p.address.port(),
                protocol: Some(protocol),
                path: http_path,
                outcome,
                status_code,
                latency_ms: Some(started.elapsed().as_millis() as u64),
                detail: Some(detail),
                pod: p.pod,
            }
        }
    });
    let results = futures::future::join_all(asks).await;
    tracing::info!(
        targets = results.len(),
        skipped = skipped.len(),
        "health check replayed"
    );
    Collected::Present(results)
}

async fn tcp(to: SocketAddr, timeout: Duration) -> (ProbeOutcome, Option<u16>, String) {
    match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(to)).await {
        Ok(Ok(_)) => (ProbeOutcome::Response, None, "TCP connection opened".into()),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::ConnectionRefused => {
            (ProbeOutcome::Refused, None, "connection refused".into())
        }
        Ok(Err(e)) => (ProbeOutcome::Error, None, e.to_string()),
        Err(_) => (ProbeOutcome::Timeout, None, timeout_text(timeout)),
    }
}

async fn http(
    client: &hyper_util::client::legacy::Client<
        hyper_util::client::legacy::connect::HttpConnector,
        Empty<bytes::Bytes>,
    >,
    p: &Probe,
    path: &str,
    timeout: Duration,
) -> (ProbeOutcome, Option<u16>, String) {
    let request = http::Request::get(format!("http://{}{path}", p.connect_to))
        .header(http::header::HOST, p.address.to_string())
        .header(http::header::USER_AGENT, USER_AGENT)
        .body(Empty::new());
    let request = match request {
        Ok(r) => r,
        Err(e) => {
            return (
                ProbeOutcome::Error,
                None,
                format!("bad health-check path {path:?}: {e}"),
            )
        }
    };
    match tokio::time::timeout(timeout, client.request(request)).await {
        Ok(Ok(response)) => {
            let status = response.status();
            let server = response
                .headers()
                .get(http::header::SERVER)
                .and_then(|v| v.to_str().ok())
                .map_or(String::new(), |s| format!(" ({s})"));
            (
                ProbeOutcome::Response,
                Some(status.as_u16()),
                format!("HTTP {status}{server}"),
            )
        }
        Ok(Err(e)) if refused(&e) => (ProbeOutcome::Refused, None, "connection refused".into()),
        Ok(Err(e)) => (ProbeOutcome::Error, None, error_chain(&e)),
        Err(_) => (ProbeOutcome::Timeout, None, timeout_text(timeout)),
    }
}

fn timeout_text(timeout: Duration) -> String {
    format!("no response within {} ms", timeout.as_millis())
}

fn refused(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(io) = err.downcast_ref::<std::io::Error>() {
            if io.kind() == std::io::ErrorKind::ConnectionRefused {
                return true;
            }
        }
        cur = err.source();
    }
    false
}

fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts = vec![e.to_string()];
    let mut cur = e.source();
    while let Some(err) = cur {
        parts.push(err.to_string());
        cur = err.source();
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::{TargetDescription, TargetGroup, TargetHealth, TargetHealthDescription};

    /// An IP-target group whose targets sit at private (never connected) addresses.
    fn snapshot(protocol: &str, targets: &[(&str, u16, &str)]) -> Snapshot {
        let mut s = Snapshot::default();
        s.aws.target_group = Collected::Present(TargetGroup {
            health_check_protocol: Some(protocol.into()),
            health_check_port: Some("traffic-port".into()),
            health_check_path: Some("/healthz".into()),
            health_check_timeout_seconds: Some(5),
            target_type: Some("ip".into()),
            ..TargetGroup::default()
        });
        s.aws.target_health = Collected::Present(
            targets
                .iter()
                .map(|(ip, port, state)| TargetHealthDescription {
                    target: TargetDescription {
                        id: ip.to_string(),
                        port: Some(*port),
                        availability_zone: None,
                    },
                    health_check_port: None,
                    target_health: TargetHealth {
                        state: state.to_string(),
                        ..TargetHealth::default()
                    },
                })
                .collect(),
        );
        s
    }

    fn options(table: &[(&str, SocketAddr)]) -> ReplayOptions {
        ReplayOptions {
            timeout: Some(Duration::from_millis(300)),
            redirect: Some(table.iter().map(|(k, v)| (k.parse().unwrap(), *v)).collect()),
            ..ReplayOptions::default()
        }
    }

    #[tokio::test]
    async fn tcp_check_opens_or_is_refused() {
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let closed = {
            let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap()
        };
        let s = snapshot(
            "TCP",
            &[("10.0.1.10", 8080, "unhealthy"), ("10.0.1.11", 8080, "unhealthy")],
        );
        let opts = options(&[
            ("10.0.1.10:8080", open.local_addr().unwrap()),
            ("10.0.1.11:8080", closed),
        ]);
        let results = replay(&s, &opts, &Limits::within(Duration::from_secs(5))).await;
        let results = results.items().unwrap();
        let by_id = |id: &str| results.iter().find(|r| r.target_id == id).unwrap();
        assert_eq!(by_id("10.0.1.10").outcome, ProbeOutcome::Response);
        assert_eq!(by_id("10.0.1.11").outcome, ProbeOutcome::Refused);
        assert_eq!(
            by_id("10.0.1.11").address.as_deref(),
            Some("10.0.1.11"),
            "reported as the target, not the stand-in"
        );
        assert_eq!(by_id("10.0.1.10").path, None, "a TCP check has no path");
    }

    #[tokio::test]
    async fn only_targets_with_a_local_server_are_replayed_and_unhealthy_come_first() {
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let s = snapshot(
            "TCP",
            &[
                ("10.0.1.10", 80, "healthy"),
                ("10.0.1.11", 80, "unhealthy"),
                ("10.0.1.12", 80, "unhealthy"),
            ],
        );
        let opts = ReplayOptions {
            max_targets: 2,
            ..options(&[
                ("10.0.1.10:80", open.local_addr().unwrap()),
                ("10.0.1.11:80", open.local_addr().unwrap()),
            ])
        };
        let results = replay(&s, &opts, &Limits::within(Duration::from_secs(5))).await;
        // max 2, unhealthy first: .11 and .12; .12 has no local server, so only .11 runs.
        let ids: Vec<_> = results.items().unwrap().iter().map(|r| r.target_id.clone()).collect();
        assert_eq!(ids, ["10.0.1.11"]);
    }

    #[tokio::test]
    async fn what_cannot_be_replayed_says_why() {
        let limits = Limits::within(Duration::from_secs(5));
        let https = replay(
            &snapshot("HTTPS", &[("10.0.1.10", 443, "unhealthy")]),
            &options(&[]),
            &limits,
        )
        .await;
        assert!(https.reason().unwrap().contains("HTTPS health checks are not replayed"));
        let nothing = replay(
            &snapshot("HTTP", &[("10.0.1.10", 80, "unhealthy")]),
            &options(&[]),
            &limits,
        )
        .await;
        assert!(nothing
            .reason()
            .unwrap()
            .contains("no local test server for 10.0.1.10:80"));
        let none = replay(&Snapshot::default(), &options(&[]), &limits).await;
        assert!(none.reason().unwrap().contains("target group was not collected"));
    }

    #[tokio::test]
    async fn no_replay_when_the_deadline_leaves_no_time() {
        let open = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let s = snapshot("TCP", &[("10.0.1.10", 8080, "unhealthy")]);
        let opts = options(&[("10.0.1.10:8080", open.local_addr().unwrap())]);
        let late = replay(&s, &opts, &Limits::within(Duration::ZERO)).await;
        assert!(late.reason().unwrap().contains("deadline left no time"), "{late:?}");
    }
}
