//! Straightforward evaluation of security groups, network ACLs and route tables, shared by
//! the network checks. Deliberately simple (first overlapping ACL rule decides, a source
//! CIDR must be covered whole by a security-group range); a later model makes it exact.

use ipnet::Ipv4Net;

use crate::aws::{IpPermission, NetworkAcl, NetworkAclEntry, RouteTable, SecurityGroup};

pub fn cidr(s: &str) -> Option<Ipv4Net> {
    s.parse()
        .ok()
        .or_else(|| s.parse::<std::net::Ipv4Addr>().ok().map(Ipv4Net::from))
}

/// Where traffic comes from: security groups (for SG references) and/or address ranges.
#[derive(Debug, Clone, Default)]
pub struct Source {
    pub groups: Vec<String>,
    pub cidrs: Vec<Ipv4Net>,
}

fn permission_covers_tcp_port(p: &IpPermission, port: u16) -> bool {
    match p.ip_protocol.as_str() {
        "-1" | "all" => true,
        "tcp" | "6" => {
            let from = p.from_port.unwrap_or(0);
            let to = p.to_port.unwrap_or(65535);
            from <= i32::from(port) && i32::from(port) <= to
        }
        _ => false,
    }
}

/// The rule (group ID and a readable description) of `groups` that admits TCP `port` from
/// `source`, if any. Every source CIDR must be covered by one range of the same rule set.
pub fn sg_admits(groups: &[&SecurityGroup], source: &Source, port: u16) -> Option<String> {
    for sg in groups {
        for p in sg.ip_permissions.iter().filter(|p| permission_covers_tcp_port(p, port)) {
            let ports = match (p.ip_protocol.as_str(), p.from_port, p.to_port) {
                ("-1" | "all", _, _) => "all traffic".to_string(),
                (_, Some(f), Some(t)) if f == t => format!("tcp {f}"),
                (_, Some(f), Some(t)) => format!("tcp {f}-{t}"),
                _ => "tcp".to_string(),
            };
            if let Some(pair) = p
                .user_id_group_pairs
                .iter()
                .find(|pair| pair.group_id.as_ref().is_some_and(|g| source.groups.contains(g)))
            {
                return Some(format!(
                    "{}: {ports} from {}",
                    sg.group_id,
                    pair.group_id.as_deref().unwrap_or("?")
                ));
            }
            if !source.cidrs.is_empty() {
                let ranges: Vec<Ipv4Net> = p.ip_ranges.iter().filter_map(|r| cidr(&r.cidr_ip)).collect();
                let covered = source.cidrs.iter().all(|s| ranges.iter().any(|r| r.contains(s)));
                if covered {
                    let names: Vec<String> = ranges.iter().map(|r| r.to_string()).collect();
                    return Some(format!("{}: {ports} from {}", sg.group_id, names.join(", ")));
                }
            }
        }
    }
    None
}

/// The network ACL of a subnet: its explicit association, else the VPC's default ACL.
pub fn nacl_for_subnet<'a>(acls: &'a [NetworkAcl], subnet_id: &str, vpc_id: Option<&str>) -> Option<&'a NetworkAcl> {
    acls.iter()
        .find(|a| a.associations.iter().any(|s| s.subnet_id.as_deref() == Some(subnet_id)))
        .or_else(|| {
            acls.iter()
                .find(|a| a.is_default && (vpc_id.is_none() || a.vpc_id.as_deref() == vpc_id))
        })
}

/// The decision of an ACL for TCP traffic to or from `peer` on `ports` (inclusive).
#[derive(Debug, Clone, PartialEq)]
pub struct AclDecision {
    pub allowed: bool,
    /// The deciding rule: `*` for the implicit deny.
    pub rule: String,
}

fn entry_matches(entry: &NetworkAclEntry, peer: &Ipv4Net, ports: (u16, u16)) -> bool {
    let protocol = matches!(entry.protocol.as_str(), "-1" | "6" | "tcp" | "all");
    let range = match (entry.protocol.as_str(), entry.port_range) {
        ("-1" | "all", _) | (_, None) => true,
        (_, Some(r)) => r.from <= i32::from(ports.1) && i32::from(ports.0) <= r.to,
    };
    let overlaps = entry
        .cidr_block
        .as_deref()
        .and_then(cidr)
        .is_some_and(|c| c.contains(peer) || peer.contains(&c));
    protocol && range && overlaps
}

