//! The network path between a load balancer and its targets, evaluated the way AWS
//! evaluates it (and Reachability Analyzer explains it): per packet, per address.
//!
//! Two layers:
//! - pure evaluators over the EC2 shapes: [`evaluate_security_groups`] (stateful,
//!   allow-only, the union of every rule of every group on the interface; sources by CIDR,
//!   group reference or managed prefix list), [`evaluate_acl`] (stateless, rules in number
//!   order, the first rule matching a packet decides, `*` denies) and [`evaluate_route`]
//!   (longest prefix match; a local route, a middlebox route, a blackhole);
//! - [`PathModel`]: which packets one target's health checks and traffic are. Health checks
//!   come from every load balancer node (each of its interfaces' addresses) to the
//!   health-check port; traffic comes from the load balancer, or from the clients themselves
//!   when the target group preserves client IPs (NLB: instance targets, UDP and TCP_UDP by
//!   default, or `preserve_client_ip.enabled`).
//!
//! References:
//! - <https://docs.aws.amazon.com/vpc/latest/userguide/security-group-rules.html> (rules are
//!   permissive only; all rules of all groups of an interface are aggregated; stateful)
//! - <https://docs.aws.amazon.com/vpc/latest/userguide/nacl-rules.html> (lowest number first,
//!   first match wins, `*` denies; stateless: replies need their own rule, ephemeral ports)
//! - <https://docs.aws.amazon.com/vpc/latest/userguide/route-tables-priority.html> (longest
//!   prefix; a route more specific than `local`, or a `local` route whose target was replaced,
//!   sends subnet traffic through a middlebox) and
//!   <https://docs.aws.amazon.com/vpc/latest/userguide/VPC_Route_Tables.html> (a route whose
//!   target is gone is a `blackhole`)
//! - <https://docs.aws.amazon.com/elasticloadbalancing/latest/application/target-group-health-checks.html>
//!   ("each load balancer node checks the health of each target")
//! - <https://docs.aws.amazon.com/elasticloadbalancing/latest/network/edit-target-group-attributes.html#client-ip-preservation>
//!   and <https://docs.aws.amazon.com/elasticloadbalancing/latest/network/target-group-register-targets.html#target-security-groups>
//!   (with client IP preservation the targets see the clients' addresses; health checks
//!   still come from the load balancer's private addresses)
//! - the AWS Load Balancer Controller, `pkg/service/model_build_target_group.go`
//!   (`buildTargetGroupBindingNetworkingLegacy`, `buildPreserveClientIPFlag`): the traffic
//!   port is opened from `loadBalancerSourceRanges` when client IPs are preserved, the health
//!   check port from the load balancer's subnets.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::Serialize;

use crate::aws::{LoadBalancer, NetworkAcl, NetworkAclEntry, NetworkInterface, RouteTable, SecurityGroup, TargetGroup};
use crate::checks::{CheckContext, Inconclusive, TargetInfo};
use crate::snapshot::Collected;

/// The managed prefix lists' entries, by ID (see [`crate::snapshot::AwsState::prefix_lists`]).
pub type PrefixLists = BTreeMap<String, Collected<Vec<String>>>;

// ------------------------------------------------------------------ addresses and ports

/// An inclusive range of addresses of one family (a CIDR, one address, or what is left of
/// one after rules took parts of it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    pub v6: bool,
    pub lo: u128,
    pub hi: u128,
}

impl Span {
    pub fn net(n: &IpNet) -> Span {
        match n {
            IpNet::V4(n) => Span {
                v6: false,
                lo: u128::from(u32::from(n.network())),
                hi: u128::from(u32::from(n.broadcast())),
            },
            IpNet::V6(n) => Span {
                v6: true,
                lo: u128::from(n.network()),
                hi: u128::from(n.broadcast()),
            },
        }
    }

    pub fn addr(a: IpAddr) -> Span {
        match a {
            IpAddr::V4(a) => {
                let v = u128::from(u32::from(a));
                Span {
                    v6: false,
                    lo: v,
                    hi: v,
                }
            }
            IpAddr::V6(a) => {
                let v = u128::from(a);
                Span { v6: true, lo: v, hi: v }
            }
        }
    }

    /// A CIDR (`10.0.0.0/8`, `2600:1f18::/56`) or a bare address; `None` for anything else.
    pub fn parse(text: &str) -> Option<Span> {
        let text = text.trim();
        text.parse::<IpNet>()
            .map(|n| Span::net(&n))
            .ok()
            .or_else(|| text.parse::<IpAddr>().ok().map(Span::addr))
    }

    pub fn intersect(self, o: Span) -> Option<Span> {
        if self.v6 != o.v6 {
            return None;
        }
        let lo = self.lo.max(o.lo);
        let hi = self.hi.min(o.hi);
        (lo <= hi).then_some(Span { v6: self.v6, lo, hi })
    }

    pub fn contains(self, o: Span) -> bool {
        self.v6 == o.v6 && self.lo <= o.lo && o.hi <= self.hi
    }

    pub fn is_single(self) -> bool {
        self.lo == self.hi
    }

