//! Hand-built VPCs, each case stating what AWS does, and properties of the evaluators.

use proptest::prelude::*;

use super::*;
use crate::aws::{IpPermission, IpRange, Ipv6Range, PortRange, PrefixListId, Route, UserIdGroupPair};

fn span(s: &str) -> Span {
    Span::parse(s).unwrap_or_else(|| panic!("bad span {s}"))
}

fn tcp(from: i32, to: i32) -> IpPermission {
    IpPermission {
        ip_protocol: "tcp".into(),
        from_port: Some(from),
        to_port: Some(to),
        ..Default::default()
    }
}

fn from_cidrs(mut p: IpPermission, cidrs: &[&str]) -> IpPermission {
    for c in cidrs {
        if c.contains(':') {
            p.ipv6_ranges.push(Ipv6Range {
                cidr_ipv6: (*c).into(),
                description: None,
            });
        } else {
            p.ip_ranges.push(IpRange {
                cidr_ip: (*c).into(),
                description: None,
            });
        }
    }
    p
}

fn from_group(mut p: IpPermission, group: &str) -> IpPermission {
    p.user_id_group_pairs.push(UserIdGroupPair {
        group_id: Some(group.into()),
        ..Default::default()
    });
    p
}

fn from_list(mut p: IpPermission, list: &str) -> IpPermission {
    p.prefix_list_ids.push(PrefixListId {
        prefix_list_id: list.into(),
    });
    p
}

fn group(id: &str, inbound: Vec<IpPermission>) -> SecurityGroup {
    SecurityGroup {
        group_id: id.into(),
        ip_permissions: inbound,
        ip_permissions_egress: vec![from_cidrs(
            IpPermission {
                ip_protocol: "-1".into(),
                ..Default::default()
            },
            &["0.0.0.0/0"],
        )],
        ..Default::default()
    }
}

fn inbound(groups: &[&SecurityGroup], from: &str, peer_groups: &[String], protocol: Protocol, port: u16) -> SgVerdict {
    let peer = Peer {
        addresses: span(from),
        groups: peer_groups,
    };
    evaluate_security_groups(groups, Direction::Inbound, &peer, protocol, port, &PrefixLists::new())
}

// ---- security groups

#[test]
fn rules_of_several_permissions_and_groups_are_aggregated() {
    // The first example: tcp 30080 from the first load balancer subnet, and
    // 30000-32767 from the second, in two permissions. AWS admits both subnets.
    let node = group(
        "sg-node",
        vec![
            from_cidrs(tcp(30080, 30080), &["192.168.0.0/19"]),
            from_cidrs(tcp(30000, 32767), &["192.168.32.0/19"]),
        ],
    );
    for lb in [
        "192.168.14.201",
        "192.168.47.18",
        "192.168.0.0/19",
        "192.168.32.0/19",
        "192.168.0.0/18",
    ] {
        assert!(
            matches!(
                inbound(&[&node], lb, &[], Protocol::Tcp, 30080),
                SgVerdict::Allowed { .. }
            ),
            "{lb}"
        );
    }
    // 30081 is only open from the second subnet.
    assert!(inbound(&[&node], "192.168.14.201", &[], Protocol::Tcp, 30081).is_blocked());
    // A rule in another group of the same interface counts as well.
    let other = group("sg-extra", vec![from_cidrs(tcp(30081, 30081), &["192.168.14.201/32"])]);
    assert!(matches!(
        inbound(&[&node, &other], "192.168.14.201", &[], Protocol::Tcp, 30081),
        SgVerdict::Allowed { .. }
    ));
}

