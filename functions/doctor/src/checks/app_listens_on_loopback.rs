//! `app-listens-on-loopback`: the pods are Running and Ready but the application listens on
//! 127.0.0.1, so every connection to the pod's own address is refused.
//!
//! # What it checks
//! For the pods behind failing targets (the pod of an IP target; the Service's pods behind a
//! NodePort), Running and Ready, the evidence of a loopback bind:
//! - the application container's arguments or environment binding it to `127.0.0.1`,
//!   `localhost` or `::1` (`--host 127.0.0.1`, `--bind=localhost:8080`, `HOST=127.0.0.1`,
//!   `ASPNETCORE_URLS=http://localhost:5000`, ...);
//! - or a readiness check that cannot see the pod's address (an `exec` probe, a probe with
//!   `host: 127.0.0.1`, or no readiness probe, which makes a pod Ready at once) together with
//!   the replay refused on the pod's address.
//!
//! A replay answered on the pod's address clears the pod.
//!
//! # Why it matters
//! The kubelet's exec or localhost probe passes, so Kubernetes calls the pod Ready and
//! registers it; the load balancer (and kube-proxy's NodePort forwarding) connect to the pod
//! IP and are refused. Typical after moving a dev config (`--host 127.0.0.1`) to production.
//!
//! # Example
//! Bad: `args: ["--host", "127.0.0.1", "--port", "8080"]` with `readinessProbe.exec`.
//! Good: `--host 0.0.0.0` (or the pod IP from the downward API).
//!
//! # Fix safety
//! Manual: the report gives the `kubectl` that rebinds to `0.0.0.0` on the workload that
//! owns the pods (an environment variable or the argument's index); a rollout follows.
//!
//! # References
//! - <https://kubernetes.io/docs/tasks/configure-pod-container/configure-liveness-readiness-startup-probes/>
//!   (an httpGet probe without `host` goes to the pod IP)
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (manual check
//!   from inside the VPC)

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{Container, Pod};
use serde_json::json;

use super::{pod_ips, pod_name, shell_quote, Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::finding::{Finding, Severity};
use crate::kubernetes::{app_containers, is_pod_ready, workload_of};
use crate::snapshot::ProbeOutcome;

pub struct AppListensOnLoopback;

static META: CheckMeta = CheckMeta {
    id: "app-listens-on-loopback",
    title: "Application listens on loopback only",
    runbook_step: "(beyond)",
    fix: FixSafety::Manual,
};

const LOOPBACK: &[&str] = &["127.0.0.1", "localhost", "::1", "[::1]"];
/// Flags that set a listen address (`--host 127.0.0.1`, `--bind=localhost:8080`).
const BIND_FLAGS: &[&str] = &[
    "--host",
    "--bind",
    "-b",
    "--listen",
    "--address",
    "--addr",
    "--bind-address",
    "--listen-address",
    "--http-address",
    "--web.listen-address",
    "--server.address",
];
/// Environment variables frameworks read a listen address from.
const BIND_ENV: &[&str] = &[
    "HOST",
    "BIND",
    "BIND_ADDRESS",
    "LISTEN_ADDRESS",
    "LISTEN_ADDR",
    "SERVER_HOST",
    "SERVER_ADDRESS",
    "HTTP_HOST",
    "FLASK_RUN_HOST",
    "UVICORN_HOST",
    "GUNICORN_BIND",
    "ASPNETCORE_URLS",
    "ASPNETCORE_HTTP_URLS",
    "QUARKUS_HTTP_HOST",
    "MICRONAUT_SERVER_HOST",
];

/// Whether an address (`127.0.0.1`, `localhost:8080`, `http://localhost:5000`) is loopback.
fn is_loopback(value: &str) -> bool {
    let v = value.trim().trim_matches('"').to_ascii_lowercase();
    let v = v.split("://").last().unwrap_or(&v).to_string();
    LOOPBACK
        .iter()
        .any(|l| v == *l || v.starts_with(&format!("{l}:")) || v.starts_with(&format!("{l}/")))
}

/// Per pod: its loopback binds, how its readiness is judged when blind to the pod address,
/// and whether the replay was refused / answered on that address.
type PodEvidence = (Vec<Bind>, Option<&'static str>, bool, bool);

/// Where a container binds to loopback: `(what, index into args or env name, value)`.
#[derive(Debug, Clone)]
struct Bind {
    container: String,
    container_index: usize,
    /// `args[3]`, `command[2]` or `env HOST`.
    at: String,
    value: String,
    env: Option<String>,
    arg_index: Option<(String, usize)>,
}

fn loopback_binds(index: usize, c: &Container) -> Vec<Bind> {
    let mut out = Vec::new();
    for (field, list) in [("args", c.args.as_deref()), ("command", c.command.as_deref())] {
        let list = list.unwrap_or_default();
        for (i, a) in list.iter().enumerate() {
            // `--host=127.0.0.1` in one word, or `--host` `127.0.0.1` in two.
            let hit = match a.split_once('=') {
                Some((flag, value)) if BIND_FLAGS.contains(&flag) && is_loopback(value) => Some(i),
                _ if BIND_FLAGS.contains(&a.as_str()) && list.get(i + 1).is_some_and(|v| is_loopback(v)) => Some(i + 1),
                _ => None,
            };
            if let Some(at) = hit {
                out.push(Bind {
                    container: c.name.clone(),
                    container_index: index,
                    at: format!("{field}[{at}]"),
                    value: list[at].clone(),
                    env: None,
                    arg_index: Some((field.to_string(), at)),
                });
            }
        }
    }
    for e in c.env.iter().flatten() {
        if BIND_ENV.contains(&e.name.as_str()) && e.value.as_deref().is_some_and(is_loopback) {
            out.push(Bind {
                container: c.name.clone(),
                container_index: index,
                at: format!("env {}", e.name),
                value: e.value.clone().unwrap_or_default(),
                env: Some(e.name.clone()),
                arg_index: None,
            });
        }
    }
    out
}

/// How the container's readiness is judged when that cannot see the pod's address.
fn blind_readiness(c: &Container) -> Option<&'static str> {
    let Some(p) = &c.readiness_probe else {
        return Some("no readiness probe (the pod is Ready as soon as it starts)");
    };
    if p.exec.is_some() {
        return Some("an exec readiness probe (run inside the container)");
    }
    let host = p
        .http_get
        .as_ref()
        .and_then(|h| h.host.as_deref())
        .or(p.tcp_socket.as_ref().and_then(|t| t.host.as_deref()));
    host.filter(|h| is_loopback(h))
        .map(|_| "a readiness probe with host 127.0.0.1 / localhost")
}

fn loopback_value(value: &str) -> String {
    let mut out = value.to_string();
    for l in LOOPBACK {
        out = out.replace(l, "0.0.0.0");
    }
    out
}

impl Check for AppListensOnLoopback {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let failing = cx.failing_targets()?;
        if failing.is_empty() {
            return Ok(vec![]);
        }
        let ip_mode = cx.target_type()? == "ip";
        let selected = cx.selected_pods()?;
        let probes = cx.snapshot.probe.items().unwrap_or_default();
        let replica_sets = cx.snapshot.kube.replica_sets.items().unwrap_or_default();
        // pod name -> (binds, blind readiness, replay refused, replay answered)
        let mut evidence: BTreeMap<String, PodEvidence> = BTreeMap::new();
        let mut pods_of_target: BTreeMap<String, Vec<&Pod>> = BTreeMap::new();
        for t in &failing {
            let pods: Vec<&Pod> = if ip_mode {
                t.pod.into_iter().collect()
            } else {
                selected.clone()
            };
            pods_of_target.insert(t.id().to_string(), pods);
        }
        for pod in pods_of_target.values().flatten() {
            let name = pod_name(pod).to_string();
            if evidence.contains_key(&name) || !is_pod_ready(pod) {
                continue;
            }
            let Some(spec) = &pod.spec else { continue };
            let apps = app_containers(spec);
            let binds: Vec<Bind> = spec
                .containers
                .iter()
                .enumerate()
                .filter(|(_, c)| apps.iter().any(|a| a.name == c.name))
                .flat_map(|(i, c)| loopback_binds(i, c))
                .collect();
            let blind = apps.iter().find_map(|c| blind_readiness(c));
            let ips: Vec<&str> = pod_ips(pod).collect();
            let key = format!("{}/{}", pod.metadata.namespace.as_deref().unwrap_or_default(), name);
            let on_pod = |p: &&crate::snapshot::ProbeResult| {
                p.pod.as_deref() == Some(key.as_str())
                    || (ip_mode && p.pod.is_none() && p.address.as_deref().is_some_and(|a| ips.contains(&a)))
            };
            let refused = probes.iter().filter(on_pod).any(|p| p.outcome == ProbeOutcome::Refused);
            let answered = probes
                .iter()
                .filter(on_pod)
                .any(|p| p.outcome == ProbeOutcome::Response);
            evidence.insert(name, (binds, blind, refused, answered));
        }
        let loopback: BTreeSet<String> = evidence
            .iter()
            .filter(|(_, (binds, blind, refused, answered))| {
                !answered && (!binds.is_empty() || (blind.is_some() && *refused))
            })
            .map(|(n, _)| n.clone())
            .collect();
        if loopback.is_empty() {
            return Ok(vec![]);
        }
        // A target is explained when every ready pod behind it binds to loopback.
        let affected: Vec<String> = pods_of_target
            .iter()
            .filter(|(_, pods)| {
                let ready: Vec<&&Pod> = pods.iter().filter(|p| is_pod_ready(p)).collect();
                !ready.is_empty() && ready.iter().all(|p| loopback.contains(pod_name(p)))
            })
            .map(|(t, _)| t.clone())
            .collect();
        let first_pod = selected
            .iter()
            .chain(failing.iter().filter_map(|t| t.pod.as_ref()))
            .find(|p| loopback.contains(pod_name(p)))
            .copied();
        let (binds, blind, refused, _) =
            evidence[loopback.iter().next().map(String::as_str).unwrap_or_default()].clone();
        let ns = first_pod.and_then(|p| p.metadata.namespace.clone()).unwrap_or_default();
        let workload = first_pod.and_then(|p| workload_of(p, replica_sets));
        let fix = match (binds.first(), &workload) {
            (Some(b), Some((kind, name))) if b.env.is_some() => Some(format!(
                "kubectl -n {} set env {}/{} -c {} {}",
                shell_quote(&ns),
                kind.to_ascii_lowercase(),
                shell_quote(name),
                shell_quote(&b.container),
                shell_quote(&format!(
                    "{}={}",
                    b.env.clone().unwrap_or_default(),
                    loopback_value(&b.value)
                ))
            )),
            (Some(b), Some((kind, name))) => b.arg_index.as_ref().map(|(field, i)| {
                let patch = json!([{
                    "op": "replace",
                    "path": format!("/spec/template/spec/containers/{}/{field}/{i}", b.container_index),
                    "value": loopback_value(&b.value),
                }]);
                format!(
                    "kubectl -n {} patch {}/{} --type json -p {}",
                    shell_quote(&ns),
                    kind.to_ascii_lowercase(),
                    shell_quote(name),
                    shell_quote(&patch.to_string())
                )
            }),
            _ => None,
        };
        let how = match binds.first() {
            Some(b) => format!("container {} binds to {} ({})", b.container, b.value, b.at),
            None => format!(
                "the health check's replay is refused on the pod address while the pod passes {}",
                blind.unwrap_or("its readiness check")
            ),
        };
        let mut finding = Finding::new(
            META.id,
            if affected.is_empty() { Severity::Warning } else { Severity::Critical },
            workload
                .as_ref()
                .map(|(k, n)| format!("{ns}/{k}/{n}"))
                .unwrap_or_else(|| format!("{ns}/Pod/{}", loopback.iter().next().cloned().unwrap_or_default())),
            format!(
                "{} pod(s) are Ready but listen on loopback only, so the load balancer's connections to the pod address are refused: {how}",
                loopback.len()
            ),
        )
        .with_targets(affected)
        .with_evidence(json!({
            "pods": evidence.iter().filter(|(n, _)| loopback.contains(*n)).map(|(n, (binds, blind, refused, _))| json!({
                "pod": n,
                "binds": binds.iter().map(|b| json!({"container": b.container, "at": b.at, "value": b.value})).collect::<Vec<_>>(),
                "readiness": blind,
                "replayRefusedOnPodAddress": refused,
            })).collect::<Vec<_>>(),
            "replayRefused": refused,
        }));
        if let Some(fix) = fix {
            finding = finding.with_fix(fix, None);
        }
        Ok(vec![finding])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checks::fixtures::{fires, quiet, scenario};

    #[test]
    fn loopback_values_are_recognized() {
        for v in [
            "127.0.0.1",
            "localhost:8080",
            "http://localhost:5000",
            "[::1]:80",
            "::1",
        ] {
            assert!(is_loopback(v), "{v}");
        }
        for v in [
            "0.0.0.0",
            "192.168.1.2",
            "http://+:80",
            "localhost.example.com",
            "127.0.0.10",
        ] {
            assert!(!is_loopback(v), "{v}");
        }
        assert_eq!(loopback_value("http://localhost:5000"), "http://0.0.0.0:5000");
    }

    #[test]
    fn fires_on_a_host_flag_behind_an_exec_probe() {
        let findings = fires(&AppListensOnLoopback, &scenario("app-listens-on-loopback"));
        let f = &findings[0];
        assert_eq!(f.severity, Severity::Critical);
        assert_eq!(f.targets.len(), 2);
        assert!(f.message.contains("127.0.0.1"), "{}", f.message);
        assert!(
            f.fix
                .as_ref()
                .unwrap()
                .command
                .contains(r#"/containers/0/args/1","value":"0.0.0.0:8080""#),
            "{:?}",
            f.fix
        );
    }

    #[test]
    fn quiet_on_healthy_apps() {
        quiet(&AppListensOnLoopback, &scenario("healthy"));
        quiet(&AppListensOnLoopback, &scenario("target-port-mismatch"));
    }
}
