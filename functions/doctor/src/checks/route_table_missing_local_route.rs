//! `route-table-missing-local-route`: a subnet's route table does not route the VPC CIDR
//! locally.
//!
//! # What it checks
//! The route tables of the load balancer's subnets and the targets' subnets (the explicit
//! association, else the VPC's main table): for every CIDR block of the VPC there must be an
//! active route with that destination and target `local`.
//!
//! # Why it matters
//! The local route is what carries load balancer to target traffic inside the VPC. Since
//! AWS allows replacing it (to insert a firewall appliance), a replaced or blackholed local
//! route sends health checks somewhere else, and they time out.
//!
//! # Example
//! Bad: `192.168.0.0/16 -> eni-0fw... (blackhole)`. Good: `192.168.0.0/16 -> local (active)`.
//!
//! # Fix safety
//! Manual: route changes affect the whole subnet; the report gives the `aws ec2 replace-route
//! --local-target` that restores the local route.
//!
//! # References
//! - <https://repost.aws/knowledge-center/eks-resolve-failed-health-check-alb-nlb> (route tables)
//! - <https://docs.aws.amazon.com/vpc/latest/userguide/RouteTables.html#route-table-routes>

use std::collections::BTreeSet;

use serde_json::json;

use super::net::route_table_for_subnet;
use super::network_acl_blocks_traffic::{target_subnet_map, target_subnets};
use super::{Check, CheckContext, CheckMeta, FixSafety, Inconclusive};
use crate::finding::{Finding, Severity};

pub struct RouteTableMissingLocalRoute;

static META: CheckMeta = CheckMeta {
    id: "route-table-missing-local-route",
    title: "Route table lacks the VPC's local route",
    runbook_step: "networking",
    fix: FixSafety::Manual,
};

impl Check for RouteTableMissingLocalRoute {
    fn meta(&self) -> &'static CheckMeta {
        &META
    }

    fn run(&self, cx: &CheckContext<'_>) -> Result<Vec<Finding>, Inconclusive> {
        let aws = &cx.snapshot.aws;
        let tg = cx.target_group()?;
        let tables = aws
            .route_tables
            .items()
            .map_err(|why| Inconclusive(format!("route tables not collected: {why}")))?;
        let vpcs = aws
            .vpcs
            .items()
            .map_err(|why| Inconclusive(format!("VPCs not collected: {why}")))?;
        let vpc_id = tg.vpc_id.as_deref();
        let vpc = vpcs
            .iter()
            .find(|v| Some(v.vpc_id.as_str()) == vpc_id)
            .or_else(|| (vpcs.len() == 1).then(|| &vpcs[0]))
            .ok_or_else(|| Inconclusive::new("the target group's VPC was not collected"))?;
        let cidrs = vpc.cidr_blocks();
        let mut subnets: BTreeSet<String> = target_subnets(cx)?;
        if let Ok(lb) = cx.load_balancer() {
            subnets.extend(lb.availability_zones.iter().filter_map(|z| z.subnet_id.clone()));
        }
        if subnets.is_empty() {
            return Err(Inconclusive::new("the targets' subnets are not known"));
        }
        let mut missing: Vec<(String, String, String, Option<String>)> = Vec::new();
        for subnet in &subnets {
            let Some(table) = route_table_for_subnet(tables, subnet, Some(vpc.vpc_id.as_str())) else {
                return Err(Inconclusive(format!("no route table found for subnet {subnet}")));
            };
            for block in &cidrs {
                let routes: Vec<_> = table
                    .routes
                    .iter()
                    .filter(|r| r.destination_cidr_block.as_deref() == Some(block.as_str()))
                    .collect();
                let local = routes
                    .iter()
                    .any(|r| r.gateway_id.as_deref() == Some("local") && r.state.as_deref() != Some("blackhole"));
                if !local {
                    let instead = routes
                        .first()
                        .map(|r| format!("{} ({})", r.target(), r.state.as_deref().unwrap_or("?")));
                    missing.push((subnet.clone(), table.route_table_id.clone(), block.clone(), instead));
                }
            }
        }
        if missing.is_empty() {
            return Ok(vec![]);
        }
        let (_, table, block, instead) = &missing[0];
        let subnets_hit: BTreeSet<&str> = missing.iter().map(|m| m.0.as_str()).collect();
        // A load balancer subnet without local routing breaks every target's path.
        let lb_hit = cx.load_balancer().is_ok_and(|lb| {
            lb.availability_zones
                .iter()
                .any(|z| z.subnet_id.as_deref().is_some_and(|s| subnets_hit.contains(s)))
        });
        let affected: Vec<String> = target_subnet_map(cx)?
            .into_iter()
            .filter(|(_, subnet)| lb_hit || subnets_hit.contains(subnet.as_str()))
            .map(|(id, _)| id)
            .collect();
        Ok(vec![Finding::new(
            META.id,
            Severity::Critical,
            table.clone(),
            format!(
                "route table {table} has no local route for the VPC CIDR {block}{}; traffic between the load balancer and targets in {} subnet(s) leaves the VPC's local routing",
                instead.as_ref().map_or(String::new(), |i| format!(" (it goes to {i})")),
                subnets_hit.len()
            ),
        )
        .with_targets(affected)
        .with_evidence(json!({
            "vpc": vpc.vpc_id,
            "vpcCidrs": cidrs,
            "missing": missing.iter().map(|(s, t, b, i)| json!({
                "subnet": s, "routeTable": t, "cidr": b, "routedInsteadTo": i,
            })).collect::<Vec<_>>(),
        }))
        .with_fix(
            format!("aws ec2 replace-route --route-table-id {table} --destination-cidr-block {block} --local-target"),
            None,
        )])
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
            .ends_with("--destination-cidr-block 192.168.0.0/16 --local-target"));
    }

    #[test]
    fn quiet_with_local_routes() {
        quiet(&RouteTableMissingLocalRoute, &scenario("healthy"));
    }
}