    /// `self` without `o` (at most two pieces).
    pub fn subtract(self, o: Span) -> Vec<Span> {
        let Some(cut) = self.intersect(o) else {
            return vec![self];
        };
        let mut out = Vec::new();
        if cut.lo > self.lo {
            out.push(Span { hi: cut.lo - 1, ..self });
        }
        if cut.hi < self.hi {
            out.push(Span { lo: cut.hi + 1, ..self });
        }
        out
    }

    fn ip(v6: bool, v: u128) -> IpAddr {
        if v6 {
            IpAddr::V6(v.into())
        } else {
            // Only IPv4 spans are built from u32 values.
            IpAddr::V4(u32::try_from(v).unwrap_or(u32::MAX).into())
        }
    }

    /// The span as a CIDR when it is exactly one.
    fn as_cidr(self) -> Option<IpNet> {
        let bits: u32 = if self.v6 { 128 } else { 32 };
        let size_minus_one = self.hi - self.lo;
        // A block of 2^k addresses, aligned on its size.
        let k = 128 - size_minus_one.leading_zeros();
        let full = if k >= 128 { u128::MAX } else { (1u128 << k) - 1 };
        if size_minus_one != full || self.lo & full != 0 || k > bits {
            return None;
        }
        let prefix = u8::try_from(bits - k).ok()?;
        IpNet::new(Span::ip(self.v6, self.lo), prefix).ok()
    }
}

impl fmt::Display for Span {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_single() {
            write!(f, "{}", Span::ip(self.v6, self.lo))
        } else if let Some(net) = self.as_cidr() {
            write!(f, "{net}")
        } else {
            write!(f, "{}-{}", Span::ip(self.v6, self.lo), Span::ip(self.v6, self.hi))
        }
    }
}

impl Serialize for Span {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// An inclusive port range.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ports {
    pub lo: u16,
    pub hi: u16,
}

impl Ports {
    pub const ALL: Ports = Ports { lo: 0, hi: 65535 };
    /// The ports load balancers answer from and so the replies go to (ELB documents
    /// 1024-65535 for network ACLs).
    pub const EPHEMERAL: Ports = Ports { lo: 1024, hi: 65535 };

    pub fn one(port: u16) -> Ports {
        Ports { lo: port, hi: port }
    }

    /// From an API range (`FromPort`/`ToPort`, `PortRange`): unset means all; out-of-range
    /// values are clamped.
    pub fn from_api(from: Option<i32>, to: Option<i32>) -> Ports {
        let clamp = |v: i32| u16::try_from(v.clamp(0, 65535)).unwrap_or(u16::MAX);
        match (from, to) {
            (Some(f), Some(t)) if f <= t => Ports {
                lo: clamp(f),
                hi: clamp(t),
            },
            (Some(_), Some(_)) => Ports { lo: 1, hi: 0 }, // empty: an inverted range matches nothing
            _ => Ports::ALL,
        }
    }

    fn is_empty(self) -> bool {
        self.lo > self.hi
    }

    pub fn intersect(self, o: Ports) -> Option<Ports> {
        let r = Ports {
            lo: self.lo.max(o.lo),
            hi: self.hi.min(o.hi),
        };
        (!r.is_empty()).then_some(r)
    }

    pub fn contains(self, port: u16) -> bool {
        self.lo <= port && port <= self.hi
    }

    fn subtract(self, o: Ports) -> Vec<Ports> {
        let Some(cut) = self.intersect(o) else {
            return vec![self];
        };
        let mut out = Vec::new();
        if cut.lo > self.lo {
            out.push(Ports {
                lo: self.lo,
                hi: cut.lo - 1,
            });
        }
        if cut.hi < self.hi {
            out.push(Ports {
                lo: cut.hi + 1,
                hi: self.hi,
            });
        }
        out
    }
}

impl fmt::Display for Ports {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.lo == self.hi {
            write!(f, "{}", self.lo)
        } else {
            write!(f, "{}-{}", self.lo, self.hi)
        }
    }
}

impl Serialize for Ports {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// The transport protocol of a packet (what load balancers send: health checks are TCP).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Protocol {
    Tcp,
    Udp,
}

impl Protocol {
    pub fn name(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
        }
    }

    /// The IANA number network ACL entries use.
    pub fn number(self) -> &'static str {
        match self {
            Protocol::Tcp => "6",
            Protocol::Udp => "17",
        }
    }

    /// Whether a rule's protocol (`-1`/`all`, a name or a number) covers this protocol.
    fn matched_by(self, rule: &str) -> bool {
        match rule.trim().to_ascii_lowercase().as_str() {
            "-1" | "all" => true,
            "tcp" | "6" => self == Protocol::Tcp,
            "udp" | "17" => self == Protocol::Udp,
            _ => false,
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    Inbound,
    Outbound,
}

impl Direction {
    pub fn preposition(self) -> &'static str {
        match self {
            Direction::Inbound => "from",
            Direction::Outbound => "to",
        }
    }

    pub fn noun(self) -> &'static str {
        match self {
            Direction::Inbound => "inbound",
            Direction::Outbound => "outbound",
        }
    }
}

