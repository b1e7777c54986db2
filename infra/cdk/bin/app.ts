#!/usr/bin/env node
// eks-lb-doctor CDK app. Context values (cdk.json or -c key=value) replace the SAM parameters:
//   clusterNames (required, comma-separated), allowedClusters, allowedNamespaces,
//   slackWebhookSecretArn, fixMode (off|dry-run|auto), notifyOnRecovery (true|false),
//   healthCheckReplay (true|false; only with subnetIds / securityGroupIds),
//   alarmNamePrefix, subnetIds, securityGroupIds (comma-separated), reservedConcurrency,
//   logRetentionDays, stackName, skipBundling (see below), skipBuild (true = plain Function
//   with placeholder S3 code instead of RustFunction; fallback, synth only).
//
// Offline synth without building the Rust function: -c skipBundling=true. It sets the CDK
// context aws:cdk:bundling-stacks=[] on the app, so asset bundling (cargo-lambda-cdk's
// `cargo lambda build`) is skipped and the asset points at the unbuilt source directory. The
// CDK CLI refuses `-c aws:...` keys and always passes bundling-stacks=["**"] for synth/deploy,
// hence this flag. Never deploy an assembly synthesized with it. See ./check.
import { App, Validations } from 'aws-cdk-lib';
import * as cxapi from 'aws-cdk-lib/cx-api';
import { AwsSolutionsChecks } from 'cdk-nag';
import { EksLbDoctorStack, FixMode } from '../lib/eks-lb-doctor-stack';

const app = new App();

function ctx(name: string, fallback = ''): string {
  const value = app.node.tryGetContext(name);
  return value === undefined || value === null ? fallback : String(value).trim();
}
function list(name: string): string[] {
  const value = app.node.tryGetContext(name);
  const items = Array.isArray(value) ? value.map(String) : ctx(name).split(',');
  return items.map((s) => s.trim()).filter((s) => s !== '');
}
function oneOf<T extends string>(name: string, allowed: readonly T[], fallback: T): T {
  const value = ctx(name, fallback);
  if (!(allowed as readonly string[]).includes(value)) {
    throw new Error(`context ${name}=${value}: expected one of ${allowed.join(', ')}`);
  }
  return value as T;
}
if (ctx('skipBundling', 'false') === 'true') {
  app.node.setContext(cxapi.BUNDLING_STACKS, []);
}

const RETENTION_DAYS = [1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653];
const retention = Number(ctx('logRetentionDays', '30'));
if (!RETENTION_DAYS.includes(retention)) throw new Error(`context logRetentionDays=${retention} is not allowed`);
const reserved = Number(ctx('reservedConcurrency', '2'));
if (!Number.isInteger(reserved) || reserved < 1) throw new Error(`context reservedConcurrency=${reserved}: integer >= 1`);

new EksLbDoctorStack(app, ctx('stackName', 'eks-lb-doctor'), {
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
  description:
    'eks-lb-doctor: a CloudWatch UnHealthyHostCount alarm on an ALB / NLB target group in front of EKS runs the diagnose Lambda, which reports the root cause to an encrypted SNS topic (and Slack).',
  clusterNames: list('clusterNames'),
  allowedClusters: ctx('allowedClusters'),
  allowedNamespaces: ctx('allowedNamespaces'),
  slackWebhookSecretArn: ctx('slackWebhookSecretArn'),
  fixMode: oneOf<FixMode>('fixMode', ['off', 'dry-run', 'auto'], 'off'),
  notifyOnRecovery: oneOf('notifyOnRecovery', ['true', 'false'], 'false') === 'true',
  healthCheckReplay: oneOf('healthCheckReplay', ['true', 'false'], 'false') === 'true',
  alarmNamePrefix: ctx('alarmNamePrefix'),
  subnetIds: list('subnetIds'),
  securityGroupIds: list('securityGroupIds'),
  reservedConcurrency: reserved,
  logRetentionDays: retention,
  skipBuild: ctx('skipBuild', 'false') === 'true',
});

// cdk-nag 3 (3.0.2) runs as a CDK policy-validation plugin: any unacknowledged finding fails synth.
Validations.of(app).addPlugins(new AwsSolutionsChecks(app));
