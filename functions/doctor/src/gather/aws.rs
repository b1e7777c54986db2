//! AWS side of gathering: ELBv2, EC2 and EKS through the AWS SDK for Rust. Only the
//! resources behind one target group: its targets, their instances and interfaces, the load
//! balancer, the security groups involved, and the VPC's subnets, ACLs and route tables.

use std::collections::{BTreeMap, BTreeSet};

use std::time::Duration;

use aws_config::SdkConfig;
use aws_sdk_ec2::types::Filter;
use aws_smithy_runtime_api::box_error::BoxError;
use aws_smithy_runtime_api::client::interceptors::context::BeforeTransmitInterceptorContextRef;
use aws_smithy_runtime_api::client::interceptors::Intercept;
use aws_smithy_runtime_api::client::result::SdkError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_types::config_bag::ConfigBag;
use aws_smithy_types::error::metadata::ProvideErrorMetadata;

use super::{bounded, ApiCalls, Limits};
use crate::arn::TargetGroupArn;
use crate::aws as m;
use crate::snapshot::{Collected, Snapshot};

/// The AWS clients, built once and reused (across warm Lambda invocations too).
#[derive(Clone, Debug)]
pub struct AwsClients {
    pub config: SdkConfig,
    pub elbv2: aws_sdk_elasticloadbalancingv2::Client,
    pub ec2: aws_sdk_ec2::Client,
    pub eks: aws_sdk_eks::Client,
    pub calls: ApiCalls,
}

/// Counts every request each client sends.
#[derive(Debug)]
struct CountCalls {
    service: &'static str,
    calls: ApiCalls,
}

impl Intercept for CountCalls {
    fn name(&self) -> &'static str {
        "CountCalls"
    }
    fn read_before_transmit(
        &self,
        _ctx: &BeforeTransmitInterceptorContextRef<'_>,
        _rc: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        self.calls.add(self.service);
        Ok(())
    }
}

/// An HTTPS client on rustls with ring (one TLS backend for the whole binary).
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    aws_smithy_http_client::Builder::new()
        .tls_provider(aws_smithy_http_client::tls::Provider::Rustls(
            aws_smithy_http_client::tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// Loads the shared config from the default chain (region, credentials, `AWS_ENDPOINT_URL*`).
pub async fn load_config(region: Option<String>) -> SdkConfig {
    let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .http_client(https_client())
        .timeout_config(
            aws_config::timeout::TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(8))
                .build(),
        );
    if let Some(region) = region {
        loader = loader.region(aws_config::Region::new(region));
    }
    loader.load().await
}

impl AwsClients {
    pub fn new(config: &SdkConfig) -> Self {
        let calls = ApiCalls::default();
        let counter = |service| CountCalls {
            service,
            calls: calls.clone(),
        };
        let elbv2 = aws_sdk_elasticloadbalancingv2::config::Builder::from(config)
            .interceptor(counter("elasticloadbalancing"))
            .build();
        let ec2 = aws_sdk_ec2::config::Builder::from(config)
            .interceptor(counter("ec2"))
            .build();
        let eks = aws_sdk_eks::config::Builder::from(config)
            .interceptor(counter("eks"))
            .build();
        AwsClients {
            config: config.clone(),
            elbv2: aws_sdk_elasticloadbalancingv2::Client::from_conf(elbv2),
            ec2: aws_sdk_ec2::Client::from_conf(ec2),
            eks: aws_sdk_eks::Client::from_conf(eks),
            calls,
        }
    }
}

/// `elasticloadbalancing:DescribeTargetGroups: AccessDenied: User ... is not authorized`.
fn sdk_error<E, R>(what: &str, err: &SdkError<E, R>) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    match (err.code(), err.message()) {
        (Some(code), Some(message)) => format!("{what}: {code}: {message}"),
        (Some(code), None) => format!("{what}: {code}"),
        _ => format!("{what}: {}", aws_smithy_types::error::display::DisplayErrorContext(err)),
    }
}

fn port(p: Option<i32>) -> Option<u16> {
    p.and_then(|p| u16::try_from(p).ok())
}

fn s(v: Option<&str>) -> Option<String> {
    v.map(str::to_string)
}

fn tags_of(tags: &[aws_sdk_ec2::types::Tag]) -> Vec<m::Tag> {
    tags.iter()
        .map(|t| m::Tag {
            key: t.key().unwrap_or_default().into(),
            value: t.value().unwrap_or_default().into(),
        })
        .collect()
}

