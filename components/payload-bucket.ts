/**
 * Task payloads by reference: a private bucket, encrypted, TLS-only, objects expiring after a few days
 * (finalize deletes them; expiry catches whatever a crash leaves).
 */
import * as pulumi from "@pulumi/pulumi";
import * as aws from "@pulumi/aws";

export const PAYLOAD_PREFIX = "payloads/";

export interface PayloadBucketArgs {
  readonly expirationDays: number;
}

export class PayloadBucket extends pulumi.ComponentResource {
  readonly bucket: aws.s3.Bucket;
  readonly bucketName: pulumi.Output<string>;
  readonly arn: pulumi.Output<string>;

  constructor(name: string, args: PayloadBucketArgs, opts?: pulumi.ComponentResourceOptions) {
    super("agent-compute:storage:PayloadBucket", name, {}, opts);
    if (!Number.isInteger(args.expirationDays) || args.expirationDays < 1) {
      throw new pulumi.InputPropertyError({ propertyPath: "expirationDays", reason: `must be a whole number of days ≥ 1, got ${args.expirationDays}` });
    }
    this.bucket = createPayloadBucket(name, args, this);
    this.bucketName = this.bucket.bucket;
    this.arn = this.bucket.arn;
    this.registerOutputs({ bucketName: this.bucketName, arn: this.arn });
  }
}

export function createPayloadBucket(name: string, args: PayloadBucketArgs, parent: pulumi.Resource): aws.s3.Bucket {
  const bucket = new aws.s3.Bucket(`${name}`, { forceDestroy: true }, { parent });
  new aws.s3.BucketOwnershipControls(`${name}-ownership`, { bucket: bucket.id, rule: { objectOwnership: "BucketOwnerEnforced" } }, { parent });
  const block = new aws.s3.BucketPublicAccessBlock(
    `${name}-public-access`,
    { bucket: bucket.id, blockPublicAcls: true, blockPublicPolicy: true, ignorePublicAcls: true, restrictPublicBuckets: true },
    { parent },
  );
  new aws.s3.BucketServerSideEncryptionConfiguration(
    `${name}-encryption`,
    { bucket: bucket.id, rules: [{ applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" }, bucketKeyEnabled: true }] },
    { parent },
  );
  new aws.s3.BucketLifecycleConfiguration(
    `${name}-lifecycle`,
    {
      bucket: bucket.id,
      rules: [
        {
          id: "expire-payloads",
          status: "Enabled",
          filter: { prefix: PAYLOAD_PREFIX },
          expiration: { days: args.expirationDays },
          abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
        },
      ],
    },
    { parent },
  );
  new aws.s3.BucketPolicy(
    `${name}-tls-only`,
    {
      bucket: bucket.id,
      policy: pulumi.jsonStringify({
        Version: "2012-10-17",
        Statement: [
          {
            Sid: "DenyInsecureTransport",
            Effect: "Deny",
            Principal: "*",
            Action: "s3:*",
            Resource: [bucket.arn, pulumi.interpolate`${bucket.arn}/*`],
            Condition: { Bool: { "aws:SecureTransport": "false" } },
          },
        ],
      }),
    },
    // The policy is put after public access is blocked, so it can never be evaluated as a public one.
    { parent, dependsOn: [block] },
  );
  return bucket;
}