// ------------------------------------------------------------------ security groups

/// The other end of a connection as a security group sees it: its addresses, and the
/// groups on its interface (what group-reference rules match).
#[derive(Debug, Clone, Copy)]
pub struct Peer<'a> {
    pub addresses: Span,
    pub groups: &'a [String],
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "camelCase")]
pub enum SgVerdict {
    /// Admitted; the rules that admit it.
    Allowed { rules: Vec<String> },
    /// Part of a range of sources is admitted: what is not.
    Partial { rules: Vec<String>, uncovered: Vec<Span> },
    /// No rule admits it; `near`: rules for the same protocol and port from other sources.
    Blocked { near: Vec<String> },
    /// A rule might admit it but its source could not be read (a prefix list whose entries
    /// were not collected).
    Unknown { why: String },
}

impl SgVerdict {
    pub fn is_blocked(&self) -> bool {
        matches!(self, SgVerdict::Blocked { .. })
    }
}

fn permission_text(group: &str, direction: Direction, protocol: &str, ports: Ports, source: &str) -> String {
    let what = match protocol.trim().to_ascii_lowercase().as_str() {
        "-1" | "all" => "all traffic".to_string(),
        p => format!("{p} {ports}"),
    };
    format!(
        "{group} {} {what} {} {source}",
        direction.noun(),
        direction.preposition()
    )
}

/// Whether `groups` (every group on one interface) admit a connection with `peer` on
/// `protocol`/`port`, in `direction` (inbound: `peer` is the source; outbound: the
/// destination). Security groups are allow-only and their rules are aggregated, so one rule
/// of one group is enough, and a range of sources is admitted when the union of the rules'
/// sources covers it.
pub fn evaluate_security_groups(
    groups: &[&SecurityGroup],
    direction: Direction,
    peer: &Peer<'_>,
    protocol: Protocol,
    port: u16,
    lists: &PrefixLists,
) -> SgVerdict {
    let mut ranges: Vec<(Span, String)> = Vec::new();
    let mut near: Vec<String> = Vec::new();
    let mut unreadable: Vec<String> = Vec::new();
    for g in groups {
        let permissions = match direction {
            Direction::Inbound => &g.ip_permissions,
            Direction::Outbound => &g.ip_permissions_egress,
        };
        for p in permissions {
            let all = matches!(p.ip_protocol.trim(), "-1" | "all");
            let ports = if all {
                Ports::ALL
            } else {
                Ports::from_api(p.from_port, p.to_port)
            };
            if !protocol.matched_by(&p.ip_protocol) || !ports.contains(port) {
                continue;
            }
            let text = |source: &str| permission_text(&g.group_id, direction, &p.ip_protocol, ports, source);
            for pair in &p.user_id_group_pairs {
                let Some(id) = pair.group_id.as_deref() else { continue };
                if peer.groups.iter().any(|g| g == id) {
                    return SgVerdict::Allowed { rules: vec![text(id)] };
                }
                near.push(text(id));
            }
            let cidrs = p
                .ip_ranges
                .iter()
                .map(|r| r.cidr_ip.as_str())
                .chain(p.ipv6_ranges.iter().map(|r| r.cidr_ipv6.as_str()));
            for cidr in cidrs {
                match Span::parse(cidr) {
                    Some(span) => ranges.push((span, text(cidr))),
                    None => near.push(text(&format!("{cidr} (not a CIDR)"))),
                }
            }
            for list in &p.prefix_list_ids {
                let id = list.prefix_list_id.as_str();
                match lists.get(id).map(Collected::get) {
                    Some(Ok(Some(entries))) => {
                        for entry in entries {
                            if let Some(span) = Span::parse(entry) {
                                ranges.push((span, text(&format!("{id} ({entry})"))));
                            }
                        }
                        if entries.is_empty() {
                            near.push(text(&format!("{id} (empty)")));
                        }
                    }
                    Some(Ok(None)) => near.push(text(&format!("{id} (does not exist)"))),
                    Some(Err(why)) => unreadable.push(format!("the entries of prefix list {id} ({why})")),
                    None => unreadable.push(format!("the entries of prefix list {id} (not collected)")),
                }
            }
        }
    }
    let admitting: Vec<String> = ranges
        .iter()
        .filter(|(span, _)| span.intersect(peer.addresses).is_some())
        .map(|(_, text)| text.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    let mut uncovered = vec![peer.addresses];
    for (span, _) in &ranges {
        uncovered = uncovered.into_iter().flat_map(|u| u.subtract(*span)).collect();
    }
    let unknown = || SgVerdict::Unknown {
        why: format!("a rule's source could not be read: {}", unreadable.join(", ")),
    };
    if uncovered.is_empty() {
        SgVerdict::Allowed { rules: admitting }
    } else if !unreadable.is_empty() {
        unknown()
    } else if admitting.is_empty() {
        near.extend(ranges.into_iter().map(|(_, t)| t));
        near.sort();
        near.dedup();
        near.truncate(8);
        SgVerdict::Blocked { near }
    } else {
        SgVerdict::Partial {
            rules: admitting,
            uncovered,
        }
    }
}

// ------------------------------------------------------------------ network ACLs

/// The network ACL entry that decided a packet.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AclRule {
    /// `None`: the final `*` rule (32767 for IPv4, 32768 for IPv6), which denies.
    pub number: Option<u32>,
    pub allow: bool,
    /// `rule 90: deny tcp 30000-32767 from 192.168.0.0/18`.
    pub text: String,
}