/// Phase 1: the target group, its tags and its target health.
pub async fn gather_target_group(aws: &AwsClients, arn: &TargetGroupArn, limits: &Limits, snapshot: &mut Snapshot) {
    let arn_text = arn.to_string();
    let tg = bounded(limits, "elasticloadbalancing:DescribeTargetGroups", async {
        match aws
            .elbv2
            .describe_target_groups()
            .target_group_arns(&arn_text)
            .send()
            .await
        {
            Ok(out) => Ok(out.target_groups().first().map(target_group)),
            Err(e) if e.code() == Some("TargetGroupNotFound") => Ok(None),
            Err(e) => Err(sdk_error("elasticloadbalancing:DescribeTargetGroups", &e)),
        }
    });
    let tags = bounded(limits, "elasticloadbalancing:DescribeTags", async {
        let out = aws
            .elbv2
            .describe_tags()
            .resource_arns(&arn_text)
            .send()
            .await
            .map_err(|e| sdk_error("elasticloadbalancing:DescribeTags", &e))?;
        Ok(out
            .tag_descriptions()
            .iter()
            .filter(|d| d.resource_arn() == Some(arn_text.as_str()))
            .flat_map(|d| d.tags())
            .map(|t| {
                (
                    t.key().unwrap_or_default().to_string(),
                    t.value().unwrap_or_default().to_string(),
                )
            })
            .collect::<BTreeMap<_, _>>())
    });
    let health = bounded(limits, "elasticloadbalancing:DescribeTargetHealth", async {
        let out = aws
            .elbv2
            .describe_target_health()
            .target_group_arn(&arn_text)
            .send()
            .await
            .map_err(|e| sdk_error("elasticloadbalancing:DescribeTargetHealth", &e))?;
        Ok(out
            .target_health_descriptions()
            .iter()
            .map(target_health)
            .collect::<Vec<_>>())
    });
    let (tg, tags, health) = tokio::join!(tg, tags, health);
    let state = &mut snapshot.aws;
    state.target_group = match tg {
        Ok(Some(tg)) => Collected::Present(tg),
        Ok(None) => Collected::Absent,
        Err(e) => Collected::NotCollected(e),
    };
    state.tags = tags.map_or_else(Collected::NotCollected, Collected::Present);
    state.target_health = health.map_or_else(Collected::NotCollected, Collected::Present);
}

fn target_group(t: &aws_sdk_elasticloadbalancingv2::types::TargetGroup) -> m::TargetGroup {
    m::TargetGroup {
        target_group_arn: t.target_group_arn().unwrap_or_default().into(),
        target_group_name: t.target_group_name().unwrap_or_default().into(),
        protocol: t.protocol().map(|p| p.as_str().to_string()),
        protocol_version: s(t.protocol_version()),
        port: port(t.port()),
        vpc_id: s(t.vpc_id()),
        ip_address_type: t.ip_address_type().map(|v| v.as_str().to_string()),
        health_check_protocol: t.health_check_protocol().map(|p| p.as_str().to_string()),
        health_check_port: s(t.health_check_port()),
        health_check_enabled: t.health_check_enabled(),
        health_check_interval_seconds: t.health_check_interval_seconds().and_then(|v| u32::try_from(v).ok()),
        health_check_timeout_seconds: t.health_check_timeout_seconds().and_then(|v| u32::try_from(v).ok()),
        healthy_threshold_count: t.healthy_threshold_count().and_then(|v| u32::try_from(v).ok()),
        unhealthy_threshold_count: t.unhealthy_threshold_count().and_then(|v| u32::try_from(v).ok()),
        health_check_path: s(t.health_check_path()),
        matcher: t.matcher().map(|mt| m::Matcher {
            http_code: s(mt.http_code()),
            grpc_code: s(mt.grpc_code()),
        }),
        load_balancer_arns: t.load_balancer_arns().to_vec(),
        target_type: t.target_type().map(|v| v.as_str().to_string()),
    }
}

fn target_health(d: &aws_sdk_elasticloadbalancingv2::types::TargetHealthDescription) -> m::TargetHealthDescription {
    let target = d.target();
    let health = d.target_health();
    m::TargetHealthDescription {
        target: m::TargetDescription {
            id: target.and_then(|t| t.id()).unwrap_or_default().into(),
            port: port(target.and_then(|t| t.port())),
            availability_zone: s(target.and_then(|t| t.availability_zone())),
        },
        health_check_port: s(d.health_check_port()),
        target_health: m::TargetHealth {
            state: health
                .and_then(|h| h.state())
                .map(|v| v.as_str().to_string())
                .unwrap_or_default(),
            reason: health.and_then(|h| h.reason()).map(|v| v.as_str().to_string()),
            description: s(health.and_then(|h| h.description())),
        },
    }
}

fn filter(name: &str, values: impl IntoIterator<Item = String>) -> Filter {
    Filter::builder()
        .name(name)
        .set_values(Some(values.into_iter().collect()))
        .build()
}

