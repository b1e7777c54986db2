//! Small serde models of the AWS API shapes the checks read, in the PascalCase (ELBv2, EC2)
//! and camelCase (EKS) the AWS CLI prints. Only the fields the tool uses; unknown fields are
//! ignored so any CLI version's output loads.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Tag {
    pub key: String,
    pub value: String,
}

// ---- Elastic Load Balancing v2 ----

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TargetGroup {
    pub target_group_arn: String,
    pub target_group_name: String,
    pub protocol: Option<String>,
    /// `HTTP1`, `HTTP2` or `GRPC` (ALB target groups).
    pub protocol_version: Option<String>,
    pub port: Option<u16>,
    pub vpc_id: Option<String>,
    /// `ipv4` or `ipv6`.
    pub ip_address_type: Option<String>,
    pub health_check_protocol: Option<String>,
    /// `traffic-port` or a port number as a string.
    pub health_check_port: Option<String>,
    pub health_check_enabled: Option<bool>,
    pub health_check_interval_seconds: Option<u32>,
    pub health_check_timeout_seconds: Option<u32>,
    pub healthy_threshold_count: Option<u32>,
    pub unhealthy_threshold_count: Option<u32>,
    pub health_check_path: Option<String>,
    pub matcher: Option<Matcher>,
    pub load_balancer_arns: Vec<String>,
    /// `instance`, `ip`, `lambda` or `alb`.
    pub target_type: Option<String>,
}