#[test]
fn group_references_admit_interfaces_carrying_the_group() {
    let node = group("sg-node", vec![from_group(tcp(30000, 32767), "sg-lb")]);
    let lb_groups = vec!["sg-other".to_string(), "sg-lb".to_string()];
    match inbound(&[&node], "192.168.14.201", &lb_groups, Protocol::Tcp, 30080) {
        SgVerdict::Allowed { rules } => assert_eq!(rules, ["sg-node inbound tcp 30000-32767 from sg-lb"]),
        other => panic!("{other:?}"),
    }
    // An NLB without security groups is not admitted by a group reference.
    match inbound(&[&node], "192.168.14.201", &[], Protocol::Tcp, 30080) {
        SgVerdict::Blocked { near } => assert_eq!(near, ["sg-node inbound tcp 30000-32767 from sg-lb"]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn protocols_and_port_ranges_match_as_ec2_defines_them() {
    let node = group(
        "sg-node",
        vec![
            from_cidrs(
                IpPermission {
                    ip_protocol: "udp".into(),
                    from_port: Some(53),
                    to_port: Some(53),
                    ..Default::default()
                },
                &["0.0.0.0/0"],
            ),
            from_cidrs(
                IpPermission {
                    ip_protocol: "6".into(),
                    from_port: Some(30000),
                    to_port: Some(32767),
                    ..Default::default()
                },
                &["10.0.0.0/8"],
            ),
            from_cidrs(
                IpPermission {
                    ip_protocol: "icmp".into(),
                    from_port: Some(-1),
                    to_port: Some(-1),
                    ..Default::default()
                },
                &["0.0.0.0/0"],
            ),
        ],
    );
    assert!(inbound(&[&node], "192.168.1.1", &[], Protocol::Tcp, 53).is_blocked());
    assert!(matches!(
        inbound(&[&node], "192.168.1.1", &[], Protocol::Udp, 53),
        SgVerdict::Allowed { .. }
    ));
    assert!(matches!(
        inbound(&[&node], "10.1.2.3", &[], Protocol::Tcp, 30000),
        SgVerdict::Allowed { .. }
    ));
    assert!(matches!(
        inbound(&[&node], "10.1.2.3", &[], Protocol::Tcp, 32767),
        SgVerdict::Allowed { .. }
    ));
    assert!(inbound(&[&node], "10.1.2.3", &[], Protocol::Tcp, 32768).is_blocked());
    let all = group(
        "sg-all",
        vec![from_cidrs(
            IpPermission {
                ip_protocol: "-1".into(),
                ..Default::default()
            },
            &["192.168.0.0/16"],
        )],
    );
    assert!(matches!(
        inbound(&[&all], "192.168.200.1", &[], Protocol::Udp, 9),
        SgVerdict::Allowed { .. }
    ));
}

#[test]
fn managed_prefix_lists_admit_their_entries_and_unread_ones_stay_unknown() {
    // The second example: the load balancer subnets admitted through a prefix list.
    let node = group("sg-node", vec![from_list(tcp(30080, 30080), "pl-0lbsubnets")]);
    let peer = Peer {
        addresses: span("192.168.47.18"),
        groups: &[],
    };
    let mut lists = PrefixLists::new();
    lists.insert(
        "pl-0lbsubnets".into(),
        Collected::Present(vec!["192.168.0.0/19".into(), "192.168.32.0/19".into()]),
    );
    let v = evaluate_security_groups(&[&node], Direction::Inbound, &peer, Protocol::Tcp, 30080, &lists);
    assert_eq!(
        v,
        SgVerdict::Allowed {
            rules: vec!["sg-node inbound tcp 30080 from pl-0lbsubnets (192.168.32.0/19)".into()]
        }
    );
    // Not collected: AWS may well admit it; the model cannot say.
    let v = evaluate_security_groups(
        &[&node],
        Direction::Inbound,
        &peer,
        Protocol::Tcp,
        30080,
        &PrefixLists::new(),
    );
    assert!(
        matches!(v, SgVerdict::Unknown { ref why } if why.contains("pl-0lbsubnets")),
        "{v:?}"
    );
    // ...unless another rule admits it anyway.
    let open = group("sg-open", vec![from_cidrs(tcp(30080, 30080), &["192.168.0.0/16"])]);
    let v = evaluate_security_groups(
        &[&node, &open],
        Direction::Inbound,
        &peer,
        Protocol::Tcp,
        30080,
        &PrefixLists::new(),
    );
    assert!(matches!(v, SgVerdict::Allowed { .. }), "{v:?}");
}

#[test]
fn ipv6_sources_match_ipv6_ranges_only() {
    let node = group("sg-node", vec![from_cidrs(tcp(80, 80), &["0.0.0.0/0"])]);
    assert!(inbound(&[&node], "2600:1f18:4a2:8c00::1a", &[], Protocol::Tcp, 80).is_blocked());
    let node6 = group("sg-node", vec![from_cidrs(tcp(80, 80), &["2600:1f18:4a2:8c00::/56"])]);
    assert!(matches!(
        inbound(&[&node6], "2600:1f18:4a2:8c00::1a", &[], Protocol::Tcp, 80),
        SgVerdict::Allowed { .. }
    ));
    assert!(inbound(&[&node6], "192.168.1.1", &[], Protocol::Tcp, 80).is_blocked());
}

#[test]
fn a_range_of_clients_is_admitted_in_part() {
    let node = group("sg-node", vec![from_cidrs(tcp(31080, 31080), &["203.0.113.0/25"])]);
    match inbound(&[&node], "203.0.113.0/24", &[], Protocol::Tcp, 31080) {
        SgVerdict::Partial { uncovered, .. } => assert_eq!(uncovered, [span("203.0.113.128/25")]),
        other => panic!("{other:?}"),
    }
}

#[test]
fn outbound_rules_of_the_sender_are_evaluated_too() {
    let mut lb = group("sg-lb", vec![]);
    lb.ip_permissions_egress = vec![from_cidrs(tcp(0, 65535), &["10.0.0.0/8"])];
    let peer = Peer {
        addresses: span("192.168.70.10"),
        groups: &[],
    };
    let v = evaluate_security_groups(
        &[&lb],
        Direction::Outbound,
        &peer,
        Protocol::Tcp,
        30080,
        &PrefixLists::new(),
    );
    assert_eq!(
        v,
        SgVerdict::Blocked {
            near: vec!["sg-lb outbound tcp 0-65535 to 10.0.0.0/8".into()]
        }
    );
}

// ---- network ACLs

fn entry(
    number: u32,
    action: &str,
    egress: bool,
    cidr: &str,
    protocol: &str,
    ports: Option<(i32, i32)>,
) -> NetworkAclEntry {
    NetworkAclEntry {
        rule_number: number,
        protocol: protocol.into(),
        rule_action: action.into(),
        egress,
        cidr_block: (!cidr.contains(':')).then(|| cidr.to_string()),
        ipv6_cidr_block: cidr.contains(':').then(|| cidr.to_string()),
        port_range: ports.map(|(from, to)| PortRange { from, to }),
    }
}

fn acl(entries: Vec<NetworkAclEntry>) -> NetworkAcl {
    let mut entries = entries;
    for egress in [false, true] {
        entries.push(entry(32767, "deny", egress, "0.0.0.0/0", "-1", None));
    }
    NetworkAcl {
        network_acl_id: "acl-test".into(),
        entries,
        ..Default::default()
    }
}

fn decide(acl: &NetworkAcl, direction: Direction, peer: &str, port: u16) -> AclRule {
    let parts = evaluate_acl(acl, direction, span(peer), Protocol::Tcp, Ports::one(port));
    assert_eq!(parts.len(), 1, "{parts:?}");
    parts[0].rule.clone()
}

#[test]
fn a_host_deny_before_allow_all_decides_only_that_host() {
    // The third example: rule 50 denies one foreign host inside the load balancer's
    // subnet, rule 100 allows all. The load balancer's own address is allowed by 100.
    let a = acl(vec![
        entry(50, "deny", false, "192.168.20.99/32", "-1", None),
        entry(100, "allow", false, "0.0.0.0/0", "-1", None),
    ]);
    let r = decide(&a, Direction::Inbound, "192.168.14.201", 30080);
    assert_eq!((r.number, r.allow), (Some(100), true));
    let r = decide(&a, Direction::Inbound, "192.168.20.99", 30080);
    assert_eq!((r.number, r.allow), (Some(50), false));
    assert_eq!(r.text, "rule 50: deny all traffic from 192.168.20.99/32");
    // The whole subnet: the one host denied, everything else allowed.
    let parts = evaluate_acl(
        &a,
        Direction::Inbound,
        span("192.168.0.0/19"),
        Protocol::Tcp,
        Ports::one(30080),
    );
    let denied: Vec<&AclPart> = parts.iter().filter(|p| !p.rule.allow).collect();
    assert_eq!(denied.len(), 1);
    assert_eq!(denied[0].addresses, span("192.168.20.99"));
}

#[test]
fn an_allow_for_part_of_a_subnet_does_not_cover_the_rest() {
    // The fourth example: only 192.168.0.0/24 is allowed; the load balancer's node
    // at 192.168.14.201 falls to the final deny.
    let a = acl(vec![entry(
        100,
        "allow",
        false,
        "192.168.0.0/24",
        "6",
        Some((0, 65535)),
    )]);
    let r = decide(&a, Direction::Inbound, "192.168.14.201", 30080);
    assert_eq!((r.number, r.allow), (None, false));
    assert_eq!(r.label(), "*");
    assert!(decide(&a, Direction::Inbound, "192.168.0.77", 30080).allow);
}

#[test]
fn the_first_matching_rule_decides_not_the_broadest() {
    let deny_first = acl(vec![
        entry(90, "deny", false, "192.168.0.0/18", "6", Some((30000, 32767))),
        entry(100, "allow", false, "0.0.0.0/0", "-1", None),
    ]);
    assert_eq!(
        decide(&deny_first, Direction::Inbound, "192.168.14.201", 30080).number,
        Some(90)
    );
    assert!(decide(&deny_first, Direction::Inbound, "192.168.14.201", 443).allow);
    assert!(decide(&deny_first, Direction::Inbound, "10.0.0.1", 30080).allow);
    let allow_first = acl(vec![
        entry(80, "allow", false, "192.168.14.0/24", "6", Some((30080, 30080))),
        entry(90, "deny", false, "192.168.0.0/18", "6", Some((30000, 32767))),
        entry(100, "allow", false, "0.0.0.0/0", "-1", None),
    ]);
    assert_eq!(
        decide(&allow_first, Direction::Inbound, "192.168.14.201", 30080).number,
        Some(80)
    );
    assert_eq!(
        decide(&allow_first, Direction::Inbound, "192.168.47.18", 30080).number,
        Some(90)
    );
    // Egress entries do not decide inbound packets.
    let egress_only = acl(vec![entry(100, "allow", true, "0.0.0.0/0", "-1", None)]);
    assert!(!decide(&egress_only, Direction::Inbound, "192.168.14.201", 30080).allow);
}

#[test]
fn replies_need_the_whole_ephemeral_range() {
    // Return traffic to the load balancer uses ports 1024-65535; allowing only the Linux
    // range 32768-65535 drops the replies to lower ports.
    let a = acl(vec![entry(
        100,
        "allow",
        true,
        "192.168.0.0/16",
        "6",
        Some((32768, 65535)),
    )]);
    let parts = evaluate_acl(
        &a,
        Direction::Outbound,
        span("192.168.14.201"),
        Protocol::Tcp,
        Ports::EPHEMERAL,
    );
    let denied: Vec<Ports> = parts.iter().filter(|p| !p.rule.allow).map(|p| p.ports).collect();
    assert_eq!(denied, [Ports { lo: 1024, hi: 32767 }]);
}

#[test]
fn acl_protocols_match_by_number() {
    let a = acl(vec![
        entry(100, "allow", false, "0.0.0.0/0", "17", Some((0, 65535))),
        entry(110, "allow", false, "0.0.0.0/0", "1", None),
    ]);
    assert!(!decide(&a, Direction::Inbound, "192.168.14.201", 80).allow);
    let parts = evaluate_acl(
        &a,
        Direction::Inbound,
        span("192.168.14.201"),
        Protocol::Udp,
        Ports::one(53),
    );
    assert!(parts[0].rule.allow);
}

#[test]
fn ipv6_packets_are_decided_by_ipv6_entries_only() {
    // A custom ACL made for IPv4 (allow 0.0.0.0/0) drops IPv6 at the final `*` (32768).
    let mut a = acl(vec![entry(100, "allow", false, "0.0.0.0/0", "-1", None)]);
    a.entries.push(entry(32768, "deny", false, "::/0", "-1", None));
    let r = decide(&a, Direction::Inbound, "2600:1f18:4a2:8c00::1a", 80);
    assert_eq!((r.number, r.allow), (None, false));
    a.entries.push(entry(101, "allow", false, "::/0", "-1", None));
    let r = decide(&a, Direction::Inbound, "2600:1f18:4a2:8c00::1a", 80);
    assert_eq!((r.number, r.allow), (Some(101), true));
}

// ---- routes

fn route(dest: &str, target: &str, state: &str) -> Route {
    let mut r = Route {
        state: Some(state.into()),
        ..Default::default()
    };
    if dest.starts_with("pl-") {
        r.destination_prefix_list_id = Some(dest.into());
    } else if dest.contains(':') {
        r.destination_ipv6_cidr_block = Some(dest.into());
    } else {
        r.destination_cidr_block = Some(dest.into());
    }
    match target.split('-').next() {
        Some("eni") => r.network_interface_id = Some(target.into()),
        Some("nat") => r.nat_gateway_id = Some(target.into()),
        Some("tgw") => r.transit_gateway_id = Some(target.into()),
        _ => r.gateway_id = Some(target.into()),
    }
    r
}

fn table(routes: Vec<Route>) -> RouteTable {
    RouteTable {
        route_table_id: "rtb-test".into(),
        routes,
        ..Default::default()
    }
}

#[test]
fn the_longest_prefix_decides() {
    // The sixth example, first half: a more specific route sends the pod subnet to a
    // firewall ENI that is gone: traffic to pods there is dropped, elsewhere it is local.
    let t = table(vec![
        route("192.168.0.0/16", "local", "active"),
        route("192.168.64.0/19", "eni-0fw", "blackhole"),
        route("0.0.0.0/0", "igw-1", "active"),
    ]);
    let lists = PrefixLists::new();
    assert!(matches!(
        evaluate_route(&t, span("192.168.70.10"), &lists),
        RouteVerdict::Broken { ref target, .. } if target.as_deref() == Some("eni-0fw")
    ));
    assert!(matches!(
        evaluate_route(&t, span("192.168.100.20"), &lists),
        RouteVerdict::Local { .. }
    ));
    // ...and an active one is inspection: fine.
    let t = table(vec![
        route("192.168.0.0/16", "local", "active"),
        route("192.168.64.0/19", "vpce-0gwlb", "active"),
    ]);
    assert_eq!(
        evaluate_route(&t, span("192.168.70.10"), &lists),
        RouteVerdict::Middlebox {
            destination: "192.168.64.0/19".into(),
            target: "vpce-0gwlb".into()
        }
    );
}

#[test]
fn a_replaced_local_route_is_fine_while_its_middlebox_is_active() {
    // The sixth example, second half: the local route's target replaced by an inspection
    // endpoint is deliberate, not a fault.
    let lists = PrefixLists::new();
    let inspected = table(vec![route("192.168.0.0/16", "vpce-0gwlb", "active")]);
    assert!(matches!(
        evaluate_route(&inspected, span("192.168.70.10"), &lists),
        RouteVerdict::Middlebox { .. }
    ));
    let gone = table(vec![route("192.168.0.0/16", "eni-0fw", "blackhole")]);
    assert!(matches!(
        evaluate_route(&gone, span("192.168.70.10"), &lists),
        RouteVerdict::Broken { .. }
    ));
    let v6 = table(vec![route("192.168.0.0/16", "local", "active")]);
    assert!(matches!(
        evaluate_route(&v6, span("2600:1f18:4a2:8c00::1a"), &lists),
        RouteVerdict::Broken { destination: None, .. }
    ));
}

#[test]
fn prefix_list_routes_need_their_entries_unless_they_go_to_a_gateway_endpoint() {
    let lists = PrefixLists::new();
    let s3 = table(vec![
        route("192.168.0.0/16", "local", "active"),
        route("pl-63a5400a", "vpce-0s3", "active"),
    ]);
    assert!(matches!(
        evaluate_route(&s3, span("192.168.70.10"), &lists),
        RouteVerdict::Local { .. }
    ));
    let tgw = table(vec![
        route("192.168.0.0/16", "local", "active"),
        route("pl-0onprem", "tgw-1", "active"),
    ]);
    assert!(matches!(
        evaluate_route(&tgw, span("192.168.70.10"), &lists),
        RouteVerdict::Unknown { .. }
    ));
    let mut lists = PrefixLists::new();
    lists.insert("pl-0onprem".into(), Collected::Present(vec!["10.0.0.0/8".into()]));
    assert!(matches!(
        evaluate_route(&tgw, span("192.168.70.10"), &lists),
        RouteVerdict::Local { .. }
    ));
}

#[test]
fn a_whole_subnet_with_a_finer_route_inside_is_unknown() {
    let t = table(vec![
        route("192.168.0.0/16", "local", "active"),
        route("192.168.64.0/20", "eni-0fw", "blackhole"),
    ]);
    assert!(matches!(
        evaluate_route(&t, span("192.168.64.0/19"), &PrefixLists::new()),
        RouteVerdict::Unknown { .. }
    ));
}

#[test]
fn spans_print_as_addresses_cidrs_or_ranges() {
    assert_eq!(span("192.168.14.201").to_string(), "192.168.14.201");
    assert_eq!(span("192.168.0.0/19").to_string(), "192.168.0.0/19");
    assert_eq!(span("0.0.0.0/0").to_string(), "0.0.0.0/0");
    assert_eq!(span("::/0").to_string(), "::/0");
    let rest = span("192.168.0.0/24").subtract(span("192.168.0.4"));
    assert_eq!(rest[0].to_string(), "192.168.0.0/30");
    assert_eq!(rest[1].to_string(), "192.168.0.5-192.168.0.255");
}

// ---- properties

fn arb_cidr() -> impl Strategy<Value = String> {
    prop_oneof![
        (any::<u32>(), 0u8..=32).prop_map(|(a, p)| format!("{}/{p}", std::net::Ipv4Addr::from(a))),
        (any::<u128>(), 0u8..=128).prop_map(|(a, p)| format!("{}/{p}", std::net::Ipv6Addr::from(a))),
        // Small address space so that rules and peers overlap often.
        (0u32..64, 26u8..=32).prop_map(|(a, p)| format!("10.0.0.{a}/{p}")),
        "[ -~]{0,12}",
    ]
}

fn arb_protocol() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("-1".to_string()),
        Just("tcp".to_string()),
        Just("udp".to_string()),
        Just("6".to_string()),
        Just("17".to_string()),
        Just("icmp".to_string()),
        "[ -~]{0,4}",
    ]
}

fn arb_permission() -> impl Strategy<Value = IpPermission> {
    (
        arb_protocol(),
        proptest::option::of(-5i32..70000),
        proptest::option::of(-5i32..70000),
        proptest::collection::vec(arb_cidr(), 0..3),
        proptest::collection::vec(prop_oneof![Just("sg-a".to_string()), Just("sg-b".to_string())], 0..2),
        proptest::collection::vec(
            prop_oneof![Just("pl-known".to_string()), Just("pl-unknown".to_string())],
            0..2,
        ),
    )
        .prop_map(|(protocol, from, to, cidrs, groups, lists)| {
            let mut p = from_cidrs(
                IpPermission {
                    ip_protocol: protocol,
                    from_port: from,
                    to_port: to,
                    ..Default::default()
                },
                &cidrs.iter().map(String::as_str).collect::<Vec<_>>(),
            );
            for g in groups {
                p = from_group(p, &g);
            }
            for l in lists {
                p = from_list(p, &l);
            }
            p
        })
}

fn arb_peer() -> impl Strategy<Value = Span> {
    prop_oneof![
        (0u32..64).prop_map(|a| span(&format!("10.0.0.{a}"))),
        (0u32..64, 26u8..=32).prop_map(|(a, p)| span(&format!("10.0.0.{a}/{p}"))),
        any::<u32>().prop_map(|a| Span::addr(IpAddr::V4(a.into()))),
        any::<u128>().prop_map(|a| Span::addr(IpAddr::V6(a.into()))),
    ]
}

fn arb_protocol_kind() -> impl Strategy<Value = Protocol> {
    prop_oneof![Just(Protocol::Tcp), Just(Protocol::Udp)]
}

fn lists() -> PrefixLists {
    let mut l = PrefixLists::new();
    l.insert(
        "pl-known".into(),
        Collected::Present(vec!["10.0.0.0/28".into(), "junk".into()]),
    );
    l.insert("pl-unknown".into(), Collected::NotCollected("denied".into()));
    l
}

fn arb_entry() -> impl Strategy<Value = NetworkAclEntry> {
    (
        1u32..200,
        any::<bool>(),
        arb_cidr(),
        arb_protocol(),
        proptest::option::of((-5i32..70000, -5i32..70000)),
    )
        .prop_map(|(n, allow, cidr, protocol, ports)| {
            entry(n, if allow { "allow" } else { "deny" }, false, &cidr, &protocol, ports)
        })
}

/// The naive reading of the ACL rules for one packet: entries by number, the first whose
/// protocol, address and port match decides; none: denied.
fn first_match(acl: &NetworkAcl, peer: Span, protocol: Protocol, port: u16) -> Option<u32> {
    let mut entries: Vec<&NetworkAclEntry> = acl.entries.iter().filter(|e| !e.egress).collect();
    entries.sort_by_key(|e| e.rule_number);
    entries
        .into_iter()
        .find(|e| {
            let block = if peer.v6 { &e.ipv6_cidr_block } else { &e.cidr_block };
            protocol.matched_by(&e.protocol)
                && block.as_deref().and_then(Span::parse).is_some_and(|b| b.contains(peer))
                && entry_ports(e).contains(port)
        })
        .map(|e| e.rule_number)
        .filter(|&n| n < 32767)
}

proptest! {
    #[test]
    fn adding_an_allow_rule_never_blocks_what_was_allowed(
        rules in proptest::collection::vec(arb_permission(), 0..6),
        extra in arb_permission(),
        peer in arb_peer(),
        protocol in arb_protocol_kind(),
        port in any::<u16>(),
        peer_groups in proptest::collection::vec(prop_oneof![Just("sg-a".to_string()), Just("sg-c".to_string())], 0..2),
    ) {
        let lists = lists();
        let before = group("sg-x", rules);
        let mut after = before.clone();
        after.ip_permissions.push(extra);
        let p = Peer { addresses: peer, groups: &peer_groups };
        let v1 = evaluate_security_groups(&[&before], Direction::Inbound, &p, protocol, port, &lists);
        let v2 = evaluate_security_groups(&[&after], Direction::Inbound, &p, protocol, port, &lists);
        if matches!(v1, SgVerdict::Allowed { .. }) {
            prop_assert!(matches!(v2, SgVerdict::Allowed { .. }), "{v1:?} -> {v2:?}");
        }
        // A second group on the interface only adds rules as well.
        let v3 = evaluate_security_groups(&[&before, &after], Direction::Inbound, &p, protocol, port, &lists);
        if matches!(v1, SgVerdict::Allowed { .. }) || matches!(v2, SgVerdict::Allowed { .. }) {
            prop_assert!(matches!(v3, SgVerdict::Allowed { .. }), "{v3:?}");
        }
    }

    #[test]
    fn an_acl_decides_a_packet_by_its_first_matching_rule(
        entries in proptest::collection::vec(arb_entry(), 0..10),
        later in proptest::collection::vec(arb_entry(), 0..4),
        peer in (0u32..64).prop_map(|a| span(&format!("10.0.0.{a}"))),
        protocol in arb_protocol_kind(),
        port in any::<u16>(),
    ) {
        let mut a = acl(entries);
        a.entries.retain(|e| e.rule_number < 32767);
        let parts = evaluate_acl(&a, Direction::Inbound, peer, protocol, Ports::one(port));
        prop_assert_eq!(parts.len(), 1);
        let expected = first_match(&a, peer, protocol, port);
        prop_assert_eq!(parts[0].rule.number, expected);
        // Rules after the deciding one change nothing.
        if let Some(n) = expected {
            let mut b = a.clone();
            b.entries.extend(later.into_iter().map(|mut e| { e.rule_number = e.rule_number.max(n + 1) + 200; e }));
            let again = evaluate_acl(&b, Direction::Inbound, peer, protocol, Ports::one(port));
            prop_assert_eq!(&again[0].rule, &parts[0].rule);
        }
    }

    #[test]
    fn acl_parts_cover_the_packets_asked_about_exactly(
        entries in proptest::collection::vec(arb_entry(), 0..10),
        peer in (0u32..64, 26u8..=32).prop_map(|(a, p)| span(&format!("10.0.0.{a}/{p}"))),
        lo in any::<u16>(),
        len in 0u16..3000,
    ) {
        let ports = Ports { lo, hi: lo.saturating_add(len) };
        let a = acl(entries);
        let parts = evaluate_acl(&a, Direction::Inbound, peer, Protocol::Tcp, ports);
        let size = |s: Span, p: Ports| (s.hi - s.lo + 1) * u128::from(p.hi - p.lo + 1);
        let total: u128 = parts.iter().map(|p| size(p.addresses, p.ports)).sum();
        prop_assert_eq!(total, size(peer, ports));
        for p in &parts {
            prop_assert!(peer.contains(p.addresses));
            prop_assert!(p.ports.lo >= ports.lo && p.ports.hi <= ports.hi);
            // Each part is decided as its packets are, one by one.
            prop_assert_eq!(p.rule.number, first_match(&a, Span::addr(Span::ip(false, p.addresses.lo)), Protocol::Tcp, p.ports.lo));
        }
    }

    #[test]
    fn evaluation_never_panics_on_arbitrary_rules(
        rules in proptest::collection::vec(arb_permission(), 0..6),
        entries in proptest::collection::vec(arb_entry(), 0..10),
        routes in proptest::collection::vec((arb_cidr(), "[a-z]{2,4}-[0-9a-z]{0,6}", any::<bool>()), 0..6),
        peer in arb_peer(),
        protocol in arb_protocol_kind(),
        port in any::<u16>(),
        lo in any::<u16>(),
        hi in any::<u16>(),
    ) {
        let lists = lists();
        let g = group("sg-x", rules);
        let p = Peer { addresses: peer, groups: &[] };
        for direction in [Direction::Inbound, Direction::Outbound] {
            let _ = evaluate_security_groups(&[&g], direction, &p, protocol, port, &lists);
            let _ = evaluate_acl(&acl(entries.clone()), direction, peer, protocol, Ports { lo, hi });
        }
        let t = table(routes.into_iter().map(|(d, target, black)| route(&d, &target, if black { "blackhole" } else { "active" })).collect());
        let _ = evaluate_route(&t, peer, &lists);
        let _ = peer.to_string();
    }
}