/// Phase 2: the load balancer, instances, interfaces, security groups and the VPC's network
/// pieces, concurrent where independent; `cluster` is the cluster already described.
pub async fn gather_network(
    aws: &AwsClients,
    cluster: Collected<m::Cluster>,
    limits: &Limits,
    snapshot: &mut Snapshot,
) {
    let tg = snapshot.aws.target_group.present().cloned();
    let targets: Vec<m::TargetHealthDescription> = snapshot
        .aws
        .target_health
        .items()
        .map(<[_]>::to_vec)
        .unwrap_or_default();
    let Some(tg) = tg else {
        let why = match snapshot.aws.target_group.reason() {
            Some(r) => format!("the target group was not collected ({r})"),
            None => "the target group does not exist".to_string(),
        };
        let state = &mut snapshot.aws;
        state.load_balancers = Collected::not_collected(why.clone());
        state.security_groups = Collected::not_collected(why.clone());
        state.network_acls = Collected::not_collected(why.clone());
        state.route_tables = Collected::not_collected(why.clone());
        state.subnets = Collected::not_collected(why.clone());
        state.vpcs = Collected::not_collected(why.clone());
        state.instances = Collected::not_collected(why.clone());
        state.network_interfaces = Collected::not_collected(why.clone());
        state.load_balancer_interfaces = Collected::not_collected(why.clone());
        state.target_group_attributes = Collected::not_collected(why.clone());
        state.load_balancer_attributes = Collected::not_collected(why);
        state.cluster = cluster;
        return;
    };
    let ip_mode = tg.target_type.as_deref() == Some("ip");
    let ids: Vec<String> = targets.iter().map(|t| t.target.id.clone()).collect();
    let vpc = tg.vpc_id.clone();
    let vpc_filter = |name: &str| vpc.clone().map(|v| filter(name, [v]));

    let lbs = async {
        if tg.load_balancer_arns.is_empty() {
            return Ok(Vec::new());
        }
        let pages = aws
            .elbv2
            .describe_load_balancers()
            .set_load_balancer_arns(Some(tg.load_balancer_arns.clone()))
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error("elasticloadbalancing:DescribeLoadBalancers", &e))?;
        Ok(pages
            .iter()
            .flat_map(|p| p.load_balancers())
            .map(load_balancer)
            .collect::<Vec<_>>())
    };
    // Instance targets are instances; IP targets live on interfaces (the VPC CNI puts pod
    // IPs on node ENIs as secondary addresses), whose attachments name the instances.
    let enis = async {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let f = if ip_mode {
            // IPv6 pod addresses sit in delegated prefixes: looked up by subnet below.
            let v4: Vec<String> = ids
                .iter()
                .filter(|id| id.parse::<std::net::Ipv4Addr>().is_ok())
                .cloned()
                .collect();
            if v4.is_empty() {
                return Ok(Vec::new());
            }
            filter("addresses.private-ip-address", v4)
        } else {
            filter("attachment.instance-id", ids.clone())
        };
        let pages = aws
            .ec2
            .describe_network_interfaces()
            .filters(f)
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error("ec2:DescribeNetworkInterfaces", &e))?;
        Ok(pages
            .iter()
            .flat_map(|p| p.network_interfaces())
            .map(network_interface)
            .collect::<Vec<_>>())
    };
    let subnets = async {
        let pages = aws
            .ec2
            .describe_subnets()
            .set_filters(vpc_filter("vpc-id").map(|f| vec![f]))
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error("ec2:DescribeSubnets", &e))?;
        Ok(pages.iter().flat_map(|p| p.subnets()).map(subnet).collect::<Vec<_>>())
    };
    let acls = async {
        let pages = aws
            .ec2
            .describe_network_acls()
            .set_filters(vpc_filter("vpc-id").map(|f| vec![f]))
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error("ec2:DescribeNetworkAcls", &e))?;
        Ok(pages
            .iter()
            .flat_map(|p| p.network_acls())
            .map(network_acl)
            .collect::<Vec<_>>())
    };
    let routes = async {
        let pages = aws
            .ec2
            .describe_route_tables()
            .set_filters(vpc_filter("vpc-id").map(|f| vec![f]))
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error("ec2:DescribeRouteTables", &e))?;
        Ok(pages
            .iter()
            .flat_map(|p| p.route_tables())
            .map(route_table)
            .collect::<Vec<_>>())
    };
    let vpcs = async {
        let Some(vpc) = vpc.clone() else { return Ok(Vec::new()) };
        let out = aws
            .ec2
            .describe_vpcs()
            .vpc_ids(vpc)
            .send()
            .await
            .map_err(|e| sdk_error("ec2:DescribeVpcs", &e))?;
        Ok(out.vpcs().iter().map(vpc_model).collect::<Vec<_>>())
    };
    // The load balancer's own interfaces carry the description `ELB app/NAME/ID` (ALB) or
    // `ELB net/NAME/ID` (NLB): the ARN's resource after `loadbalancer/`.
    let lb_descriptions: Vec<String> = tg
        .load_balancer_arns
        .iter()
        .filter_map(|arn| arn.split_once(":loadbalancer/").map(|(_, r)| format!("ELB {r}")))
        .collect();
    let lb_enis = async {
        if lb_descriptions.is_empty() {
            return Ok(Vec::new());
        }
        let pages = aws
            .ec2
            .describe_network_interfaces()
            .filters(filter("description", lb_descriptions.clone()))
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error("ec2:DescribeNetworkInterfaces", &e))?;
        Ok(pages
            .iter()
            .flat_map(|p| p.network_interfaces())
            .map(network_interface)
            .collect::<Vec<_>>())
    };
    let tg_attributes = async {
        let out = aws
            .elbv2
            .describe_target_group_attributes()
            .target_group_arn(&tg.target_group_arn)
            .send()
            .await
            .map_err(|e| sdk_error("elasticloadbalancing:DescribeTargetGroupAttributes", &e))?;
        Ok(out
            .attributes()
            .iter()
            .map(|a| {
                (
                    a.key().unwrap_or_default().to_string(),
                    a.value().unwrap_or_default().to_string(),
                )
            })
            .collect::<BTreeMap<_, _>>())
    };
    let lb_attributes = async {
        let Some(arn) = tg.load_balancer_arns.first() else {
            return Ok(None);
        };
        let out = aws
            .elbv2
            .describe_load_balancer_attributes()
            .load_balancer_arn(arn)
            .send()
            .await
            .map_err(|e| sdk_error("elasticloadbalancing:DescribeLoadBalancerAttributes", &e))?;
        Ok(Some(
            out.attributes()
                .iter()
                .map(|a| {
                    (
                        a.key().unwrap_or_default().to_string(),
                        a.value().unwrap_or_default().to_string(),
                    )
                })
                .collect::<BTreeMap<_, _>>(),
        ))
    };
    let cluster_state = cluster;
    let (lbs, enis, subnets, acls, routes, vpcs, lb_enis, tg_attributes, lb_attributes) = tokio::join!(
        bounded(limits, "elasticloadbalancing:DescribeLoadBalancers", lbs),
        bounded(limits, "ec2:DescribeNetworkInterfaces", enis),
        bounded(limits, "ec2:DescribeSubnets", subnets),
        bounded(limits, "ec2:DescribeNetworkAcls", acls),
        bounded(limits, "ec2:DescribeRouteTables", routes),
        bounded(limits, "ec2:DescribeVpcs", vpcs),
        bounded(limits, "ec2:DescribeNetworkInterfaces", lb_enis),
        bounded(
            limits,
            "elasticloadbalancing:DescribeTargetGroupAttributes",
            tg_attributes
        ),
        bounded(
            limits,
            "elasticloadbalancing:DescribeLoadBalancerAttributes",
            lb_attributes
        ),
    );

    // IP targets the address filter did not find sit in delegated prefixes (VPC CNI prefix
    // delegation) or are IPv6: EC2 cannot filter on prefix membership, so list the
    // interfaces of the subnets holding them and keep those that contain them.
    let enis = match (enis, &subnets) {
        (Ok(mut found), Ok(subnets)) if ip_mode => {
            let unfound: Vec<std::net::IpAddr> = ids
                .iter()
                .filter(|id| !found.iter().any(|e| e.has_ip(id)))
                .filter_map(|id| id.parse().ok())
                .collect();
            let in_subnets: BTreeSet<String> = subnets
                .iter()
                .filter(|sn| unfound.iter().any(|ip| sn.contains(ip)))
                .map(|sn| sn.subnet_id.clone())
                .collect();
            if !in_subnets.is_empty() {
                let extra = bounded(limits, "ec2:DescribeNetworkInterfaces", async {
                    let pages = aws
                        .ec2
                        .describe_network_interfaces()
                        .filters(filter("subnet-id", in_subnets.iter().cloned()))
                        .into_paginator()
                        .send()
                        .try_collect()
                        .await
                        .map_err(|e| sdk_error("ec2:DescribeNetworkInterfaces", &e))?;
                    Ok(pages
                        .iter()
                        .flat_map(|p| p.network_interfaces())
                        .map(network_interface)
                        .collect::<Vec<_>>())
                })
                .await;
                match extra {
                    Ok(extra) => {
                        for eni in extra {
                            let holds = unfound.iter().any(|ip| eni.has_ip(&ip.to_string()));
                            if holds && !found.iter().any(|e| e.network_interface_id == eni.network_interface_id) {
                                found.push(eni);
                            }
                        }
                        Ok(found)
                    }
                    Err(e) => Err(e),
                }
            } else {
                Ok(found)
            }
        }
        (enis, _) => enis,
    };

    // Security groups for pods: a pod address is on a branch interface, attached to nothing;
    // the trunk interface it is associated with (its tag) is attached to the node's instance.
    let enis = match enis {
        Ok(mut found) if ip_mode => {
            let trunks: BTreeSet<String> = found
                .iter()
                .filter(|e| e.interface_type.as_deref() == Some("branch"))
                .filter_map(|e| e.tag(m::TRUNK_ENI_TAG).map(str::to_string))
                .filter(|t| t.starts_with("eni-") && !found.iter().any(|e| &e.network_interface_id == t))
                .collect();
            if trunks.is_empty() {
                Ok(found)
            } else {
                let extra = bounded(limits, "ec2:DescribeNetworkInterfaces", async {
                    let pages = aws
                        .ec2
                        .describe_network_interfaces()
                        .set_network_interface_ids(Some(trunks.iter().cloned().collect()))
                        .into_paginator()
                        .send()
                        .try_collect()
                        .await
                        .map_err(|e| sdk_error("ec2:DescribeNetworkInterfaces", &e))?;
                    Ok(pages
                        .iter()
                        .flat_map(|p| p.network_interfaces())
                        .map(network_interface)
                        .collect::<Vec<_>>())
                })
                .await;
                // A trunk that cannot be described costs the instance lookup, not the rest.
                match extra {
                    Ok(extra) => found.extend(extra),
                    Err(e) => tracing::warn!(error = %e, "trunk interfaces not described"),
                }
                Ok(found)
            }
        }
        other => other,
    };

    // Phase 3: the instances (targets, or the ones the pod interfaces are attached to), then
    // every security group involved.
    let mut instance_ids: BTreeSet<String> = BTreeSet::new();
    if ip_mode {
        if let Ok(enis) = &enis {
            instance_ids.extend(enis.iter().filter_map(|e| e.attachment.as_ref()?.instance_id.clone()));
        }
    } else {
        instance_ids.extend(ids.iter().cloned());
    }
    let described = bounded(limits, "ec2:DescribeInstances", async {
        describe_instances(aws, instance_ids.iter().cloned().collect()).await
    })
    .await;
    let (instances, not_found) = match described {
        Ok((found, missing)) => (Ok(found), missing),
        Err(e) => (Err(e), Vec::new()),
    };
    snapshot.aws.instances_not_found = not_found;

    let mut group_ids: BTreeSet<String> = BTreeSet::new();
    if let Ok(lbs) = &lbs {
        group_ids.extend(lbs.iter().flat_map(|l| l.security_groups.iter().cloned()));
    }
    if let Ok(instances) = &instances {
        group_ids.extend(
            instances
                .iter()
                .flat_map(|i| i.security_groups.iter().map(|g| g.group_id.clone())),
        );
    }
    if let Ok(enis) = &enis {
        group_ids.extend(enis.iter().flat_map(|e| e.groups.iter().map(|g| g.group_id.clone())));
    }
    if let Some(c) = cluster_state.present() {
        let vpc_config = c.resources_vpc_config.as_ref();
        group_ids.extend(vpc_config.and_then(|v| v.cluster_security_group_id.clone()));
    }
    let groups = bounded(limits, "ec2:DescribeSecurityGroups", async {
        if group_ids.is_empty() {
            return Ok(Vec::new());
        }
        let pages = aws
            .ec2
            .describe_security_groups()
            .set_group_ids(Some(group_ids.iter().cloned().collect()))
            .into_paginator()
            .send()
            .try_collect()
            .await
            .map_err(|e| sdk_error("ec2:DescribeSecurityGroups", &e))?;
        Ok(pages
            .iter()
            .flat_map(|p| p.security_groups())
            .map(security_group)
            .collect::<Vec<_>>())
    })
    .await;

    let state = &mut snapshot.aws;
    state.load_balancers = lbs.map_or_else(Collected::NotCollected, Collected::Present);
    state.network_interfaces = enis.map_or_else(Collected::NotCollected, Collected::Present);
    state.subnets = subnets.map_or_else(Collected::NotCollected, Collected::Present);
    state.network_acls = acls.map_or_else(Collected::NotCollected, Collected::Present);
    state.route_tables = routes.map_or_else(Collected::NotCollected, Collected::Present);
    state.vpcs = vpcs.map_or_else(Collected::NotCollected, Collected::Present);
    state.instances = instances.map_or_else(Collected::NotCollected, Collected::Present);
    state.security_groups = groups.map_or_else(Collected::NotCollected, Collected::Present);
    state.load_balancer_interfaces = lb_enis.map_or_else(Collected::NotCollected, Collected::Present);
    state.target_group_attributes = tg_attributes.map_or_else(Collected::NotCollected, Collected::Present);
    state.load_balancer_attributes = match lb_attributes {
        Ok(Some(a)) => Collected::Present(a),
        Ok(None) => Collected::Absent,
        Err(e) => Collected::NotCollected(e),
    };
    state.cluster = cluster_state;

    // Phase 4: the entries of the managed prefix lists the rules and routes refer to.
    // Bounded: a VPC's rules rarely refer to more than a handful.
    const MAX_PREFIX_LISTS: usize = 20;
    let mut ids: Vec<String> = state.referenced_prefix_lists().into_iter().collect();
    for id in ids.split_off(ids.len().min(MAX_PREFIX_LISTS)) {
        let why = format!("more than {MAX_PREFIX_LISTS} prefix lists referenced; {id} not looked up");
        state.prefix_lists.insert(id, Collected::NotCollected(why));
    }
    let lookups = ids.iter().map(|id| {
        bounded(limits, "ec2:GetManagedPrefixListEntries", async move {
            let pages = aws
                .ec2
                .get_managed_prefix_list_entries()
                .prefix_list_id(id)
                .into_paginator()
                .send()
                .try_collect()
                .await
                .map_err(|e| sdk_error("ec2:GetManagedPrefixListEntries", &e))?;
            Ok(pages
                .iter()
                .flat_map(|p| p.entries())
                .filter_map(|e| e.cidr().map(str::to_string))
                .collect::<Vec<_>>())
        })
    });
    let found = futures::future::join_all(lookups).await;
    for (id, entries) in ids.into_iter().zip(found) {
        state
            .prefix_lists
            .insert(id, entries.map_or_else(Collected::NotCollected, Collected::Present));
    }
}

