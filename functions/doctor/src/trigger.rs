//! Trigger parsing: what invoked the diagnosis. Accepts the EventBridge "CloudWatch Alarm
//! State Change" event (metric alarms, metric-math alarms, composite alarms), the classic
//! SNS-delivered alarm notification, and a direct `{"targetGroupArn": "..."}`. Every other
//! shape is a clear error with a stable error type; nothing here does I/O (composite alarms
//! name their children, which the caller resolves with CloudWatch `DescribeAlarms`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::arn::TargetGroupArn;

const ELB_NAMESPACES: &[&str] = &["AWS/ApplicationELB", "AWS/NetworkELB"];
const METRIC: &str = "UnHealthyHostCount";

/// The alarm behind a trigger, as reported.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Alarm {
    pub name: String,
    pub arn: Option<String>,
    pub account: String,
    pub region: String,
    pub partition: String,
    /// `ALARM`, `OK` or `INSUFFICIENT_DATA`.
    pub state: String,
    pub reason: Option<String>,
    pub time: Option<String>,
    /// `eventbridge`, `sns` or `direct`.
    pub source: &'static str,
}

impl Alarm {
    /// When the alarm changed state, if its time parses (`2026-11-27T03:01:12.345+0000` as
    /// CloudWatch writes it, or RFC 3339).
    pub fn state_changed_at(&self) -> Option<k8s_openapi::jiff::Timestamp> {
        let text = self.time.as_deref()?.trim();
        if let Ok(t) = text.parse() {
            return Some(t);
        }
        // `+0000` -> `+00:00`
        let (head, offset) = text.split_at(text.len().checked_sub(5)?);
        let colon = format!("{head}{}:{}", offset.get(..3)?, offset.get(3..)?);
        colon.parse().ok()
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Trigger {
    /// Run the diagnosis for this target group.
    Diagnose {
        target_group: TargetGroupArn,
        cluster: Option<String>,
        alarm: Option<Alarm>,
    },
    /// The alarm went back to OK.
    Recovered {
        target_group: Option<TargetGroupArn>,
        alarm: Alarm,
    },
    /// A composite alarm: resolve these child alarms (ARNs) to their target groups.
    Composite { alarm: Alarm, children: Vec<String> },
    /// Acknowledged and not acted on, with why.
    Skip { reason: String, alarm: Option<Alarm> },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum TriggerError {
    #[error("malformed event: {0}")]
    Malformed(String),
    #[error("unsupported event: {0}")]
    Unsupported(String),
    #[error(transparent)]
    InvalidArn(#[from] InvalidArnError),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct InvalidArnError(pub String);

impl TriggerError {
    /// Stable error types, for the Lambda response's `errorType`.
    pub fn error_type(&self) -> &'static str {
        match self {
            TriggerError::Malformed(_) => "MalformedEvent",
            TriggerError::Unsupported(_) => "UnsupportedEvent",
            TriggerError::InvalidArn(_) => "InvalidTargetGroupArn",
        }
    }
}

fn malformed(what: impl Into<String>) -> TriggerError {
    TriggerError::Malformed(what.into())
}

/// `arn:aws-cn:cloudwatch:cn-north-1:123456789012:alarm:x` -> (partition, region, account).
fn arn_parts(arn: &str) -> Option<(&str, &str, &str)> {
    let mut p = arn.split(':');
    match (p.next(), p.next(), p.next(), p.next(), p.next()) {
        (Some("arn"), Some(partition), Some(_service), Some(region), Some(account)) => {
            Some((partition, region, account))
        }
        _ => None,
    }
}

/// The target group ARN from a `TargetGroup` dimension value (`targetgroup/<name>/<id>`).
pub fn target_group_from_dimension(
    value: &str,
    partition: &str,
    region: &str,
    account: &str,
) -> Result<TargetGroupArn, InvalidArnError> {
    let arn = format!("arn:{partition}:elasticloadbalancing:{region}:{account}:{value}");
    TargetGroupArn::parse(&arn).map_err(|e| InvalidArnError(e.to_string()))
}

/// One metric of an alarm: namespace, name and dimensions.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricRef {
    pub namespace: String,
    pub name: String,
    pub dimensions: Vec<(String, String)>,
}

impl MetricRef {
    fn target_group(&self) -> Option<&str> {
        self.dimensions
            .iter()
            .find(|(k, _)| k == "TargetGroup")
            .map(|(_, v)| v.as_str())
    }
    fn is_unhealthy_host_count(&self) -> bool {
        ELB_NAMESPACES.contains(&self.namespace.as_str()) && self.name == METRIC
    }
}

/// Picks the target group an alarm is about. A single-metric alarm must be an ELB
/// `UnHealthyHostCount`; a metric-math alarm qualifies by any element with a TargetGroup
/// dimension. `Ok(None)`: the alarm is about something else (skip it).
pub fn target_group_of(metrics: &[MetricRef], alarm: &Alarm) -> Result<Option<TargetGroupArn>, InvalidArnError> {
    let chosen = if metrics.len() == 1 {
        metrics
            .iter()
            .find(|m| m.is_unhealthy_host_count())
            .and_then(MetricRef::target_group)
    } else {
        metrics
            .iter()
            .find(|m| m.is_unhealthy_host_count() && m.target_group().is_some())
            .or_else(|| metrics.iter().find(|m| m.target_group().is_some()))
            .and_then(MetricRef::target_group)
    };
    chosen
        .map(|tg| target_group_from_dimension(tg, &alarm.partition, &alarm.region, &alarm.account))
        .transpose()
}

fn by_state(alarm: Alarm, target_group: Option<TargetGroupArn>) -> Trigger {
    match (alarm.state.as_str(), target_group) {
        ("ALARM", Some(tg)) => Trigger::Diagnose {
            target_group: tg,
            cluster: None,
            alarm: Some(alarm),
        },
        ("OK", tg) => Trigger::Recovered {
            target_group: tg,
            alarm,
        },
        (_, None) => Trigger::Skip {
            reason: format!(
                "alarm {} is not on an ELB {METRIC} metric with a TargetGroup dimension",
                alarm.name
            ),
            alarm: Some(alarm),
        },
        (state, Some(_)) => Trigger::Skip {
            reason: format!("alarm {} is in state {state}: nothing to diagnose", alarm.name),
            alarm: Some(alarm),
        },
    }
}

/// Parses any accepted event shape.
pub fn parse(event: &Value) -> Result<Trigger, TriggerError> {
    let Some(obj) = event.as_object() else {
        return Err(malformed("the event is not a JSON object"));
    };
    if let Some(arn) = obj.get("targetGroupArn") {
        let arn = arn
            .as_str()
            .ok_or_else(|| malformed("targetGroupArn is not a string"))?;
        let target_group = TargetGroupArn::parse(arn).map_err(|e| InvalidArnError(e.to_string()))?;
        let cluster = obj.get("clusterName").and_then(Value::as_str).map(str::to_string);
        return Ok(Trigger::Diagnose {
            target_group,
            cluster,
            alarm: None,
        });
    }
    if obj.contains_key("detail-type") {
        return parse_eventbridge(event);
    }
    if obj.contains_key("Records") {
        return parse_sns(event);
    }
    Err(TriggerError::Unsupported(
        "expected an EventBridge \"CloudWatch Alarm State Change\" event, an SNS alarm notification, or {\"targetGroupArn\": \"...\"}".into(),
    ))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmDetail {
    alarm_name: String,
    state: AlarmState,
    #[serde(default)]
    configuration: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlarmState {
    value: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    reason_data: Option<String>,
    #[serde(default)]
    timestamp: Option<String>,
}

fn parse_eventbridge(event: &Value) -> Result<Trigger, TriggerError> {
    let envelope: aws_lambda_events::event::cloudwatch_events::CloudWatchEvent<Value> =
        serde_json::from_value(event.clone()).map_err(|e| malformed(format!("EventBridge envelope: {e}")))?;
    let detail_type = envelope.detail_type.as_deref().unwrap_or("");
    if envelope.source.as_deref() != Some("aws.cloudwatch") || detail_type != "CloudWatch Alarm State Change" {
        return Err(TriggerError::Unsupported(format!(
            "EventBridge event {detail_type:?} from {:?}: only \"CloudWatch Alarm State Change\" from aws.cloudwatch is handled",
            envelope.source.as_deref().unwrap_or("")
        )));
    }
    let detail: AlarmDetail = serde_json::from_value(envelope.detail.clone().unwrap_or(Value::Null))
        .map_err(|e| malformed(format!("alarm detail: {e}")))?;
    let alarm_arn = envelope.resources.first().cloned();
    let (partition, region, account) = match alarm_arn.as_deref().and_then(arn_parts) {
        Some((p, r, a)) => (p.to_string(), r.to_string(), a.to_string()),
        None => (
            "aws".to_string(),
            envelope.region.clone().ok_or_else(|| malformed("no region"))?,
            envelope.account_id.clone().ok_or_else(|| malformed("no account"))?,
        ),
    };
    let alarm = Alarm {
        name: detail.alarm_name.clone(),
        arn: alarm_arn,
        account,
        region,
        partition,
        state: detail.state.value.clone(),
        reason: detail.state.reason.clone(),
        time: detail
            .state
            .timestamp
            .clone()
            .or_else(|| Some(envelope.time.to_rfc3339())),
        source: "eventbridge",
    };
    if detail.configuration.get("alarmRule").is_some() {
        match alarm.state.as_str() {
            "ALARM" => {}
            "OK" => {
                return Ok(Trigger::Recovered {
                    target_group: None,
                    alarm,
                })
            }
            state => {
                return Ok(Trigger::Skip {
                    reason: format!("alarm {} is in state {state}: nothing to diagnose", alarm.name),
                    alarm: Some(alarm),
                })
            }
        }
        let reason_data: Value = detail
            .state
            .reason_data
            .as_deref()
            .map(serde_json::from_str)
            .transpose()
            .map_err(|e| malformed(format!("composite alarm reasonData is not JSON: {e}")))?
            .unwrap_or(Value::Null);
        let children: Vec<String> = reason_data["triggeringAlarms"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["arn"].as_str().map(str::to_string))
            .collect();
        if children.is_empty() {
            return Ok(Trigger::Skip {
                reason: format!("composite alarm {} names no triggering alarms", alarm.name),
                alarm: Some(alarm),
            });
        }
        return Ok(Trigger::Composite { alarm, children });
    }
    let metrics: Vec<MetricRef> = detail.configuration["metrics"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|m| {
            let metric = m.get("metricStat")?.get("metric")?;
            Some(MetricRef {
                namespace: metric["namespace"].as_str().unwrap_or_default().to_string(),
                name: metric["name"].as_str().unwrap_or_default().to_string(),
                dimensions: metric["dimensions"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_string())))
                    .collect(),
            })
        })
        .collect();
    let tg = target_group_of(&metrics, &alarm)?;
    Ok(by_state(alarm, tg))
}

fn parse_sns(event: &Value) -> Result<Trigger, TriggerError> {
    let sns: aws_lambda_events::event::sns::SnsEvent =
        serde_json::from_value(event.clone()).map_err(|e| malformed(format!("SNS event: {e}")))?;
    let record = sns
        .records
        .first()
        .ok_or_else(|| malformed("SNS event without records"))?;
    let message: Value = serde_json::from_str(&record.sns.message).map_err(|_| {
        TriggerError::Unsupported("the SNS message is not a CloudWatch alarm notification (not JSON)".into())
    })?;
    let name = message["AlarmName"].as_str().ok_or_else(|| {
        TriggerError::Unsupported("the SNS message is not a CloudWatch alarm notification (no AlarmName)".into())
    })?;
    let arn = message["AlarmArn"].as_str().map(str::to_string);
    let (partition, region, account) = arn
        .as_deref()
        .and_then(arn_parts)
        .map(|(p, r, a)| (p.to_string(), r.to_string(), a.to_string()))
        .ok_or_else(|| malformed("the alarm notification has no valid AlarmArn"))?;
    let alarm = Alarm {
        name: name.to_string(),
        arn,
        account,
        region,
        partition,
        state: message["NewStateValue"].as_str().unwrap_or_default().to_string(),
        reason: message["NewStateReason"].as_str().map(str::to_string),
        time: message["StateChangeTime"].as_str().map(str::to_string),
        source: "sns",
    };
    let trigger = &message["Trigger"];
    let dims = |d: &Value| -> Vec<(String, String)> {
        d.as_array()
            .into_iter()
            .flatten()
            .filter_map(|x| Some((x["name"].as_str()?.to_string(), x["value"].as_str()?.to_string())))
            .collect()
    };
    let mut metrics = Vec::new();
    if trigger.get("MetricName").is_some() {
        metrics.push(MetricRef {
            namespace: trigger["Namespace"].as_str().unwrap_or_default().into(),
            name: trigger["MetricName"].as_str().unwrap_or_default().into(),
            dimensions: dims(&trigger["Dimensions"]),
        });
    }
    for m in trigger["Metrics"].as_array().into_iter().flatten() {
        let metric = &m["MetricStat"]["Metric"];
        if metric.is_object() {
            metrics.push(MetricRef {
                namespace: metric["Namespace"].as_str().unwrap_or_default().into(),
                name: metric["MetricName"].as_str().unwrap_or_default().into(),
                dimensions: dims(&metric["Dimensions"]),
            });
        }
    }
    let tg = target_group_of(&metrics, &alarm)?;
    Ok(by_state(alarm, tg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alarm_times_parse_as_cloudwatch_writes_them() {
        let alarm = |t: &str| Alarm {
            name: "a".into(),
            arn: None,
            account: "1".into(),
            region: "us-east-1".into(),
            partition: "aws".into(),
            state: "ALARM".into(),
            reason: None,
            time: Some(t.into()),
            source: "direct",
        };
        let want: k8s_openapi::jiff::Timestamp = "2026-11-27T03:01:12.345Z".parse().unwrap();
        assert_eq!(alarm("2026-11-27T03:01:12.345+0000").state_changed_at(), Some(want));
        assert_eq!(alarm("2026-11-27T03:01:12.345Z").state_changed_at(), Some(want));
        assert_eq!(alarm("yesterday").state_changed_at(), None);
        assert_eq!(alarm("").state_changed_at(), None);
    }
    use std::path::Path;

    fn event(name: &str) -> Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events").join(name);
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    const TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/k8s-default-albinsta-6b1c1d4f2e/73e2d6bc24d8a067";
    const NLB_TG: &str = "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/k8s-default-echonlb-1a2b3c4d5e/0f1e2d3c4b5a6978";

    fn diagnosed(t: Trigger) -> String {
        match t {
            Trigger::Diagnose { target_group, .. } => target_group.to_string(),
            other => panic!("expected a diagnosis, got {other:?}"),
        }
    }

    #[test]
    fn accepted_shapes_name_the_target_group() {
        assert_eq!(
            diagnosed(parse(&event("example-eventbridge-alb-alarm.json")).unwrap()),
            TG
        );
        assert_eq!(
            diagnosed(parse(&event("example-eventbridge-nlb-alarm.json")).unwrap()),
            NLB_TG
        );
        assert_eq!(
            diagnosed(parse(&event("example-eventbridge-metric-math-alarm.json")).unwrap()),
            TG
        );
        assert_eq!(diagnosed(parse(&event("example-sns-alb-alarm.json")).unwrap()), TG);
        assert_eq!(
            diagnosed(parse(&event("example-direct-target-group.json")).unwrap()),
            TG
        );
        match parse(&event("example-eventbridge-composite-alarm.json")).unwrap() {
            Trigger::Composite { children, .. } => assert_eq!(children.len(), 1),
            other => panic!("{other:?}"),
        }
        match parse(&event("example-eventbridge-alb-ok.json")).unwrap() {
            Trigger::Recovered { target_group, .. } => assert_eq!(target_group.unwrap().to_string(), TG),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn rejected_shapes_say_why() {
        match parse(&event("example-eventbridge-other-metric.json")).unwrap() {
            Trigger::Skip { reason, .. } => assert!(reason.contains("not on an ELB UnHealthyHostCount"), "{reason}"),
            other => panic!("{other:?}"),
        }
        match parse(&event("example-eventbridge-insufficient-data.json")).unwrap() {
            Trigger::Skip { reason, .. } => assert!(reason.contains("INSUFFICIENT_DATA"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            parse(&event("example-malformed-event.json")).unwrap_err().error_type(),
            "UnsupportedEvent"
        );
        assert_eq!(
            parse(&Value::String("x".into())).unwrap_err().error_type(),
            "MalformedEvent"
        );
        assert_eq!(
            parse(&serde_json::json!({"targetGroupArn": "garbage"}))
                .unwrap_err()
                .error_type(),
            "InvalidTargetGroupArn"
        );
    }

    #[test]
    fn other_partitions_rebuild_their_arns() {
        let mut e = event("example-eventbridge-alb-alarm.json");
        e["resources"][0] = "arn:aws-cn:cloudwatch:cn-north-1:123456789012:alarm:tg-unhealthy".into();
        assert!(diagnosed(parse(&e).unwrap()).starts_with("arn:aws-cn:elasticloadbalancing:cn-north-1:"));
        e["resources"][0] = "arn:aws-us-gov:cloudwatch:us-gov-west-1:123456789012:alarm:tg-unhealthy".into();
        assert!(diagnosed(parse(&e).unwrap()).starts_with("arn:aws-us-gov:elasticloadbalancing:us-gov-west-1:"));
        e["resources"][0] = "arn:garbage:cloudwatch:x:123456789012:alarm:tg".into();
        assert_eq!(parse(&e).unwrap_err().error_type(), "InvalidTargetGroupArn");
    }
}
