//! `route-table-missing-local-route`: a route table sends load balancer to target traffic
//! (or the replies) somewhere it is dropped, instead of the VPC's local routing.
//!
//! # What it checks
//! For every load balancer address and every target in another subnet, both directions as
//! the VPC routes them ([`crate::network_path::evaluate_route`]): the load balancer subnet's
//! table (its explicit association, else the VPC's main table) for the target's address,
//! and the target subnet's table for the load balancer's address. The longest matching
//! prefix decides: the `local` route delivers; a route more specific than `local`, or a
//! `local` route whose target was replaced by an appliance (a firewall or Gateway Load
//! Balancer endpoint), sends the packets through that middlebox, which is fine while the
//! route is active; a blackholed route (its target gone) or no route drops them. Traffic
//! within one subnet is not routed.
//!
//! # Why it matters
//! The local route is what carries load balancer to target traffic inside the VPC. Since
//! AWS allows replacing it (to insert a firewall appliance), a replaced or blackholed route
//! sends health checks nowhere, and they time out.
//!
//! # Example
//! Bad: `192.168.0.0/16 -> eni-0fw... (blackhole)`, or `192.168.64.0/19 -> eni-0fw...
//! (blackhole)` for the pods' subnet. Good: `192.168.0.0/16 -> local`, or `-> vpce-0gwlb...
//! (active)` on purpose.
//!
//! # Fix safety
//! Manual: route changes affect the whole subnet. The report gives `aws ec2 replace-route
//! --local-target` for a VPC CIDR route, or `aws ec2 delete-route` for a blackholed more
//! specific route (after which the local route applies), or pointing it at the replacement
//! appliance, which only its owner knows.
//!
//! # References
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (route tables)
//! - <https://docs.aws.amazon.com/vpc/latest/userguide/route-tables-priority.html>
//! - <https://docs.aws.amazon.com/vpc/latest/userguide/VPC_Route_Tables.html#route-table-routes>

use std::collections::{BTreeMap, BTreeSet};

use serde_json::json;

use super::{shell_quote, Check, CheckContext, CheckMeta, FixSafety, Inconclusive, TargetInfo};
use crate::finding::{Finding, Severity};
use crate::network_path::{evaluate_route, route_table_for_subnet, PathModel, RouteVerdict, Span};
use crate::target_state::is_failing;

pub struct RouteTableMissingLocalRoute;

static META: CheckMeta = CheckMeta {
    id: "route-table-missing-local-route",
    title: "Route table lacks the VPC's local route",
    runbook_step: "networking",
    fix: FixSafety::Manual,
};

struct Broken<'t> {
    target: &'t TargetInfo<'t>,
    table: String,
    subnet: String,
    what: String,
    destination: Option<String>,
    route_target: Option<String>,
    why: String,
}