/// Rules are evaluated in rule-number order; the first one that overlaps decides.
pub fn acl_decision(acl: &NetworkAcl, egress: bool, peer: &Ipv4Net, ports: (u16, u16)) -> AclDecision {
    let mut entries: Vec<&NetworkAclEntry> = acl.entries.iter().filter(|e| e.egress == egress).collect();
    entries.sort_by_key(|e| e.rule_number);
    match entries.into_iter().find(|e| entry_matches(e, peer, ports)) {
        Some(e) => AclDecision {
            allowed: e.rule_action == "allow",
            rule: if e.rule_number == 32767 {
                "*".into()
            } else {
                e.rule_number.to_string()
            },
        },
        None => AclDecision {
            allowed: false,
            rule: "*".into(),
        },
    }
}

/// The route table of a subnet: its explicit association, else the VPC's main table.
pub fn route_table_for_subnet<'a>(
    tables: &'a [RouteTable],
    subnet_id: &str,
    vpc_id: Option<&str>,
) -> Option<&'a RouteTable> {
    tables
        .iter()
        .find(|t| t.associations.iter().any(|a| a.subnet_id.as_deref() == Some(subnet_id)))
        .or_else(|| {
            tables
                .iter()
                .find(|t| t.associations.iter().any(|a| a.main) && (vpc_id.is_none() || t.vpc_id.as_deref() == vpc_id))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::{PortRange, UserIdGroupPair};

    fn entry(rule: u32, action: &str, cidr: &str, ports: Option<(i32, i32)>) -> NetworkAclEntry {
        NetworkAclEntry {
            rule_number: rule,
            protocol: if ports.is_some() { "6".into() } else { "-1".into() },
            rule_action: action.into(),
            egress: false,
            cidr_block: Some(cidr.into()),
            ipv6_cidr_block: None,
            port_range: ports.map(|(from, to)| PortRange { from, to }),
        }
    }

    #[test]
    fn first_overlapping_acl_rule_decides() {
        let acl = NetworkAcl {
            entries: vec![
                entry(100, "allow", "0.0.0.0/0", None),
                entry(90, "deny", "192.168.0.0/18", Some((30000, 32767))),
                entry(32767, "deny", "0.0.0.0/0", None),
            ],
            ..Default::default()
        };
        let public = cidr("192.168.0.0/19").unwrap();
        let other = cidr("10.0.0.0/24").unwrap();
        assert_eq!(
            acl_decision(&acl, false, &public, (30080, 30080)),
            AclDecision {
                allowed: false,
                rule: "90".into()
            }
        );
        assert!(acl_decision(&acl, false, &public, (80, 80)).allowed);
        assert!(acl_decision(&acl, false, &other, (30080, 30080)).allowed);
        assert_eq!(
            acl_decision(&acl, true, &public, (80, 80)),
            AclDecision {
                allowed: false,
                rule: "*".into()
            }
        );
    }

    #[test]
    fn security_group_admits_by_group_or_covering_cidr() {
        let sg = SecurityGroup {
            group_id: "sg-node".into(),
            ip_permissions: vec![
                IpPermission {
                    ip_protocol: "tcp".into(),
                    from_port: Some(30000),
                    to_port: Some(32767),
                    user_id_group_pairs: vec![UserIdGroupPair {
                        group_id: Some("sg-lb".into()),
                        ..Default::default()
                    }],
                    ..Default::default()
                },
                IpPermission {
                    ip_protocol: "tcp".into(),
                    from_port: Some(80),
                    to_port: Some(80),
                    ip_ranges: vec![crate::aws::IpRange {
                        cidr_ip: "192.168.0.0/16".into(),
                        description: None,
                    }],
                    ..Default::default()
                },
            ],
            ..Default::default()
        };
        let from_lb = Source {
            groups: vec!["sg-lb".into()],
            cidrs: vec![],
        };
        assert_eq!(
            sg_admits(&[&sg], &from_lb, 30080).as_deref(),
            Some("sg-node: tcp 30000-32767 from sg-lb")
        );
        assert_eq!(sg_admits(&[&sg], &from_lb, 80), None);
        let from_subnet = Source {
            groups: vec![],
            cidrs: vec![cidr("192.168.0.0/19").unwrap()],
        };
        assert!(sg_admits(&[&sg], &from_subnet, 80).is_some());
        let from_elsewhere = Source {
            groups: vec![],
            cidrs: vec![cidr("10.1.0.0/16").unwrap()],
        };
        assert_eq!(sg_admits(&[&sg], &from_elsewhere, 80), None);
    }
}