impl AclRule {
    pub fn label(&self) -> String {
        self.number.map_or_else(|| "*".to_string(), |n| n.to_string())
    }
}

/// A part of the packets asked about, and the rule that decided it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AclPart {
    pub addresses: Span,
    pub ports: Ports,
    pub rule: AclRule,
}

fn entry_rule(e: &NetworkAclEntry, direction: Direction) -> AclRule {
    let star = e.rule_number >= 32767;
    let cidr = e.cidr_block.as_deref().or(e.ipv6_cidr_block.as_deref()).unwrap_or("?");
    let what = match e.protocol.trim() {
        "-1" | "all" => "all traffic".to_string(),
        "6" => format!("tcp {}", entry_ports(e)),
        "17" => format!("udp {}", entry_ports(e)),
        other => format!("protocol {other}"),
    };
    let allow = e.rule_action.eq_ignore_ascii_case("allow");
    AclRule {
        number: (!star).then_some(e.rule_number),
        allow,
        text: format!(
            "rule {}: {} {what} {} {cidr}",
            if star {
                "*".to_string()
            } else {
                e.rule_number.to_string()
            },
            if allow { "allow" } else { "deny" },
            direction.preposition()
        ),
    }
}

fn entry_ports(e: &NetworkAclEntry) -> Ports {
    match (e.protocol.trim(), e.port_range) {
        ("-1" | "all", _) | (_, None) => Ports::ALL,
        (_, Some(r)) => Ports::from_api(Some(r.from), Some(r.to)),
    }
}

/// How `acl` decides every packet between `peer` and the subnet on `protocol` and `ports`
/// (the destination port), in `direction`: entries in rule-number order, the first one
/// matching a packet decides it, and what no entry matches is denied. The result covers
/// `peer` x `ports` exactly, split where different rules decide.
pub fn evaluate_acl(
    acl: &NetworkAcl,
    direction: Direction,
    peer: Span,
    protocol: Protocol,
    ports: Ports,
) -> Vec<AclPart> {
    let egress = direction == Direction::Outbound;
    let mut entries: Vec<&NetworkAclEntry> = acl.entries.iter().filter(|e| e.egress == egress).collect();
    entries.sort_by_key(|e| e.rule_number);
    let mut pending: Vec<(Span, Ports)> = vec![(peer, ports)];
    let mut parts = Vec::new();
    for e in entries {
        if pending.is_empty() {
            break;
        }
        if !protocol.matched_by(&e.protocol) {
            continue;
        }
        let block = if peer.v6 {
            e.ipv6_cidr_block.as_deref()
        } else {
            e.cidr_block.as_deref()
        };
        let Some(block) = block.and_then(Span::parse) else {
            continue;
        };
        let e_ports = entry_ports(e);
        let rule = entry_rule(e, direction);
        let mut next = Vec::new();
        for (s, p) in pending {
            match (s.intersect(block), p.intersect(e_ports)) {
                (Some(si), Some(pi)) => {
                    parts.push(AclPart {
                        addresses: si,
                        ports: pi,
                        rule: rule.clone(),
                    });
                    next.extend(s.subtract(si).into_iter().map(|rest| (rest, p)));
                    next.extend(p.subtract(pi).into_iter().map(|rest| (si, rest)));
                }
                _ => next.push((s, p)),
            }
        }
        pending = next;
    }
    parts.extend(pending.into_iter().map(|(s, p)| AclPart {
        addresses: s,
        ports: p,
        rule: AclRule {
            number: None,
            allow: false,
            text: format!(
                "rule *: deny all traffic {} {}",
                direction.preposition(),
                if peer.v6 { "::/0" } else { "0.0.0.0/0" }
            ),
        },
    }));
    parts
}

/// The network ACL of a subnet: its explicit association, else the VPC's default ACL.
pub fn acl_for_subnet<'a>(acls: &'a [NetworkAcl], subnet_id: &str, vpc_id: Option<&str>) -> Option<&'a NetworkAcl> {
    acls.iter()
        .find(|a| a.associations.iter().any(|s| s.subnet_id.as_deref() == Some(subnet_id)))
        .or_else(|| {
            acls.iter()
                .find(|a| a.is_default && (vpc_id.is_none() || a.vpc_id.as_deref() == vpc_id))
        })
}

