//! EKS authentication the way `aws eks get-token` does it: a presigned STS
//! `GetCallerIdentity` URL with the `x-k8s-aws-id` header (the cluster name) signed in,
//! `X-Amz-Expires=60`, base64url without padding, prefixed `k8s-aws-v1.`. The cluster's
//! endpoint and CA come from `eks:DescribeCluster`. Clients are cached per cluster and
//! rebuilt before the token's 15-minute lifetime ends. Tokens never reach a log line.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SignatureLocation, SigningSettings};
use aws_sigv4::sign::v4;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use secrecy::SecretString;
use tokio::sync::Mutex;
use tokio::time::Instant;

use super::aws::AwsClients;
use super::{bounded, Limits};
use crate::snapshot::Collected;

/// EKS accepts a token for 15 minutes; rebuild well before that.
const CLIENT_LIFETIME: Duration = Duration::from_secs(10 * 60);
const TOKEN_PREFIX: &str = "k8s-aws-v1.";

/// The STS endpoint for presigning: `AWS_ENDPOINT_URL_STS`, else the shared
/// `AWS_ENDPOINT_URL` override, else the regional endpoint of the partition.
pub fn sts_endpoint(aws: &AwsClients, region: &str) -> String {
    if let Ok(url) = std::env::var("AWS_ENDPOINT_URL_STS") {
        return url.trim_end_matches('/').to_string();
    }
    if let Some(url) = aws.config.endpoint_url() {
        return url.trim_end_matches('/').to_string();
    }
    let suffix = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("https://sts.{region}.{suffix}")
}

/// Makes the bearer token for `cluster`.
pub async fn token(aws: &AwsClients, cluster: &str, region: &str, now: SystemTime) -> Result<String, String> {
    let provider = aws
        .config
        .credentials_provider()
        .ok_or_else(|| "no AWS credentials provider configured".to_string())?;
    let credentials = provider
        .provide_credentials()
        .await
        .map_err(|e| format!("cannot load AWS credentials: {e}"))?;
    presign(&credentials, &sts_endpoint(aws, region), cluster, region, now)
}

/// The presigning itself, separated for tests.
pub fn presign(
    credentials: &aws_credential_types::Credentials,
    sts_endpoint: &str,
    cluster: &str,
    region: &str,
    now: SystemTime,
) -> Result<String, String> {
    let identity = credentials.clone().into();
    let mut settings = SigningSettings::default();
    settings.signature_location = SignatureLocation::QueryParams;
    settings.expires_in = Some(Duration::from_secs(60));
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(now)
        .settings(settings)
        .build()
        .map_err(|e| format!("cannot build signing parameters: {e}"))?
        .into();
    let url = format!("{sts_endpoint}/?Action=GetCallerIdentity&Version=2011-06-15");
    let headers = [("x-k8s-aws-id", cluster)];
    let signable = SignableRequest::new("GET", &url, headers.into_iter(), SignableBody::Bytes(&[]))
        .map_err(|e| format!("cannot sign the STS request: {e}"))?;
    let (instructions, _signature) = sign(signable, &params)
        .map_err(|e| format!("cannot sign the STS request: {e}"))?
        .into_parts();
    let mut request = http::Request::builder()
        .method("GET")
        .uri(&url)
        .body(())
        .map_err(|e| format!("bad STS URL {url}: {e}"))?;
    instructions.apply_to_request_http1x(&mut request);
    Ok(format!(
        "{TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(request.uri().to_string())
    ))
}

/// DER certificates from the base64 PEM bundle EKS returns as `certificateAuthority.data`.
pub fn ca_certificates(data: &str) -> Result<Vec<Vec<u8>>, String> {
    let pem = STANDARD
        .decode(data.trim())
        .map_err(|e| format!("certificate authority data is not base64: {e}"))?;
    let pem = String::from_utf8(pem).map_err(|_| "certificate authority data is not PEM text".to_string())?;
    let mut out = Vec::new();
    let mut body: Option<String> = None;
    for line in pem.lines().map(str::trim) {
        if line.starts_with("-----BEGIN CERTIFICATE") {
            body = Some(String::new());
        } else if line.starts_with("-----END CERTIFICATE") {
            let b64 = body.take().unwrap_or_default();
            out.push(
                STANDARD
                    .decode(b64)
                    .map_err(|e| format!("certificate is not base64: {e}"))?,
            );
        } else if let Some(b) = body.as_mut() {
            b.push_str(line);
        }
    }
    if out.is_empty() {
        return Err("certificate authority data holds no certificate".into());
    }
    Ok(out)
}

/// Kubernetes clients per cluster, built once and reused across warm invocations.
#[derive(Default)]
pub struct ClusterClients {
    cache: Mutex<HashMap<String, (kube::Client, Instant)>>,
}