impl TargetGroup {
    /// The port the health check connects to for this target: `traffic-port` (or unset)
    /// is the target's own port, else the configured number.
    pub fn health_check_port_for(&self, target: &TargetDescription) -> Option<u16> {
        match self.health_check_port.as_deref() {
            None | Some("traffic-port") => target.port.or(self.port),
            Some(p) => p.parse().ok(),
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Matcher {
    pub http_code: Option<String>,
    pub grpc_code: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TargetHealthDescription {
    pub target: TargetDescription,
    pub health_check_port: Option<String>,
    pub target_health: TargetHealth,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TargetDescription {
    pub id: String,
    pub port: Option<u16>,
    pub availability_zone: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TargetHealth {
    /// `initial`, `healthy`, `unhealthy`, `unhealthy.draining`, `unused`, `draining`, `unavailable`.
    pub state: String,
    pub reason: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TagDescription {
    pub resource_arn: String,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct LoadBalancer {
    pub load_balancer_arn: String,
    pub load_balancer_name: String,
    #[serde(rename = "DNSName")]
    pub dns_name: Option<String>,
    pub scheme: Option<String>,
    pub vpc_id: Option<String>,
    /// `application`, `network` or `gateway`.
    #[serde(rename = "Type")]
    pub kind: Option<String>,
    pub availability_zones: Vec<AvailabilityZone>,
    pub security_groups: Vec<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct AvailabilityZone {
    pub zone_name: String,
    pub subnet_id: Option<String>,
}

// ---- EC2 ----

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SecurityGroup {
    pub group_id: String,
    pub group_name: String,
    pub vpc_id: Option<String>,
    pub ip_permissions: Vec<IpPermission>,
    pub ip_permissions_egress: Vec<IpPermission>,
    pub tags: Vec<Tag>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpPermission {
    /// `tcp`, `udp`, `icmp`, `-1` (all) or a protocol number.
    pub ip_protocol: String,
    pub from_port: Option<i32>,
    pub to_port: Option<i32>,
    pub user_id_group_pairs: Vec<UserIdGroupPair>,
    pub ip_ranges: Vec<IpRange>,
    pub ipv6_ranges: Vec<Ipv6Range>,
    pub prefix_list_ids: Vec<PrefixListId>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct UserIdGroupPair {
    pub group_id: Option<String>,
    pub user_id: Option<String>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct IpRange {
    pub cidr_ip: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ipv6Range {
    pub cidr_ipv6: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PrefixListId {
    pub prefix_list_id: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkAcl {
    pub network_acl_id: String,
    pub vpc_id: Option<String>,
    pub is_default: bool,
    pub entries: Vec<NetworkAclEntry>,
    pub associations: Vec<NetworkAclAssociation>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkAclEntry {
    pub rule_number: u32,
    /// `-1` (all), `6` (tcp), `17` (udp), ...
    pub protocol: String,
    /// `allow` or `deny`.
    pub rule_action: String,
    pub egress: bool,
    pub cidr_block: Option<String>,
    pub ipv6_cidr_block: Option<String>,
    pub port_range: Option<PortRange>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PortRange {
    pub from: i32,
    pub to: i32,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkAclAssociation {
    pub network_acl_id: Option<String>,
    pub subnet_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RouteTable {
    pub route_table_id: String,
    pub vpc_id: Option<String>,
    pub routes: Vec<Route>,
    pub associations: Vec<RouteTableAssociation>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Route {
    pub destination_cidr_block: Option<String>,
    pub destination_ipv6_cidr_block: Option<String>,
    /// A managed prefix list as destination (gateway endpoints, transit gateways).
    pub destination_prefix_list_id: Option<String>,
    /// `local`, an internet / virtual private gateway, or a VPC endpoint (`vpce-`: gateway
    /// endpoints and Gateway Load Balancer endpoints of inspection appliances).
    pub gateway_id: Option<String>,
    pub egress_only_internet_gateway_id: Option<String>,
    pub local_gateway_id: Option<String>,
    pub carrier_gateway_id: Option<String>,
    pub core_network_arn: Option<String>,
    pub nat_gateway_id: Option<String>,
    pub network_interface_id: Option<String>,
    pub transit_gateway_id: Option<String>,
    pub vpc_peering_connection_id: Option<String>,
    pub instance_id: Option<String>,
    /// `active` or `blackhole`.
    pub state: Option<String>,
}

impl Route {
    /// Where the route sends traffic, for evidence.
    pub fn target(&self) -> String {
        [
            &self.gateway_id,
            &self.nat_gateway_id,
            &self.network_interface_id,
            &self.transit_gateway_id,
            &self.vpc_peering_connection_id,
            &self.instance_id,
            &self.egress_only_internet_gateway_id,
            &self.local_gateway_id,
            &self.carrier_gateway_id,
            &self.core_network_arn,
        ]
        .into_iter()
        .flatten()
        .next()
        .cloned()
        .unwrap_or_else(|| "unknown".into())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct RouteTableAssociation {
    pub main: bool,
    pub subnet_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Subnet {
    pub subnet_id: String,
    pub vpc_id: Option<String>,
    pub cidr_block: Option<String>,
    pub ipv6_cidr_block_association_set: Vec<SubnetIpv6CidrBlockAssociation>,
    pub availability_zone: Option<String>,
    pub tags: Vec<Tag>,
}

impl Subnet {
    /// Whether `ip` (IPv4 or IPv6) lies in one of the subnet's CIDR blocks.
    pub fn contains(&self, ip: &std::net::IpAddr) -> bool {
        let in_block = |b: &str| b.parse::<ipnet::IpNet>().is_ok_and(|n| n.contains(ip));
        self.cidr_block.as_deref().is_some_and(in_block)
            || self
                .ipv6_cidr_block_association_set
                .iter()
                .any(|a| in_block(&a.ipv6_cidr_block))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct SubnetIpv6CidrBlockAssociation {
    pub ipv6_cidr_block: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Vpc {
    pub vpc_id: String,
    pub cidr_block: Option<String>,
    pub cidr_block_association_set: Vec<CidrBlockAssociation>,
    pub ipv6_cidr_block_association_set: Vec<VpcIpv6CidrBlockAssociation>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct VpcIpv6CidrBlockAssociation {
    pub ipv6_cidr_block: String,
}

impl Vpc {
    /// Every associated IPv4 CIDR block of the VPC (the primary one first).
    pub fn cidr_blocks(&self) -> Vec<String> {
        let mut blocks: Vec<String> = self.cidr_block.iter().cloned().collect();
        for assoc in &self.cidr_block_association_set {
            let associated = assoc
                .cidr_block_state
                .as_ref()
                .is_none_or(|s| s.state.as_deref().is_none_or(|st| st == "associated"));
            if associated && !blocks.contains(&assoc.cidr_block) {
                blocks.push(assoc.cidr_block.clone());
            }
        }
        blocks
    }

    /// Every IPv4 and IPv6 block of the VPC (what its local routes carry).
    pub fn all_cidr_blocks(&self) -> Vec<String> {
        let mut blocks = self.cidr_blocks();
        blocks.extend(
            self.ipv6_cidr_block_association_set
                .iter()
                .map(|a| a.ipv6_cidr_block.clone()),
        );
        blocks
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CidrBlockAssociation {
    pub cidr_block: String,
    pub cidr_block_state: Option<CidrBlockState>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct CidrBlockState {
    pub state: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Reservation {
    pub instances: Vec<Instance>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Instance {
    pub instance_id: String,
    pub private_ip_address: Option<String>,
    pub private_dns_name: Option<String>,
    pub subnet_id: Option<String>,
    pub vpc_id: Option<String>,
    pub state: Option<InstanceState>,
    pub placement: Option<Placement>,
    pub security_groups: Vec<GroupIdentifier>,
    pub tags: Vec<Tag>,
}

impl Instance {
    pub fn state_name(&self) -> &str {
        self.state.as_ref().map_or("unknown", |s| s.name.as_str())
    }
    pub fn zone(&self) -> Option<&str> {
        self.placement.as_ref().and_then(|p| p.availability_zone.as_deref())
    }
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tags.iter().find(|t| t.key == key).map(|t| t.value.as_str())
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InstanceState {
    pub code: Option<i32>,
    pub name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Placement {
    pub availability_zone: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GroupIdentifier {
    pub group_id: String,
    pub group_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkInterface {
    pub network_interface_id: String,
    pub subnet_id: Option<String>,
    pub vpc_id: Option<String>,
    pub availability_zone: Option<String>,
    pub description: Option<String>,
    pub interface_type: Option<String>,
    pub private_ip_address: Option<String>,
    pub private_ip_addresses: Vec<PrivateIpAddress>,
    /// Prefix delegation: /28 prefixes the VPC CNI hands out pod addresses from.
    pub ipv4_prefixes: Vec<Ipv4PrefixSpecification>,
    pub ipv6_addresses: Vec<InstanceIpv6Address>,
    /// IPv6 prefix delegation (/80 prefixes, IPv6 clusters).
    pub ipv6_prefixes: Vec<Ipv6PrefixSpecification>,
    pub groups: Vec<GroupIdentifier>,
    pub attachment: Option<NetworkInterfaceAttachment>,
    pub tag_set: Vec<Tag>,
}

/// The tag the VPC resource controller puts on a branch interface (security groups for pods)
/// naming the node's trunk interface it is associated with.
pub const TRUNK_ENI_TAG: &str = "vpcresources.k8s.aws/trunk-eni-id";

impl NetworkInterface {
    pub fn tag(&self, key: &str) -> Option<&str> {
        self.tag_set.iter().find(|t| t.key == key).map(|t| t.value.as_str())
    }

    /// Whether `ip` is on this interface: its primary or a secondary private address, an
    /// IPv6 address, or inside one of its delegated IPv4 / IPv6 prefixes.
    pub fn has_ip(&self, ip: &str) -> bool {
        if self.private_ip_address.as_deref() == Some(ip)
            || self.private_ip_addresses.iter().any(|a| a.private_ip_address == ip)
        {
            return true;
        }
        let Ok(addr) = ip.parse::<std::net::IpAddr>() else {
            return false;
        };
        let in_prefix = |p: &str| p.parse::<ipnet::IpNet>().is_ok_and(|net| net.contains(&addr));
        self.ipv6_addresses
            .iter()
            .any(|a| a.ipv6_address.parse::<std::net::IpAddr>().ok() == Some(addr))
            || self.ipv4_prefixes.iter().any(|p| in_prefix(&p.ipv4_prefix))
            || self.ipv6_prefixes.iter().any(|p| in_prefix(&p.ipv6_prefix))
    }
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ipv4PrefixSpecification {
    pub ipv4_prefix: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Ipv6PrefixSpecification {
    pub ipv6_prefix: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct InstanceIpv6Address {
    pub ipv6_address: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PrivateIpAddress {
    pub primary: bool,
    pub private_ip_address: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct NetworkInterfaceAttachment {
    pub instance_id: Option<String>,
    pub device_index: Option<i32>,
}

/// One `Key` / `Value` attribute of a target group or load balancer.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct Attribute {
    pub key: String,
    pub value: String,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeTargetGroupAttributesOutput {
    pub attributes: Vec<Attribute>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeLoadBalancerAttributesOutput {
    pub attributes: Vec<Attribute>,
}

/// One entry of a managed prefix list.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct PrefixListEntry {
    pub cidr: String,
    pub description: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct GetManagedPrefixListEntriesOutput {
    pub entries: Vec<PrefixListEntry>,
}

// ---- EKS (camelCase, as `aws eks describe-cluster` prints it) ----

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Cluster {
    pub name: String,
    pub arn: Option<String>,
    pub version: Option<String>,
    pub endpoint: Option<String>,
    pub status: Option<String>,
    pub resources_vpc_config: Option<ClusterVpcConfig>,
    pub kubernetes_network_config: Option<KubernetesNetworkConfig>,
    pub certificate_authority: Option<CertificateAuthority>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct KubernetesNetworkConfig {
    /// `ipv4` or `ipv6`: the family of pod and Service addresses.
    pub ip_family: Option<String>,
    pub service_ipv4_cidr: Option<String>,
    pub service_ipv6_cidr: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ClusterVpcConfig {
    pub subnet_ids: Vec<String>,
    pub security_group_ids: Vec<String>,
    pub cluster_security_group_id: Option<String>,
    pub vpc_id: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", default)]
pub struct CertificateAuthority {
    pub data: Option<String>,
}

// ---- Whole CLI outputs, as the files of a dump hold them ----

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeTargetGroupsOutput {
    pub target_groups: Vec<TargetGroup>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeTargetHealthOutput {
    pub target_health_descriptions: Vec<TargetHealthDescription>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeTagsOutput {
    pub tag_descriptions: Vec<TagDescription>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeLoadBalancersOutput {
    pub load_balancers: Vec<LoadBalancer>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeSecurityGroupsOutput {
    pub security_groups: Vec<SecurityGroup>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeNetworkAclsOutput {
    pub network_acls: Vec<NetworkAcl>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeRouteTablesOutput {
    pub route_tables: Vec<RouteTable>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeSubnetsOutput {
    pub subnets: Vec<Subnet>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeVpcsOutput {
    pub vpcs: Vec<Vpc>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeInstancesOutput {
    pub reservations: Vec<Reservation>,
    /// This project's addition (what `collect` writes): instance IDs EC2 answered
    /// `InvalidInstanceID.NotFound` for. The AWS CLI fails the whole call instead.
    pub instance_ids_not_found: Vec<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct DescribeNetworkInterfacesOutput {
    pub network_interfaces: Vec<NetworkInterface>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct DescribeClusterOutput {
    pub cluster: Option<Cluster>,
}