// ------------------------------------------------------------------ routes

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "verdict", rename_all = "camelCase")]
pub enum RouteVerdict {
    /// Delivered by the VPC's local routing.
    Local {
        destination: String,
    },
    /// Sent through a middlebox (a firewall or Gateway Load Balancer endpoint): fine while
    /// the route is active; what the appliance does is beyond what the VPC shows.
    Middlebox {
        destination: String,
        target: String,
    },
    /// Dropped: a blackholed route, or no route at all.
    Broken {
        destination: Option<String>,
        target: Option<String>,
        why: String,
    },
    Unknown {
        why: String,
    },
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

/// The route `table` uses for packets to `dest` (an address, or a whole subnet when the
/// sender's address is not known): the longest matching prefix, a CIDR route before a
/// prefix-list route of the same length.
pub fn evaluate_route(table: &RouteTable, dest: Span, lists: &PrefixLists) -> RouteVerdict {
    // (prefix length, CIDR before prefix list, route index, destination text)
    let mut best: Option<(u32, bool, usize, String)> = None;
    let mut finer: Vec<String> = Vec::new();
    let mut unreadable: Vec<String> = Vec::new();
    let width: u32 = if dest.v6 { 128 } else { 32 };
    let prefix_len = |s: Span| width - (128 - (s.hi - s.lo).leading_zeros()).min(width);
    for (i, r) in table.routes.iter().enumerate() {
        let mut spans: Vec<(Span, bool, String)> = Vec::new();
        for text in [&r.destination_cidr_block, &r.destination_ipv6_cidr_block]
            .into_iter()
            .flatten()
        {
            if let Some(s) = Span::parse(text) {
                spans.push((s, true, text.clone()));
            }
        }
        if let Some(id) = r.destination_prefix_list_id.as_deref() {
            match lists.get(id).map(Collected::get) {
                Some(Ok(Some(entries))) => spans.extend(
                    entries
                        .iter()
                        .filter_map(|e| Span::parse(e).map(|s| (s, false, format!("{id} ({e})")))),
                ),
                Some(Ok(None)) => {}
                // Gateway endpoints (S3, DynamoDB) route AWS service ranges, never VPC
                // addresses; a list routed elsewhere could hold anything.
                _ if r.gateway_id.as_deref().is_some_and(|g| g.starts_with("vpce-")) => {}
                Some(Err(why)) => unreadable.push(format!("prefix list {id} ({why})")),
                None => unreadable.push(format!("prefix list {id} (not collected)")),
            }
        }
        for (s, is_cidr, text) in spans {
            if s.contains(dest) {
                let key = (prefix_len(s), is_cidr, i, text);
                if best.as_ref().is_none_or(|b| (key.0, key.1) > (b.0, b.1)) {
                    best = Some(key);
                }
            } else if dest.contains(s) {
                finer.push(text);
            }
        }
    }
    if !unreadable.is_empty() {
        return RouteVerdict::Unknown {
            why: format!(
                "{} of {} could not be read: {}",
                if unreadable.len() == 1 {
                    "a destination"
                } else {
                    "destinations"
                },
                table.route_table_id,
                unreadable.join(", ")
            ),
        };
    }
    if !finer.is_empty() {
        return RouteVerdict::Unknown {
            why: format!(
                "routes of {} for parts of {dest} ({}) decide depending on the exact address",
                table.route_table_id,
                finer.join(", ")
            ),
        };
    }
    let Some((_, _, i, destination)) = best else {
        return RouteVerdict::Broken {
            destination: None,
            target: None,
            why: format!("{} has no route to {dest}", table.route_table_id),
        };
    };
    let r = &table.routes[i];
    if r.gateway_id.as_deref() == Some("local") {
        return RouteVerdict::Local { destination };
    }
    let target = r.target();
    if r.state.as_deref() == Some("blackhole") {
        return RouteVerdict::Broken {
            why: format!(
                "{} sends {destination} to {target}, which is a blackhole (the target no longer exists or is detached)",
                table.route_table_id
            ),
            destination: Some(destination),
            target: Some(target),
        };
    }
    RouteVerdict::Middlebox { destination, target }
}

// ------------------------------------------------------------------ the load balancer's paths

/// One address the load balancer sends from (a node's interface), or, when its interfaces
/// were not collected, one of its subnets as a whole.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct LbAddress {
    pub addresses: Span,
    pub subnet_id: Option<String>,
    pub zone: Option<String>,
    pub interface: Option<String>,
}

impl LbAddress {
    /// An exact address (from the interface), not a whole subnet.
    pub fn exact(&self) -> bool {
        self.interface.is_some() && self.addresses.is_single()
    }

    pub fn label(&self) -> String {
        match &self.interface {
            Some(eni) => format!("{} ({eni})", self.addresses),
            None => format!(
                "{} ({})",
                self.subnet_id.as_deref().unwrap_or("a subnet"),
                self.addresses
            ),
        }
    }
}

/// The receiving end of a target: the address packets go to and the interface holding it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TargetEnd {
    pub target: String,
    pub address: IpAddr,
    pub subnet_id: Option<String>,
    pub zone: Option<String>,
    pub interface: Option<String>,
    /// The security groups of that interface; `None` when the interface is not known.
    pub groups: Option<Vec<String>>,
    /// How the address sits on the interface (primary, secondary, delegated prefix, branch
    /// interface of security groups for pods, ...).
    pub via: &'static str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum FlowKind {
    HealthCheck,
    Traffic,
}

