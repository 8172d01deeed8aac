/**
 * Published on-demand prices the cost bench applies, one home for each. Region us-east-1 (N. Virginia), read on
 * 2026-11-29 (the date of this bench's first run) from the sources named on each line; where AWS's own page could
 * not be read from this machine, the source is a transcription of it, named as such. Free tiers are ignored.
 */
export const PRICE_REGION = "us-east-1";
export const PRICE_DATE = "2026-11-29";

export interface Price {
  usd: number;
  per: string;
  source: string;
}

export const PRICES = {
  lambdaRequest: {
    usd: 0.2 / 1e6,
    per: "request",
    source: "aws.amazon.com/lambda/pricing ($0.20 per 1M requests; transcribed 2026-09-20 in api-evangelist/aws-lambda plans/aws-lambda-plans-pricing.yml)",
  },
  lambdaGbSecondArm: {
    usd: 0.0000133334,
    per: "GB-second (arm64, first tier)",
    source: "aws.amazon.com/lambda/pricing (Arm price, first 6 billion GB-s/month); our Lambdas are arm64",
  },
  durableOperation: {
    usd: 8.0 / 1e6,
    per: "durable operation",
    source: "aws.amazon.com/lambda/pricing, Durable Functions operations ($8.00 per 1M; transcribed 2026-09-20, api-evangelist/aws-lambda)",
  },
  httpApiRequest: {
    usd: 1.0 / 1e6,
    per: "HTTP API request",
    source: "aws.amazon.com/api-gateway/pricing (HTTP APIs, first 300M requests/month)",
  },
  dynamoWriteRequestUnit: {
    usd: 0.625 / 1e6,
    per: "write request unit (on-demand)",
    source: "aws.amazon.com/dynamodb/pricing/on-demand ($0.625 per 1M WRU since the Nov 2024 price cut; also quoted by airbyte.com's DynamoDB pricing guide)",
  },
  dynamoReadRequestUnit: {
    usd: 0.125 / 1e6,
    per: "read request unit (on-demand)",
    source: "aws.amazon.com/dynamodb/pricing/on-demand ($0.125 per 1M RRU since the Nov 2024 price cut)",
  },
  s3Put: { usd: 0.005 / 1000, per: "PUT/COPY/POST/LIST request (S3 Standard)", source: "aws.amazon.com/s3/pricing" },
  s3Get: { usd: 0.0004 / 1000, per: "GET request (S3 Standard)", source: "aws.amazon.com/s3/pricing" },
  /** ECS, EC2, Auto Scaling, SSM Run Command and the AgentCore control calls carry no per-request charge. */
  freeControlRequest: { usd: 0, per: "request", source: "no per-request charge (ECS, EC2, Auto Scaling, SSM Run Command pricing pages)" },
} as const satisfies Record<string, Price>;

/** Memory of the deployed Lambdas (components/task-orchestrator.ts and components/task-api.ts: 512 MiB each). */
export const LAMBDA_MEMORY_GB = 0.5;
