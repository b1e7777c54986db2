// The CDK counterpart of infra/template.yaml (AWS SAM). Same resources, same least-privilege
// IAM statements; the SAM parameters are CDK context values (see bin/app.ts), so the SAM
// conditions (HasSlackSecret, HasVpcConfig, RemediateEnabled, ...) are resolved at synth time.
import * as path from 'node:path';
import { Aws, CfnOutput, CfnResource, Duration, RemovalPolicy, Stack, StackProps, Validations } from 'aws-cdk-lib';
import * as cloudwatch from 'aws-cdk-lib/aws-cloudwatch';
import * as cwActions from 'aws-cdk-lib/aws-cloudwatch-actions';
import * as eks from 'aws-cdk-lib/aws-eks';
import * as events from 'aws-cdk-lib/aws-events';
import * as targets from 'aws-cdk-lib/aws-events-targets';
import * as iam from 'aws-cdk-lib/aws-iam';
import * as kms from 'aws-cdk-lib/aws-kms';
import * as lambda from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import * as s3 from 'aws-cdk-lib/aws-s3';
import * as sns from 'aws-cdk-lib/aws-sns';
import * as sqs from 'aws-cdk-lib/aws-sqs';
import { RustFunction } from 'cargo-lambda-cdk';
import { Construct } from 'constructs';

export type FixMode = 'off' | 'dry-run' | 'auto';

export interface EksLbDoctorProps extends StackProps {
  /** EKS clusters the function may diagnose (SAM: ClusterNames). At least one. */
  readonly clusterNames: string[];
  /** ALLOWED_CLUSTERS; empty = clusterNames (SAM: AllowedClusters). */
  readonly allowedClusters?: string;
  /** ALLOWED_NAMESPACES: namespaces a fix may change (comma-separated; * = all; empty = none). */
  readonly allowedNamespaces?: string;
  /** Full ARN of the Slack webhook secret; empty = no Slack (SAM: SlackWebhookSecretArn). */
  readonly slackWebhookSecretArn?: string;
  readonly fixMode?: FixMode;
  readonly notifyOnRecovery?: boolean;
  /** Only alarms whose name starts with this prefix trigger the function; empty = all. */
  readonly alarmNamePrefix?: string;
  /** Both non-empty = the function runs in this VPC (SAM: HasVpcConfig). */
  readonly subnetIds?: string[];
  readonly securityGroupIds?: string[];
  readonly reservedConcurrency?: number;
  readonly logRetentionDays?: number;
  /** HEALTH_CHECK_REPLAY, only in a VPC (SAM: HealthCheckReplay). */
  readonly healthCheckReplay?: boolean;
  /** The repository's functions/ directory (each function's Cargo.toml is under it). */
  readonly functionsDir?: string;
  /**
   * Fallback for synth without cargo-lambda-cdk: a plain lambda.Function with placeholder
   * code (S3 object that does not exist) instead of the RustFunction. Not needed with
   * cargo-lambda-cdk 0.0.36 (skipBundling works); never deploy a stack synthesized with it.
   */
  readonly skipBuild?: boolean;
}

// Logical-ID-safe form of a cluster name (SAM's Fn::ForEach '&{Cluster}' drops the same chars).
const idOf = (name: string) => name.replace(/[^A-Za-z0-9]/g, '');

// Give the main resources the logical IDs they have in infra/template.yaml (easier diffing,
// and the IAM5 acknowledgements below can name them).
function pin(construct: Construct, logicalId: string): void {
  (construct.node.defaultChild as CfnResource).overrideLogicalId(logicalId);
}