impl ClusterClients {
    pub fn new() -> Self {
        Self::default()
    }

    /// A client for `cluster`, authenticated with a fresh token when the cached one is old.
    /// `described` is the cluster's `eks:DescribeCluster` answer, gathered once for the Snapshot.
    pub async fn client_for(
        &self,
        aws: &AwsClients,
        cluster: &str,
        described: &Collected<crate::aws::Cluster>,
        limits: &Limits,
    ) -> Result<kube::Client, String> {
        let mut cache = self.cache.lock().await;
        if let Some((client, built)) = cache.get(cluster) {
            if built.elapsed() < CLIENT_LIFETIME {
                return Ok(client.clone());
            }
        }
        let described = match described {
            Collected::Present(c) => c.clone(),
            Collected::Absent => return Err(format!("EKS cluster {cluster} not found")),
            Collected::NotCollected(why) => return Err(why.clone()),
        };
        let endpoint = described
            .endpoint
            .ok_or_else(|| format!("EKS cluster {cluster} has no endpoint yet"))?;
        let ca = described
            .certificate_authority
            .and_then(|c| c.data)
            .ok_or_else(|| format!("EKS cluster {cluster} has no certificate authority"))?;
        let region = aws
            .config
            .region()
            .map(|r| r.to_string())
            .unwrap_or_else(|| "us-east-1".into());
        let token = bounded(limits, "sts presign", token(aws, cluster, &region, SystemTime::now())).await?;
        let client = build_client(&endpoint, &ca, token, limits)?;
        tracing::info!(cluster, endpoint = %endpoint, "authenticated to EKS");
        cache.insert(cluster.to_string(), (client.clone(), Instant::now()));
        Ok(client)
    }
}

pub fn build_client(endpoint: &str, ca_data: &str, token: String, limits: &Limits) -> Result<kube::Client, String> {
    let uri: http::Uri = endpoint
        .parse()
        .map_err(|e| format!("bad cluster endpoint {endpoint}: {e}"))?;
    let mut config = kube::Config::new(uri);
    config.root_cert = Some(ca_certificates(ca_data)?);
    config.auth_info.token = Some(SecretString::from(token));
    config.connect_timeout = Some(Duration::from_secs(5));
    config.read_timeout = Some(limits.call_timeout);
    kube::Client::try_from(config).map_err(|e| format!("cannot build the Kubernetes client: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_is_a_presigned_get_caller_identity_url() {
        let creds = aws_credential_types::Credentials::new("AKIDEXAMPLE", "secret", None, None, "test");
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_764_000_000);
        let token = presign(
            &creds,
            "https://sts.us-east-1.amazonaws.com",
            "demo-cluster",
            "us-east-1",
            now,
        )
        .unwrap();
        let encoded = token.strip_prefix("k8s-aws-v1.").expect("prefix");
        assert!(!encoded.contains('=') && !encoded.contains('+') && !encoded.contains('/'));
        let url = String::from_utf8(URL_SAFE_NO_PAD.decode(encoded).unwrap()).unwrap();
        assert!(
            url.starts_with("https://sts.us-east-1.amazonaws.com/?Action=GetCallerIdentity&Version=2011-06-15&"),
            "{url}"
        );
        for part in [
            "X-Amz-Algorithm=AWS4-HMAC-SHA256",
            "X-Amz-Expires=60",
            "X-Amz-SignedHeaders=host%3Bx-k8s-aws-id",
            "X-Amz-Credential=AKIDEXAMPLE%2F",
            "X-Amz-Signature=",
        ] {
            assert!(url.contains(part), "{part} not in {url}");
        }
        // Deterministic for the same inputs; different for another cluster.
        assert_eq!(
            token,
            presign(
                &creds,
                "https://sts.us-east-1.amazonaws.com",
                "demo-cluster",
                "us-east-1",
                now
            )
            .unwrap()
        );
        assert_ne!(
            token,
            presign(&creds, "https://sts.us-east-1.amazonaws.com", "other", "us-east-1", now).unwrap()
        );
    }

    #[test]
    fn ca_data_decodes_to_der() {
        let der = b"\x30\x82\x01\x0a-not-really-der";
        let pem = format!(
            "-----BEGIN CERTIFICATE-----\n{}\n-----END CERTIFICATE-----\n",
            STANDARD.encode(der)
        );
        assert_eq!(ca_certificates(&STANDARD.encode(pem)).unwrap(), vec![der.to_vec()]);
        assert!(ca_certificates("not base64!").is_err());
        assert!(ca_certificates(&STANDARD.encode("no certificate here")).is_err());
    }
}