impl FlowKind {
    pub fn noun(self) -> &'static str {
        match self {
            FlowKind::HealthCheck => "health check",
            FlowKind::Traffic => "traffic",
        }
    }
}

/// What one target receives: health checks from the load balancer, and traffic from it or,
/// with client IP preservation, from the clients.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Flow {
    pub kind: FlowKind,
    pub protocol: Protocol,
    pub port: u16,
    /// `None`: from the load balancer's addresses; else the clients' ranges.
    pub clients: Option<Vec<Span>>,
}

/// Whether targets see the clients' addresses, and on what basis.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientIpPreservation {
    pub enabled: bool,
    pub basis: String,
}

/// The load balancer side of every path to the target group's targets.
pub struct PathModel<'a> {
    pub lb: &'a LoadBalancer,
    pub tg: &'a TargetGroup,
    /// Each node's address, or each subnet when the interfaces were not collected.
    pub lb_addresses: Vec<LbAddress>,
    /// The load balancer's security groups (an NLB created without them has none).
    pub lb_groups: Vec<String>,
    pub client_ip: ClientIpPreservation,
    /// Whether each load balancer node sends traffic to targets in every zone.
    pub cross_zone: bool,
    pub ipv6: bool,
    pub lists: &'a PrefixLists,
    /// Things the model assumed or left out (for evidence).
    pub notes: Vec<String>,
    cx: &'a CheckContext<'a>,
}

/// Group IDs in a stable order (EC2 lists an interface's groups in no particular one).
fn sorted(mut ids: Vec<String>) -> Vec<String> {
    ids.sort();
    ids.dedup();
    ids
}

/// The protocols a target group's traffic uses.
fn traffic_protocols(tg: &TargetGroup) -> Vec<Protocol> {
    match tg.protocol.as_deref().unwrap_or("TCP") {
        "UDP" | "QUIC" => vec![Protocol::Udp],
        "TCP_UDP" | "TCP_QUIC" => vec![Protocol::Tcp, Protocol::Udp],
        _ => vec![Protocol::Tcp],
    }
}

/// `ELB app/NAME/ID` / `ELB net/NAME/ID`: the description of a load balancer's interfaces.
pub fn interface_description(lb_arn: &str) -> Option<String> {
    lb_arn.split_once(":loadbalancer/").map(|(_, r)| format!("ELB {r}"))
}

impl<'a> PathModel<'a> {
    pub fn new(cx: &'a CheckContext<'a>) -> Result<Self, Inconclusive> {
        let lb = cx.load_balancer()?;
        let tg = cx.target_group()?;
        let aws = &cx.snapshot.aws;
        let ipv6 = tg.ip_address_type.as_deref() == Some("ipv6");
        let mut notes = Vec::new();
        let description = interface_description(&lb.load_balancer_arn);
        let interfaces: Vec<&NetworkInterface> = aws
            .load_balancer_interfaces
            .items()
            .unwrap_or_default()
            .iter()
            .filter(|e| description.is_some() && e.description == description)
            .collect();
        let subnets = aws.subnets.items().unwrap_or_default();
        let zone_of = |subnet: Option<&str>| {
            subnets
                .iter()
                .find(|s| Some(s.subnet_id.as_str()) == subnet)
                .and_then(|s| s.availability_zone.clone())
        };
        let mut lb_addresses = Vec::new();
        for eni in &interfaces {
            let addresses: Vec<String> = if ipv6 {
                eni.ipv6_addresses.iter().map(|a| a.ipv6_address.clone()).collect()
            } else {
                eni.private_ip_address.iter().cloned().collect()
            };
            for a in addresses {
                if let Ok(ip) = a.parse::<IpAddr>() {
                    lb_addresses.push(LbAddress {
                        addresses: Span::addr(ip),
                        subnet_id: eni.subnet_id.clone(),
                        zone: eni
                            .availability_zone
                            .clone()
                            .or_else(|| zone_of(eni.subnet_id.as_deref())),
                        interface: Some(eni.network_interface_id.clone()),
                    });
                }
            }
        }
        if lb_addresses.is_empty() {
            // The interfaces were not collected: each of the load balancer's subnets, whole.
            let why = match aws.load_balancer_interfaces.reason() {
                Some(r) => format!("the load balancer's interfaces were not collected ({r})"),
                None => "no interface of the load balancer was found".to_string(),
            };
            for z in &lb.availability_zones {
                let Some(subnet) = subnets.iter().find(|s| Some(&s.subnet_id) == z.subnet_id.as_ref()) else {
                    continue;
                };
                let blocks: Vec<&str> = if ipv6 {
                    subnet
                        .ipv6_cidr_block_association_set
                        .iter()
                        .map(|a| a.ipv6_cidr_block.as_str())
                        .collect()
                } else {
                    subnet.cidr_block.as_deref().into_iter().collect()
                };
                for block in blocks {
                    if let Some(span) = Span::parse(block) {
                        lb_addresses.push(LbAddress {
                            addresses: span,
                            subnet_id: Some(subnet.subnet_id.clone()),
                            zone: subnet.availability_zone.clone().or_else(|| Some(z.zone_name.clone())),
                            interface: None,
                        });
                    }
                }
            }
            if lb_addresses.is_empty() {
                return Err(Inconclusive(format!(
                    "{why}, and the subnets of the load balancer were not collected either"
                )));
            }
            notes.push(format!("{why}: each of its subnets stands for its addresses"));
        }
        let tg_attr = |key: &str| -> Option<&str> {
            aws.target_group_attributes
                .present()
                .and_then(|a| a.get(key))
                .map(String::as_str)
        };
        let protocol = tg.protocol.as_deref().unwrap_or("TCP");
        let client_ip = if lb.kind.as_deref() != Some("network") {
            ClientIpPreservation {
                enabled: false,
                basis: "the load balancer is not a Network Load Balancer (it proxies)".into(),
            }
        } else if matches!(protocol, "UDP" | "TCP_UDP" | "QUIC" | "TCP_QUIC") {
            ClientIpPreservation {
                enabled: true,
                basis: format!("always on for {protocol} target groups"),
            }
        } else if let Some(v) = tg_attr("preserve_client_ip.enabled") {
            ClientIpPreservation {
                enabled: v.eq_ignore_ascii_case("true"),
                basis: format!("target group attribute preserve_client_ip.enabled={v}"),
            }
        } else {
            let instance = tg.target_type.as_deref().unwrap_or("instance") == "instance";
            let why = aws
                .target_group_attributes
                .reason()
                .map_or_else(|| "not set".to_string(), |r| format!("attributes not collected: {r}"));
            ClientIpPreservation {
                enabled: instance,
                basis: format!(
                    "the default for {} targets (preserve_client_ip.enabled {why})",
                    if instance { "instance" } else { "IP" }
                ),
            }
        };
        let lb_attr = |key: &str| -> Option<&str> {
            aws.load_balancer_attributes
                .present()
                .and_then(|a| a.get(key))
                .map(String::as_str)
        };
        // Cross-zone: the target group's own setting wins over the load balancer's; ALBs
        // default to on, NLBs to off.
        let cross_zone = match tg_attr("load_balancing.cross_zone.enabled") {
            Some("true") => true,
            Some("false") => false,
            _ => match lb_attr("load_balancing.cross_zone.enabled") {
                Some(v) => v == "true",
                None => lb.kind.as_deref() != Some("network"),
            },
        };
        Ok(PathModel {
            lb,
            tg,
            lb_addresses,
            lb_groups: lb.security_groups.clone(),
            client_ip,
            cross_zone,
            ipv6,
            lists: &aws.prefix_lists,
            notes,
            cx,
        })
    }

