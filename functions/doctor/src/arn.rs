//! Elastic Load Balancing ARNs: parsed once, so checks and renderers never split strings.

use std::fmt;

use crate::error::{Error, Result};

/// `arn:<partition>:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>`
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TargetGroupArn {
    pub partition: String,
    pub region: String,
    pub account: String,
    pub name: String,
    pub id: String,
}

impl TargetGroupArn {
    pub fn parse(arn: &str) -> Result<Self> {
        let invalid = |reason| Error::InvalidArn {
            arn: arn.to_string(),
            reason,
        };
        let mut parts = arn.splitn(6, ':');
        let (Some("arn"), Some(partition), Some(service), Some(region), Some(account), Some(resource)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(invalid(
                "expected arn:<partition>:elasticloadbalancing:<region>:<account>:targetgroup/<name>/<id>",
            ));
        };
        if !matches!(
            partition,
            "aws" | "aws-cn" | "aws-us-gov" | "aws-iso" | "aws-iso-b" | "aws-iso-e" | "aws-iso-f" | "aws-eusc"
        ) {
            return Err(invalid("unknown partition"));
        }
        if service != "elasticloadbalancing" {
            return Err(invalid("service is not elasticloadbalancing"));
        }
        if region.is_empty()
            || !region
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err(invalid("region is not valid"));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(invalid("account is not 12 digits"));
        }
        let mut res = resource.split('/');
        let (Some("targetgroup"), Some(name), Some(id), None) = (res.next(), res.next(), res.next(), res.next()) else {
            return Err(invalid("resource is not targetgroup/<name>/<id>"));
        };
        let name_ok =
            !name.is_empty() && name.len() <= 32 && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !name_ok {
            return Err(invalid("target group name is not 1-32 letters, digits or hyphens"));
        }
        if id.is_empty() || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(invalid("target group id is not hexadecimal"));
        }
        Ok(Self {
            partition: partition.into(),
            region: region.into(),
            account: account.into(),
            name: name.into(),
            id: id.into(),
        })
    }
}

impl fmt::Display for TargetGroupArn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "arn:{}:elasticloadbalancing:{}:{}:targetgroup/{}/{}",
            self.partition, self.region, self.account, self.name, self.id
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_round_trips_every_partition() {
        for partition in ["aws", "aws-cn", "aws-us-gov"] {
            let s = format!("arn:{partition}:elasticloadbalancing:us-east-1:123456789012:targetgroup/k8s-default-web-6b1c1d4f2e/73e2d6bc24d8a067");
            let arn = TargetGroupArn::parse(&s).unwrap();
            assert_eq!(arn.partition, partition);
            assert_eq!(arn.name, "k8s-default-web-6b1c1d4f2e");
            assert_eq!(arn.id, "73e2d6bc24d8a067");
            assert_eq!(arn.to_string(), s);
        }
    }

    #[test]
    fn rejects_garbage_with_a_reason() {
        for bad in [
            "",
            "not-an-arn",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/x/123",
            "arn:aws:ec2:us-east-1:123456789012:targetgroup/x/123",
            "arn:mars:elasticloadbalancing:us-east-1:123456789012:targetgroup/x/123",
            "arn:aws:elasticloadbalancing:us-east-1:12345:targetgroup/x/123",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/x/zz",
            "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/x/12/extra",
        ] {
            let err = TargetGroupArn::parse(bad).unwrap_err();
            assert!(matches!(err, Error::InvalidArn { .. }), "{bad}: {err}");
        }
    }
}