export class EksLbDoctorStack extends Stack {
  constructor(scope: Construct, id: string, props: EksLbDoctorProps) {
    super(scope, id, props);
    if (props.clusterNames.length === 0) {
      throw new Error('context clusterNames is required (comma-separated EKS cluster names)');
    }
    const fixMode = props.fixMode ?? 'off';
    const remediateEnabled = fixMode !== 'off';
    const slackSecret = props.slackWebhookSecretArn ?? '';
    const subnetIds = props.subnetIds ?? [];
    const securityGroupIds = props.securityGroupIds ?? [];
    const hasVpcConfig = subnetIds.length > 0 && securityGroupIds.length > 0;
    const prefix = props.alarmNamePrefix ?? '';
    const account = Aws.ACCOUNT_ID;
    const region = Aws.REGION;
    const partition = Aws.PARTITION;

    // ------------------------------------------------------------ diagnose role
    const lambdaTrust = new iam.PrincipalWithConditions(new iam.ServicePrincipal('lambda.amazonaws.com'), {
      StringEquals: { 'aws:SourceAccount': account },
    });

    const logGroup = new logs.LogGroup(this, 'DiagnoseLogGroup', {
      logGroupName: `/aws/lambda/${Aws.STACK_NAME}-diagnose`,
      retention: (props.logRetentionDays ?? 30) as logs.RetentionDays,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    pin(logGroup, 'DiagnoseLogGroup');

    // Failed asynchronous invocations (after MaximumRetryAttempts) land here.
    const failedQueue = new sqs.Queue(this, 'FailedInvocationsQueue', {
      encryption: sqs.QueueEncryption.SQS_MANAGED,
      retentionPeriod: Duration.days(14),
      // Deny-only queue policy (aws:SecureTransport=false); Lambda writes over TLS.
      enforceSSL: true,
    });
    pin(failedQueue, 'FailedInvocationsQueue');

    // Least privilege; test_cdk_least_privilege.py enforces that everything here is a read
    // action except the few writes infra/test_least_privilege.py lists, and that no write has
    // Resource "*". Explicit statements only: the role handed to the function below is
    // immutable, so no CDK grant helper can add statements (or managed policies) to it.
    // The statements both roles need: their own log group, the gathering reads, the Slack
    // secret, and Lambda's VPC ENIs when in a VPC.
    const commonStatements = (ownLogGroup: logs.LogGroup): iam.PolicyStatement[] => [
      // AWSLambdaBasicExecutionRole, written out for this function's own log group.
      new iam.PolicyStatement({
        sid: 'OwnLogGroup',
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [`arn:${partition}:logs:${region}:${account}:log-group:${ownLogGroup.logGroupName}:*`],
      }),
      // These Describe* actions support no resource-level permissions: Resource "*" is the
      // only form IAM accepts (read-only).
      new iam.PolicyStatement({
        sid: 'LoadBalancerReads',
        actions: [
          'elasticloadbalancing:DescribeTargetGroups',
          'elasticloadbalancing:DescribeTargetHealth',
          'elasticloadbalancing:DescribeTags',
          'elasticloadbalancing:DescribeLoadBalancers',
          'elasticloadbalancing:DescribeTargetGroupAttributes',
          'elasticloadbalancing:DescribeLoadBalancerAttributes',
        ],
        resources: ['*'],
      }),
      new iam.PolicyStatement({
        sid: 'NetworkReads',
        actions: [
          'ec2:DescribeInstances',
          'ec2:DescribeNetworkInterfaces',
          'ec2:DescribeSecurityGroups',
          'ec2:DescribeSubnets',
          'ec2:DescribeVpcs',
          'ec2:DescribeNetworkAcls',
          'ec2:DescribeRouteTables',
        ],
        resources: ['*'],
      }),
      // The entries of the prefix lists that rules and routes refer to (AWS-managed lists
      // are owned by the account "aws", hence any account).
      new iam.PolicyStatement({
        sid: 'PrefixListReads',
        actions: ['ec2:GetManagedPrefixListEntries'],
        resources: [`arn:${partition}:ec2:${region}:*:prefix-list/*`],
      }),
      ...(slackSecret
        ? [
            new iam.PolicyStatement({
              sid: 'SlackWebhookSecret',
              actions: ['secretsmanager:GetSecretValue'],
              resources: [slackSecret],
            }),
          ]
        : []),
      // AWSLambdaVPCAccessExecutionRole, written out and scoped to this account and region,
      // only when the function runs in a VPC (the Describe* ones are above).
      ...(hasVpcConfig
        ? [
            new iam.PolicyStatement({
              sid: 'VpcNetworkInterfaces',
              actions: [
                'ec2:CreateNetworkInterface',
                'ec2:DeleteNetworkInterface',
                'ec2:AssignPrivateIpAddresses',
                'ec2:UnassignPrivateIpAddresses',
              ],
              resources: [
                `arn:${partition}:ec2:${region}:${account}:network-interface/*`,
                `arn:${partition}:ec2:${region}:${account}:subnet/*`,
                `arn:${partition}:ec2:${region}:${account}:security-group/*`,
              ],
            }),
          ]
        : []),
    ];
    const statements = [
      ...commonStatements(logGroup),
      // Composite alarms: the triggering child alarms (same account and region).
      new iam.PolicyStatement({
        sid: 'CompositeAlarmChildren',
        actions: ['cloudwatch:DescribeAlarms'],
        resources: [`arn:${partition}:cloudwatch:${region}:${account}:alarm:*`],
      }),
      // Lambda's on-failure destination is written with the execution role.
      new iam.PolicyStatement({
        sid: 'OnFailureDestination',
        actions: ['sqs:SendMessage'],
        resources: [failedQueue.queueArn],
      }),
    ];

    const role = new iam.Role(this, 'DiagnoseRole', {
      assumedBy: lambdaTrust,
      inlinePolicies: { diagnose: new iam.PolicyDocument({ statements }) },
    });
    pin(role, 'DiagnoseRole');
    const acknowledgeReads = (r: iam.Role, logGroupId: string, extra: { id: string; reason: string }[]) =>
      Validations.of(r).acknowledge(
        {
          id: 'AwsSolutions-IAM5[Resource::*]',
          reason:
            'elasticloadbalancing:Describe* and ec2:Describe* (read-only) support no resource-level permissions; "*" is the only Resource IAM accepts for them.',
        },
        {
          id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:logs:<AWS::Region>:<AWS::AccountId>:log-group:<${logGroupId}>:*]`,
          reason: 'Log streams of the function\'s own log group only (the ":*" is the log-stream part).',
        },
        {
          id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:*:prefix-list/*]',
          reason:
            'ec2:GetManagedPrefixListEntries (read-only) on the prefix lists security-group rules and routes refer to, known only at run time; AWS-managed lists are owned by the account "aws".',
        },
        ...extra,
        ...(hasVpcConfig
          ? ['network-interface', 'subnet', 'security-group'].map((kind) => ({
              id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:${kind}/*]`,
              reason:
                'Lambda VPC ENI management (what AWSLambdaVPCAccessExecutionRole grants on "*"), scoped to this account and region; ENI ids are created by Lambda at run time.',
            }))
          : []),
      );
    acknowledgeReads(role, 'DiagnoseLogGroup', [
      {
        id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:cloudwatch:<AWS::Region>:<AWS::AccountId>:alarm:*]',
        reason:
          'cloudwatch:DescribeAlarms (read-only) on the child alarms of a composite alarm, whose names are only known at run time; scoped to this account and region.',
      },
    ]);

    // ------------------------------------------------------------ remediate role
    // Applies one approval-only fix a person approved. It re-diagnoses first (the same reads);
    // its one AWS write opens a port on a security group EKS tags with one of the clusters.
    // Kubernetes rights: the eks-lb-doctor-remediate group (access entries below).
    let remediateRole: iam.Role | undefined;
    let remediateLogGroup: logs.LogGroup | undefined;
    if (remediateEnabled) {
      remediateLogGroup = new logs.LogGroup(this, 'RemediateLogGroup', {
        logGroupName: `/aws/lambda/${Aws.STACK_NAME}-remediate`,
        retention: (props.logRetentionDays ?? 30) as logs.RetentionDays,
        removalPolicy: RemovalPolicy.DESTROY,
      });
      pin(remediateLogGroup, 'RemediateLogGroup');
      remediateRole = new iam.Role(this, 'RemediateRole', {
        assumedBy: lambdaTrust,
        inlinePolicies: {
          remediate: new iam.PolicyDocument({
            statements: [
              ...commonStatements(remediateLogGroup),
              // authorize-health-check-ingress, only on the clusters' own security groups.
              new iam.PolicyStatement({
                sid: 'OpenHealthCheckPort',
                actions: ['ec2:AuthorizeSecurityGroupIngress'],
                resources: [`arn:${partition}:ec2:${region}:${account}:security-group/*`],
                conditions: { StringEquals: { 'aws:ResourceTag/aws:eks:cluster-name': props.clusterNames } },
              }),
            ],
          }),
        },
      });
      pin(remediateRole, 'RemediateRole');
      acknowledgeReads(
        remediateRole,
        'RemediateLogGroup',
        hasVpcConfig
          ? []
          : [
              {
                id: 'AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:ec2:<AWS::Region>:<AWS::AccountId>:security-group/*]',
                reason:
                  'ec2:AuthorizeSecurityGroupIngress (the approved authorize-health-check-ingress fix) only on security groups whose aws:eks:cluster-name tag names one of the clusters; the group is known only at run time.',
              },
            ],
      );
    }

    // ------------------------------------------------------------ encryption
    const key = new kms.Key(this, 'NotificationKey', {
      description: 'eks-lb-doctor notification topic key',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
      policy: new iam.PolicyDocument({
        statements: [
          new iam.PolicyStatement({
            sid: 'AccountAdministration',
            principals: [new iam.ArnPrincipal(`arn:${partition}:iam::${account}:root`)],
            actions: ['kms:*'],
            resources: ['*'],
          }),
          // The Errors alarm below notifies the encrypted topic (the form AWS documents for
          // CloudWatch alarm actions on an SSE-KMS topic).
          new iam.PolicyStatement({
            sid: 'CloudWatchAlarmsPublishToTopic',
            principals: [new iam.ServicePrincipal('cloudwatch.amazonaws.com')],
            actions: ['kms:GenerateDataKey*', 'kms:Decrypt'],
            resources: ['*'],
          }),
          new iam.PolicyStatement({
            sid: 'FunctionsPublishToTopic',
            principals: [role, ...(remediateRole ? [remediateRole] : [])].map((r) => new iam.ArnPrincipal(r.roleArn)),
            actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
            resources: ['*'],
            conditions: { StringEquals: { 'kms:ViaService': `sns.${region}.amazonaws.com` } },
          }),
        ],
      }),
    });
    pin(key, 'NotificationKey');
    pin(key.addAlias(`alias/eks-lb-doctor/${Aws.STACK_NAME}`) as kms.Alias, 'NotificationKeyAlias');

    const topic = new sns.Topic(this, 'NotificationTopic', {
      displayName: 'eks-lb-doctor',
      masterKey: key,
    });
    pin(topic, 'NotificationTopic');
    Validations.of(topic).acknowledge({
      id: 'AwsSolutions-SNS3',
      reason:
        'Same as infra/template.yaml: the topic keeps its default access policy, which the Errors alarm action (CloudWatch) publishes under; a deny-only SecureTransport topic policy would replace it. Publishers (Lambda SDK, CloudWatch) use TLS.',
    });
    Validations.of(failedQueue).acknowledge({
      id: 'AwsSolutions-SQS3',
      reason: 'This queue is itself the dead-letter (on-failure) destination of the diagnose function.',
    });

    // A separate policy: the key policy names the role, so the role cannot name the key.
    const notifyPolicy = (id: string, r: iam.Role) =>
      pin(
        new iam.Policy(this, id, {
          policyName: 'notify',
          roles: [r],
          statements: [
            new iam.PolicyStatement({ sid: 'PublishToOwnTopic', actions: ['sns:Publish'], resources: [topic.topicArn] }),
            new iam.PolicyStatement({
              sid: 'UseTopicKey',
              actions: ['kms:GenerateDataKey', 'kms:Decrypt'],
              resources: [key.keyArn],
            }),
          ],
        }),
        id,
      );
    notifyPolicy('DiagnoseNotifyPolicy', role);
    if (remediateRole) notifyPolicy('RemediateNotifyPolicy', remediateRole);

    // One eks:DescribeCluster grant and one access entry per cluster.
    const describeCluster = (id: string, r: iam.Role, cluster: string) =>
      pin(
        new iam.Policy(this, id, {
          policyName: `describe-cluster-${cluster}`,
          roles: [r],
          statements: [
            new iam.PolicyStatement({
              sid: 'ClusterEndpointAndCa',
              actions: ['eks:DescribeCluster'],
              resources: [`arn:${partition}:eks:${region}:${account}:cluster/${cluster}`],
            }),
          ],
        }),
        id,
      );
    for (const cluster of props.clusterNames) {
      const cid = idOf(cluster);
      describeCluster(`DiagnoseDescribeCluster${cid}`, role, cluster);
      if (remediateRole) describeCluster(`RemediateDescribeCluster${cid}`, remediateRole, cluster);
      new eks.CfnAccessEntry(this, `DiagnoseAccessEntry${cid}`, {
        clusterName: cluster,
        principalArn: role.roleArn,
        type: 'STANDARD',
        // Unattended fixes are Kubernetes patches made by the diagnose function itself.
        kubernetesGroups: remediateEnabled
          ? ['eks-lb-doctor-diagnose', 'eks-lb-doctor-remediate']
          : ['eks-lb-doctor-diagnose'],
      });
      if (remediateRole) {
        new eks.CfnAccessEntry(this, `RemediateAccessEntry${cid}`, {
          clusterName: cluster,
          principalArn: remediateRole.roleArn,
          type: 'STANDARD',
          // It re-diagnoses before it writes: the read group too.
          kubernetesGroups: ['eks-lb-doctor-diagnose', 'eks-lb-doctor-remediate'],
        });
      }
    }

    // ------------------------------------------------------------ functions
    // What both functions share: runtime shape, logging, and the settings both read.
    const commonFunctionProps = {
      architecture: lambda.Architecture.ARM_64,
      memorySize: 256,
      // Sets AWS_LAMBDA_LOG_FORMAT=JSON and AWS_LAMBDA_LOG_LEVEL, which main.rs reads.
      loggingFormat: lambda.LoggingFormat.JSON,
      applicationLogLevelV2: lambda.ApplicationLogLevel.INFO,
      systemLogLevelV2: lambda.SystemLogLevel.WARN,
    };
    const commonEnvironment = {
      SNS_TOPIC_ARN: topic.topicArn,
      SLACK_WEBHOOK_SECRET_ARN: slackSecret,
      // The functions' credentials only reach their own account.
      ALLOWED_ACCOUNTS: account,
      ALLOWED_CLUSTERS: props.allowedClusters || props.clusterNames.join(','),
      FIX_MODE: fixMode,
      ALLOWED_NAMESPACES: props.allowedNamespaces ?? '',
      HEALTH_CHECK_REPLAY: String(hasVpcConfig && (props.healthCheckReplay ?? false)),
    };

    // ------------------------------------------------------------ diagnose function
    const functionProps = {
      description: 'UnHealthyHostCount alarm -> eks-lb-doctor diagnosis -> SNS / Slack',
      ...commonFunctionProps,
      timeout: Duration.seconds(60),
      // Immutable view: CDK may not add statements or managed policies behind our back.
      role: role.withoutPolicyUpdates(),
      reservedConcurrentExecutions: props.reservedConcurrency ?? 2,
      logGroup,
      environment: {
        ...commonEnvironment,
        NOTIFY_ON_RECOVERY: String(props.notifyOnRecovery ?? false),
        // Set below when the remediate function exists.
        REMEDIATE_FUNCTION_NAME: '',
      },
    };
    // A cargo-lambda RustFunction for one binary of the workspace, or (skipBuild: offline
    // synth in CI) a placeholder that builds nothing.
    const placeholderBucket = props.skipBuild
      ? s3.Bucket.fromBucketName(this, 'SkipBuildPlaceholderBucket', 'skip-build-placeholder-do-not-deploy')
      : undefined;
    const rustFunction = (id: string, binary: string, fprops: lambda.FunctionOptions): lambda.Function => {
      const made: lambda.Function = placeholderBucket
        ? new lambda.Function(this, id, {
            ...fprops,
            runtime: lambda.Runtime.PROVIDED_AL2023,
            handler: 'bootstrap',
            // Inline code is not allowed for provided.*: a placeholder S3 object (no lookup).
            code: lambda.Code.fromBucket(placeholderBucket, `${binary}.zip`),
          })
        : new RustFunction(this, id, {
            ...fprops,
            manifestPath: path.join(props.functionsDir ?? path.join(__dirname, '..', '..', '..', 'functions'), binary, 'Cargo.toml'),
            binaryName: binary,
            runtime: 'provided.al2023',
          });
      pin(made, id);
      if (hasVpcConfig) {
        // Escape hatch: the L2 wants an IVpc (a lookup); the SAM template takes plain ids.
        (made.node.defaultChild as lambda.CfnFunction).vpcConfig = { subnetIds, securityGroupIds };
      }
      Validations.of(made).acknowledge({
        id: 'AwsSolutions-L1',
        reason: 'provided.al2023 (OS-only runtime for the Rust binary) is the latest runtime for custom code.',
      });
      return made;
    };
    const fn = rustFunction('DiagnoseFunction', 'diagnose', functionProps);
    // EventInvokeConfig written as L1: the L2 onFailure destination would call
    // queue.grantSendMessages() (adds sqs:GetQueue* too); sqs:SendMessage is granted above.
    new lambda.CfnEventInvokeConfig(this, 'DiagnoseFunctionEventInvokeConfig', {
      functionName: fn.functionName,
      qualifier: '$LATEST',
      maximumRetryAttempts: 1,
      maximumEventAgeInSeconds: 3600,
      destinationConfig: { onFailure: { destination: failedQueue.queueArn } },
    });

    // ------------------------------------------------------------ remediate function
    if (remediateRole && remediateLogGroup) {
      const remediateFn = rustFunction('RemediateFunction', 'remediate', {
        description: 'one approved eks-lb-doctor fix -> re-diagnosis -> guarded write -> SNS / Slack',
        ...commonFunctionProps,
        timeout: Duration.seconds(120),
        role: remediateRole.withoutPolicyUpdates(),
        // One approval at a time: writes never race each other.
        reservedConcurrentExecutions: 1,
        logGroup: remediateLogGroup,
        environment: commonEnvironment,
      });
      fn.addEnvironment('REMEDIATE_FUNCTION_NAME', remediateFn.functionName);
      new CfnOutput(this, 'RemediateFunctionName', {
        description: 'Approve a fix with aws lambda invoke --function-name <this> (the report prints the command)',
        value: remediateFn.functionName,
      });
    }

    const alarmName = prefix ? [{ prefix }] : undefined;
    const alarmRule = new events.Rule(this, 'AlarmStateChangeRule', {
      description: 'UnHealthyHostCount alarms on ALB / NLB target groups -> eks-lb-doctor',
      eventPattern: {
        source: ['aws.cloudwatch'],
        detailType: ['CloudWatch Alarm State Change'],
        detail: {
          ...(alarmName ? { alarmName } : {}),
          state: { value: props.notifyOnRecovery ? ['ALARM', 'OK'] : ['ALARM'] },
          configuration: {
            metrics: {
              metricStat: {
                metric: { namespace: ['AWS/ApplicationELB', 'AWS/NetworkELB'], name: ['UnHealthyHostCount'] },
              },
            },
          },
        },
      },
    });
    pin(alarmRule, 'AlarmStateChangeRule');
    alarmRule.addTarget(new targets.LambdaFunction(fn));

    // Composite alarms carry no metrics of their own; the function resolves their triggering
    // children (cloudwatch:DescribeAlarms) and skips those not on UnHealthyHostCount.
    const compositeRule = new events.Rule(this, 'CompositeAlarmStateChangeRule', {
      description: 'Composite alarms -> eks-lb-doctor (children resolved by the function)',
      eventPattern: {
        source: ['aws.cloudwatch'],
        detailType: ['CloudWatch Alarm State Change'],
        detail: {
          ...(alarmName ? { alarmName } : {}),
          state: { value: ['ALARM'] },
          configuration: { alarmRule: [{ exists: true }] },
        },
      },
    });
    pin(compositeRule, 'CompositeAlarmStateChangeRule');
    compositeRule.addTarget(new targets.LambdaFunction(fn));

    const errorsAlarm = new cloudwatch.Alarm(this, 'DiagnoseErrorsAlarm', {
      alarmDescription:
        'The eks-lb-doctor diagnose function failed (see its log group and the failed-invocations queue).',
      metric: fn.metricErrors({ period: Duration.minutes(5), statistic: 'Sum' }),
      evaluationPeriods: 1,
      threshold: 1,
      comparisonOperator: cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      treatMissingData: cloudwatch.TreatMissingData.NOT_BREACHING,
    });
    pin(errorsAlarm, 'DiagnoseErrorsAlarm');
    errorsAlarm.addAlarmAction(new cwActions.SnsAction(topic));

    // ------------------------------------------------------------ outputs
    new CfnOutput(this, 'DiagnoseFunctionArn', { value: fn.functionArn });
    new CfnOutput(this, 'DiagnoseRoleArn', {
      description: 'Principal of the eks-lb-doctor-diagnose access entries',
      value: role.roleArn,
    });
    new CfnOutput(this, 'NotificationTopicArn', { description: 'Subscribe email / Chatbot here', value: topic.topicArn });
    new CfnOutput(this, 'FailedInvocationsQueueUrl', { value: failedQueue.queueUrl });
    if (remediateRole) {
      new CfnOutput(this, 'RemediateRoleArn', { value: remediateRole.roleArn });
    }
    new CfnOutput(this, 'AllowedNamespaces', {
      description: 'Bind the remediate RBAC in these namespaces (infra/k8s/rbac.yaml)',
      value: remediateEnabled ? props.allowedNamespaces || '(none)' : 'fixes disabled',
    });
  }
}