    /// Whether the load balancer's addresses are exact (its interfaces were collected).
    pub fn exact(&self) -> bool {
        self.lb_addresses.iter().all(LbAddress::exact)
    }

    /// The ranges the clients come from, when client IPs are preserved and the Service
    /// declares them (`spec.loadBalancerSourceRanges`, else the annotation). Without a
    /// declaration the clients are anyone, and how far a rule opens to them is the owner's
    /// choice, not a fault.
    pub fn client_ranges(&self) -> Option<Vec<Span>> {
        if !self.client_ip.enabled {
            return None;
        }
        let service = self.cx.service().ok()?;
        let declared: Vec<String> = match service
            .spec
            .as_ref()
            .and_then(|s| s.load_balancer_source_ranges.clone())
        {
            Some(r) if !r.is_empty() => r,
            _ => service
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get("service.beta.kubernetes.io/load-balancer-source-ranges"))
                .map(|v| {
                    v.split(',')
                        .map(|s| s.trim().to_string())
                        .filter(|s| !s.is_empty())
                        .collect()
                })
                .unwrap_or_default(),
        };
        let spans: Vec<Span> = declared
            .iter()
            .filter_map(|c| Span::parse(c))
            .filter(|s| s.v6 == self.ipv6)
            .collect();
        (!spans.is_empty()).then_some(spans)
    }

    /// Where one target receives packets.
    pub fn target_end(&self, t: &TargetInfo<'_>) -> Result<TargetEnd, String> {
        let aws = &self.cx.snapshot.aws;
        let enis = aws.network_interfaces.items().unwrap_or_default();
        let subnets = aws.subnets.items().unwrap_or_default();
        let zone_of = |subnet: Option<&str>| {
            subnets
                .iter()
                .find(|s| Some(s.subnet_id.as_str()) == subnet)
                .and_then(|s| s.availability_zone.clone())
        };
        if self.tg.target_type.as_deref().unwrap_or("instance") == "instance" {
            let Some(instance) = t.instance else {
                return Err(format!("instance {} was not described", t.id()));
            };
            let primary = enis.iter().find(|e| {
                e.attachment.as_ref().is_some_and(|a| {
                    a.instance_id.as_deref() == Some(instance.instance_id.as_str()) && a.device_index == Some(0)
                })
            });
            let address = if self.ipv6 {
                primary
                    .and_then(|e| e.ipv6_addresses.first())
                    .map(|a| a.ipv6_address.clone())
            } else {
                instance.private_ip_address.clone()
            };
            let Some(address) = address.and_then(|a| a.parse::<IpAddr>().ok()) else {
                return Err(format!("instance {} has no private address", instance.instance_id));
            };
            let subnet_id = primary
                .and_then(|e| e.subnet_id.clone())
                .or_else(|| instance.subnet_id.clone());
            return Ok(TargetEnd {
                target: t.id().to_string(),
                address,
                zone: instance
                    .zone()
                    .map(str::to_string)
                    .or_else(|| zone_of(subnet_id.as_deref())),
                subnet_id,
                interface: primary.map(|e| e.network_interface_id.clone()),
                groups: Some(sorted(match primary {
                    Some(e) => e.groups.iter().map(|g| g.group_id.clone()).collect(),
                    None => instance.security_groups.iter().map(|g| g.group_id.clone()).collect(),
                })),
                via: "the instance's primary address",
            });
        }
        let Ok(address) = t.id().parse::<IpAddr>() else {
            return Err(format!("target {} is not an IP address", t.id()));
        };
        let Some(eni) = enis.iter().find(|e| e.has_ip(t.id())) else {
            // A stale target (no interface holds it any more) still lies in a subnet.
            let subnet = subnets.iter().find(|s| s.contains(&address));
            return Ok(TargetEnd {
                target: t.id().to_string(),
                address,
                subnet_id: subnet.map(|s| s.subnet_id.clone()),
                zone: subnet.and_then(|s| s.availability_zone.clone()),
                interface: None,
                groups: None,
                via: "no collected interface",
            });
        };
        let via = if eni.interface_type.as_deref() == Some("branch") {
            "a branch interface (security groups for pods: the pod's groups, not the node's)"
        } else if eni.private_ip_address.as_deref() == Some(t.id()) {
            "the interface's primary address"
        } else if eni.private_ip_addresses.iter().any(|a| a.private_ip_address == t.id()) {
            "a secondary address of the interface"
        } else if eni.ipv6_addresses.iter().any(|a| a.ipv6_address == t.id()) {
            "an IPv6 address of the interface"
        } else {
            "a delegated prefix of the interface"
        };
        Ok(TargetEnd {
            target: t.id().to_string(),
            address,
            subnet_id: eni.subnet_id.clone(),
            zone: eni
                .availability_zone
                .clone()
                .or_else(|| zone_of(eni.subnet_id.as_deref())),
            interface: Some(eni.network_interface_id.clone()),
            groups: Some(sorted(eni.groups.iter().map(|g| g.group_id.clone()).collect())),
            via,
        })
    }

    /// The packets one target receives. The health check is TCP to the health-check port
    /// from every load balancer node; traffic on the target's port from the load balancer,
    /// or from the clients with client IP preservation (only when their ranges are declared).
    pub fn flows(&self, t: &TargetInfo<'_>) -> Vec<Flow> {
        let mut flows = Vec::new();
        let hc_port = (self.tg.health_check_enabled != Some(false))
            .then(|| self.tg.health_check_port_for(&t.health.target))
            .flatten();
        if let Some(port) = hc_port {
            flows.push(Flow {
                kind: FlowKind::HealthCheck,
                protocol: Protocol::Tcp,
                port,
                clients: None,
            });
        }
        let Some(port) = t.health.target.port.or(self.tg.port) else {
            return flows;
        };
        for protocol in traffic_protocols(self.tg) {
            if self.client_ip.enabled {
                if let Some(clients) = self.client_ranges() {
                    flows.push(Flow {
                        kind: FlowKind::Traffic,
                        protocol,
                        port,
                        clients: Some(clients),
                    });
                }
            } else if !(protocol == Protocol::Tcp && hc_port == Some(port)) {
                flows.push(Flow {
                    kind: FlowKind::Traffic,
                    protocol,
                    port,
                    clients: None,
                });
            }
        }
        flows
    }

    /// The load balancer addresses a flow to `end` comes from: every node for health checks;
    /// for traffic, the node in the target's zone unless cross-zone load balancing is on.
    pub fn senders(&self, flow: &Flow, end: &TargetEnd) -> Vec<&LbAddress> {
        let all: Vec<&LbAddress> = self.lb_addresses.iter().collect();
        if flow.kind == FlowKind::HealthCheck || self.cross_zone || end.zone.is_none() {
            return all;
        }
        let same: Vec<&LbAddress> = all.iter().copied().filter(|a| a.zone == end.zone).collect();
        if same.is_empty() {
            all
        } else {
            same
        }
    }

    /// The security groups with these IDs, or the IDs that were not collected.
    pub fn groups(&self, ids: &[String]) -> Result<Vec<&'a SecurityGroup>, Vec<String>> {
        let all = self.cx.snapshot.aws.security_groups.items().unwrap_or_default();
        let found: Vec<&SecurityGroup> = all.iter().filter(|g| ids.contains(&g.group_id)).collect();
        let missing: Vec<String> = ids
            .iter()
            .filter(|id| !found.iter().any(|g| &&g.group_id == id))
            .cloned()
            .collect();
        if missing.is_empty() {
            Ok(found)
        } else {
            Err(missing)
        }
    }
}

#[cfg(test)]
mod tests;