impl Check for RouteTableMissingLocalRoute {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let aws = &cx.snapshot.aws;
        let tables = aws
            .route_tables
            .items()
            .map_err(|why| Inconclusive(format!("route tables not collected: {why}")))?;
        let model = PathModel::new(cx)?;
        let vpc = model.tg.vpc_id.as_deref();
        let vpc_cidrs: Vec<String> = aws
            .vpcs
            .items()
            .unwrap_or_default()
            .iter()
            .filter(|v| vpc.is_none_or(|id| v.vpc_id == id))
            .flat_map(|v| v.all_cidr_blocks())
            .collect();
        let targets = cx.targets()?;
        let mut broken: Vec<Broken<'_>> = Vec::new();
        let mut inspected: BTreeSet<String> = BTreeSet::new();
        let mut undetermined: BTreeMap<String, String> = BTreeMap::new();
        for t in &targets {
            let end = match model.target_end(t) {
                Ok(end) => end,
                Err(why) => {
                    undetermined.insert(t.id().to_string(), why);
                    continue;
                }
            };
            let Some(t_subnet) = end.subnet_id.clone() else {
                undetermined.insert(t.id().to_string(), "its subnet is not known".into());
                continue;
            };
            for a in &model.lb_addresses {
                let Some(l_subnet) = a.subnet_id.clone() else { continue };
                if l_subnet == t_subnet {
                    continue; // traffic within a subnet is not routed
                }
                let directions = [
                    (
                        l_subnet.clone(),
                        Span::addr(end.address),
                        format!("packets from {} to {}", a.label(), end.address),
                    ),
                    (
                        t_subnet.clone(),
                        a.addresses,
                        format!("replies from {} to {}", end.address, a.label()),
                    ),
                ];
                for (subnet, dest, what) in directions {
                    let Some(table) = route_table_for_subnet(tables, &subnet, vpc) else {
                        undetermined.insert(t.id().to_string(), format!("no route table found for subnet {subnet}"));
                        continue;
                    };
                    match evaluate_route(table, dest, model.lists) {
                        RouteVerdict::Local { .. } => {}
                        RouteVerdict::Middlebox { destination, target } => {
                            inspected.insert(format!("{}: {destination} -> {target} (active)", table.route_table_id));
                        }
                        RouteVerdict::Broken {
                            destination,
                            target,
                            why,
                        } => broken.push(Broken {
                            target: t,
                            table: table.route_table_id.clone(),
                            subnet,
                            what,
                            destination,
                            route_target: target,
                            why,
                        }),
                        RouteVerdict::Unknown { why } => {
                            undetermined.insert(t.id().to_string(), why);
                        }
                    }
                }
            }
        }
        let Some(b) = broken.first() else {
            let failing: Vec<String> = targets
                .iter()
                .filter(|t| is_failing(t.state()) && undetermined.contains_key(t.id()))
                .map(|t| format!("{}: {}", t.id(), undetermined[t.id()]))
                .collect();
            if !failing.is_empty() {
                return Err(Inconclusive(format!(
                    "the routes on the path could not be decided ({})",
                    failing.join("; ")
                )));
            }
            return Ok(vec![]);
        };
        let affected: BTreeSet<String> = broken.iter().map(|b| b.target.id().to_string()).collect();
        let failing = broken
            .iter()
            .any(|b| is_failing(b.target.state()) || b.target.state() == "initial");
        let fix = match &b.destination {
            Some(d) if vpc_cidrs.contains(d) => Some(format!(
                "aws ec2 replace-route --route-table-id {} {} {} --local-target",
                shell_quote(&b.table),
                if d.contains(':') {
                    "--destination-ipv6-cidr-block"
                } else {
                    "--destination-cidr-block"
                },
                shell_quote(d)
            )),
            Some(d) if d.contains(':') => Some(format!(
                "aws ec2 delete-route --route-table-id {} --destination-ipv6-cidr-block {}",
                shell_quote(&b.table),
                shell_quote(d)
            )),
            Some(d) if !d.starts_with("pl-") => Some(format!(
                "aws ec2 delete-route --route-table-id {} --destination-cidr-block {}",
                shell_quote(&b.table),
                shell_quote(d)
            )),
            _ => None,
        };
        let mut finding = Finding::new(
            META.id,
            if failing { Severity::Critical } else { Severity::Warning },
            b.table.clone(),
            format!(
                "{}: the {} are dropped (the route table of subnet {}); {} target(s) affected: {}",
                b.why,
                b.what,
                b.subnet,
                affected.len(),
                broken
                    .iter()
                    .map(|b| b.target.label())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        )
        .with_targets(affected)
        .with_evidence(json!({
            "vpcCidrs": vpc_cidrs,
            "broken": broken.iter().map(|b| json!({
                "target": b.target.id(),
                "routeTable": b.table,
                "subnet": b.subnet,
                "path": b.what,
                "destination": b.destination,
                "routeTarget": b.route_target,
                "why": b.why,
            })).collect::<Vec<_>>(),
            "inspected": inspected,
            "undetermined": undetermined,
            "notes": model.notes,
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
    fn fires_on_a_replaced_local_route() {
        let findings = fires(
            &RouteTableMissingLocalRoute,
            &scenario("route-table-missing-local-route"),
        );
        let f = &findings[0];
        assert!(f.message.contains("192.168.0.0/16"), "{}", f.message);
        assert!(f.message.contains("eni-0fw00000000000001"), "{}", f.message);
        assert!(f
            .fix
            .as_ref()
            .unwrap()
            .command
            .ends_with("--destination-cidr-block '192.168.0.0/16' --local-target"));
    }

    #[test]
    fn quiet_with_local_routes() {
        quiet(&RouteTableMissingLocalRoute, &scenario("healthy"));
        quiet(&RouteTableMissingLocalRoute, &scenario("healthy-ipv6-cluster"));
    }

    #[test]
    fn quiet_when_an_active_middlebox_replaced_the_local_route() {
        quiet(
            &RouteTableMissingLocalRoute,
            &scenario("healthy-inspection-local-route"),
        );
    }

    #[test]
    fn a_blackholed_more_specific_route_breaks_only_its_subnet() {
        let findings = fires(&RouteTableMissingLocalRoute, &scenario("route-to-blackholed-firewall"));
        let f = &findings[0];
        assert_eq!(f.targets, ["192.168.72.31"]);
        assert_eq!(f.resource, "rtb-0a1b2c3d4e5f00052");
        assert_eq!(
            f.fix.as_ref().unwrap().command,
            "aws ec2 delete-route --route-table-id 'rtb-0a1b2c3d4e5f00052' --destination-cidr-block '192.168.64.0/19'"
        );
    }
}