/// `InvalidInstanceID.NotFound: The instance IDs 'i-1, i-2' do not exist` -> [i-1, i-2].
fn ids_in_not_found(message: &str) -> Vec<String> {
    message
        .split('\'')
        .nth(1)
        .map(|ids| {
            ids.split(',')
                .map(str::trim)
                .filter(|id| id.starts_with("i-"))
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default()
}

/// DescribeInstances fails as a whole when one ID no longer exists: take the IDs the error
/// names out and ask again, or split the list in halves when it names none, so the rest is
/// still described and the missing instances are themselves evidence. Bounded: each retry
/// asks for strictly fewer IDs.
async fn describe_instances(aws: &AwsClients, ids: Vec<String>) -> Result<(Vec<m::Instance>, Vec<String>), String> {
    let mut found = Vec::new();
    let mut missing = Vec::new();
    let mut queue: Vec<Vec<String>> = vec![ids];
    while let Some(batch) = queue.pop() {
        if batch.is_empty() {
            continue;
        }
        let result = aws
            .ec2
            .describe_instances()
            .set_instance_ids(Some(batch.clone()))
            .into_paginator()
            .send()
            .try_collect()
            .await;
        match result {
            Ok(pages) => found.extend(
                pages
                    .iter()
                    .flat_map(|p| p.reservations())
                    .flat_map(|r| r.instances())
                    .map(instance),
            ),
            Err(e) if e.code() == Some("InvalidInstanceID.NotFound") => {
                let named: Vec<String> = ids_in_not_found(e.message().unwrap_or(""))
                    .into_iter()
                    .filter(|id| batch.contains(id))
                    .collect();
                if !named.is_empty() {
                    missing.extend(named.iter().cloned());
                    queue.push(batch.into_iter().filter(|id| !named.contains(id)).collect());
                } else if batch.len() == 1 {
                    missing.extend(batch);
                } else {
                    let mut left = batch;
                    let right = left.split_off(left.len() / 2);
                    queue.push(left);
                    queue.push(right);
                }
            }
            Err(e) => return Err(sdk_error("ec2:DescribeInstances", &e)),
        }
    }
    missing.sort();
    missing.dedup();
    Ok((found, missing))
}

pub async fn describe_cluster(aws: &AwsClients, name: &str, limits: &Limits) -> Collected<m::Cluster> {
    let result = bounded(limits, "eks:DescribeCluster", async {
        match aws.eks.describe_cluster().name(name).send().await {
            Ok(out) => Ok(out.cluster().map(cluster)),
            Err(e) if e.code() == Some("ResourceNotFoundException") => Ok(None),
            Err(e) => Err(sdk_error("eks:DescribeCluster", &e)),
        }
    })
    .await;
    match result {
        Ok(Some(c)) => Collected::Present(c),
        Ok(None) => Collected::Absent,
        Err(e) => Collected::NotCollected(e),
    }
}

fn load_balancer(l: &aws_sdk_elasticloadbalancingv2::types::LoadBalancer) -> m::LoadBalancer {
    m::LoadBalancer {
        load_balancer_arn: l.load_balancer_arn().unwrap_or_default().into(),
        load_balancer_name: l.load_balancer_name().unwrap_or_default().into(),
        dns_name: s(l.dns_name()),
        scheme: l.scheme().map(|v| v.as_str().to_string()),
        vpc_id: s(l.vpc_id()),
        kind: l.r#type().map(|v| v.as_str().to_string()),
        availability_zones: l
            .availability_zones()
            .iter()
            .map(|z| m::AvailabilityZone {
                zone_name: z.zone_name().unwrap_or_default().into(),
                subnet_id: s(z.subnet_id()),
            })
            .collect(),
        security_groups: l.security_groups().to_vec(),
    }
}

fn permission(p: &aws_sdk_ec2::types::IpPermission) -> m::IpPermission {
    m::IpPermission {
        ip_protocol: p.ip_protocol().unwrap_or("-1").into(),
        from_port: p.from_port(),
        to_port: p.to_port(),
        user_id_group_pairs: p
            .user_id_group_pairs()
            .iter()
            .map(|g| m::UserIdGroupPair {
                group_id: s(g.group_id()),
                user_id: s(g.user_id()),
                description: s(g.description()),
            })
            .collect(),
        ip_ranges: p
            .ip_ranges()
            .iter()
            .map(|r| m::IpRange {
                cidr_ip: r.cidr_ip().unwrap_or_default().into(),
                description: s(r.description()),
            })
            .collect(),
        ipv6_ranges: p
            .ipv6_ranges()
            .iter()
            .map(|r| m::Ipv6Range {
                cidr_ipv6: r.cidr_ipv6().unwrap_or_default().into(),
                description: s(r.description()),
            })
            .collect(),
        prefix_list_ids: p
            .prefix_list_ids()
            .iter()
            .map(|r| m::PrefixListId {
                prefix_list_id: r.prefix_list_id().unwrap_or_default().into(),
            })
            .collect(),
    }
}

fn security_group(g: &aws_sdk_ec2::types::SecurityGroup) -> m::SecurityGroup {
    m::SecurityGroup {
        group_id: g.group_id().unwrap_or_default().into(),
        group_name: g.group_name().unwrap_or_default().into(),
        vpc_id: s(g.vpc_id()),
        ip_permissions: g.ip_permissions().iter().map(permission).collect(),
        ip_permissions_egress: g.ip_permissions_egress().iter().map(permission).collect(),
        tags: tags_of(g.tags()),
    }
}

fn network_acl(a: &aws_sdk_ec2::types::NetworkAcl) -> m::NetworkAcl {
    m::NetworkAcl {
        network_acl_id: a.network_acl_id().unwrap_or_default().into(),
        vpc_id: s(a.vpc_id()),
        is_default: a.is_default().unwrap_or(false),
        entries: a
            .entries()
            .iter()
            .map(|e| m::NetworkAclEntry {
                rule_number: e.rule_number().and_then(|n| u32::try_from(n).ok()).unwrap_or(32767),
                protocol: e.protocol().unwrap_or("-1").into(),
                rule_action: e.rule_action().map(|r| r.as_str().to_string()).unwrap_or_default(),
                egress: e.egress().unwrap_or(false),
                cidr_block: s(e.cidr_block()),
                ipv6_cidr_block: s(e.ipv6_cidr_block()),
                port_range: e.port_range().map(|r| m::PortRange {
                    from: r.from().unwrap_or(0),
                    to: r.to().unwrap_or(65535),
                }),
            })
            .collect(),
        associations: a
            .associations()
            .iter()
            .map(|x| m::NetworkAclAssociation {
                network_acl_id: s(x.network_acl_id()),
                subnet_id: s(x.subnet_id()),
            })
            .collect(),
    }
}

fn route_table(t: &aws_sdk_ec2::types::RouteTable) -> m::RouteTable {
    m::RouteTable {
        route_table_id: t.route_table_id().unwrap_or_default().into(),
        vpc_id: s(t.vpc_id()),
        routes: t
            .routes()
            .iter()
            .map(|r| m::Route {
                destination_cidr_block: s(r.destination_cidr_block()),
                destination_ipv6_cidr_block: s(r.destination_ipv6_cidr_block()),
                destination_prefix_list_id: s(r.destination_prefix_list_id()),
                gateway_id: s(r.gateway_id()),
                egress_only_internet_gateway_id: s(r.egress_only_internet_gateway_id()),
                local_gateway_id: s(r.local_gateway_id()),
                carrier_gateway_id: s(r.carrier_gateway_id()),
                core_network_arn: s(r.core_network_arn()),
                nat_gateway_id: s(r.nat_gateway_id()),
                network_interface_id: s(r.network_interface_id()),
                transit_gateway_id: s(r.transit_gateway_id()),
                vpc_peering_connection_id: s(r.vpc_peering_connection_id()),
                instance_id: s(r.instance_id()),
                state: r.state().map(|v| v.as_str().to_string()),
            })
            .collect(),
        associations: t
            .associations()
            .iter()
            .map(|a| m::RouteTableAssociation {
                main: a.main().unwrap_or(false),
                subnet_id: s(a.subnet_id()),
            })
            .collect(),
    }
}

fn subnet(x: &aws_sdk_ec2::types::Subnet) -> m::Subnet {
    m::Subnet {
        subnet_id: x.subnet_id().unwrap_or_default().into(),
        vpc_id: s(x.vpc_id()),
        cidr_block: s(x.cidr_block()),
        ipv6_cidr_block_association_set: x
            .ipv6_cidr_block_association_set()
            .iter()
            .map(|a| m::SubnetIpv6CidrBlockAssociation {
                ipv6_cidr_block: a.ipv6_cidr_block().unwrap_or_default().into(),
            })
            .collect(),
        availability_zone: s(x.availability_zone()),
        tags: tags_of(x.tags()),
    }
}

fn vpc_model(v: &aws_sdk_ec2::types::Vpc) -> m::Vpc {
    m::Vpc {
        vpc_id: v.vpc_id().unwrap_or_default().into(),
        cidr_block: s(v.cidr_block()),
        cidr_block_association_set: v
            .cidr_block_association_set()
            .iter()
            .map(|a| m::CidrBlockAssociation {
                cidr_block: a.cidr_block().unwrap_or_default().into(),
                cidr_block_state: a.cidr_block_state().map(|st| m::CidrBlockState {
                    state: st.state().map(|x| x.as_str().to_string()),
                }),
            })
            .collect(),
        ipv6_cidr_block_association_set: v
            .ipv6_cidr_block_association_set()
            .iter()
            .map(|a| m::VpcIpv6CidrBlockAssociation {
                ipv6_cidr_block: a.ipv6_cidr_block().unwrap_or_default().into(),
            })
            .collect(),
    }
}

fn instance(i: &aws_sdk_ec2::types::Instance) -> m::Instance {
    m::Instance {
        instance_id: i.instance_id().unwrap_or_default().into(),
        private_ip_address: s(i.private_ip_address()),
        private_dns_name: s(i.private_dns_name()),
        subnet_id: s(i.subnet_id()),
        vpc_id: s(i.vpc_id()),
        state: i.state().map(|st| m::InstanceState {
            code: st.code(),
            name: st.name().map(|n| n.as_str().to_string()).unwrap_or_default(),
        }),
        placement: i.placement().map(|p| m::Placement {
            availability_zone: s(p.availability_zone()),
        }),
        security_groups: i
            .security_groups()
            .iter()
            .map(|g| m::GroupIdentifier {
                group_id: g.group_id().unwrap_or_default().into(),
                group_name: s(g.group_name()),
            })
            .collect(),
        tags: tags_of(i.tags()),
    }
}

fn network_interface(n: &aws_sdk_ec2::types::NetworkInterface) -> m::NetworkInterface {
    m::NetworkInterface {
        network_interface_id: n.network_interface_id().unwrap_or_default().into(),
        subnet_id: s(n.subnet_id()),
        vpc_id: s(n.vpc_id()),
        availability_zone: s(n.availability_zone()),
        description: s(n.description()),
        interface_type: n.interface_type().map(|t| t.as_str().to_string()),
        private_ip_address: s(n.private_ip_address()),
        private_ip_addresses: n
            .private_ip_addresses()
            .iter()
            .map(|a| m::PrivateIpAddress {
                primary: a.primary().unwrap_or(false),
                private_ip_address: a.private_ip_address().unwrap_or_default().into(),
            })
            .collect(),
        ipv4_prefixes: n
            .ipv4_prefixes()
            .iter()
            .map(|p| m::Ipv4PrefixSpecification {
                ipv4_prefix: p.ipv4_prefix().unwrap_or_default().into(),
            })
            .collect(),
        ipv6_addresses: n
            .ipv6_addresses()
            .iter()
            .map(|a| m::InstanceIpv6Address {
                ipv6_address: a.ipv6_address().unwrap_or_default().into(),
            })
            .collect(),
        ipv6_prefixes: n
            .ipv6_prefixes()
            .iter()
            .map(|p| m::Ipv6PrefixSpecification {
                ipv6_prefix: p.ipv6_prefix().unwrap_or_default().into(),
            })
            .collect(),
        groups: n
            .groups()
            .iter()
            .map(|g| m::GroupIdentifier {
                group_id: g.group_id().unwrap_or_default().into(),
                group_name: s(g.group_name()),
            })
            .collect(),
        attachment: n.attachment().map(|a| m::NetworkInterfaceAttachment {
            instance_id: s(a.instance_id()),
            device_index: a.device_index(),
        }),
        tag_set: tags_of(n.tag_set()),
    }
}

fn cluster(c: &aws_sdk_eks::types::Cluster) -> m::Cluster {
    m::Cluster {
        name: c.name().unwrap_or_default().into(),
        arn: s(c.arn()),
        version: s(c.version()),
        endpoint: s(c.endpoint()),
        status: c.status().map(|v| v.as_str().to_string()),
        resources_vpc_config: c.resources_vpc_config().map(|v| m::ClusterVpcConfig {
            subnet_ids: v.subnet_ids().to_vec(),
            security_group_ids: v.security_group_ids().to_vec(),
            cluster_security_group_id: s(v.cluster_security_group_id()),
            vpc_id: s(v.vpc_id()),
        }),
        kubernetes_network_config: c.kubernetes_network_config().map(|k| m::KubernetesNetworkConfig {
            ip_family: k.ip_family().map(|f| f.as_str().to_string()),
            service_ipv4_cidr: s(k.service_ipv4_cidr()),
            service_ipv6_cidr: s(k.service_ipv6_cidr()),
        }),
        certificate_authority: c
            .certificate_authority()
            .map(|a| m::CertificateAuthority { data: s(a.data()) }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn not_found_errors_name_the_missing_instances() {
        assert_eq!(
            ids_in_not_found("The instance ID 'i-0a1b2c3d4e5f6a002' does not exist"),
            ["i-0a1b2c3d4e5f6a002"]
        );
        assert_eq!(
            ids_in_not_found("The instance IDs 'i-1, i-2' do not exist"),
            ["i-1", "i-2"]
        );
        assert!(ids_in_not_found("Request limit exceeded").is_empty());
    }
}
