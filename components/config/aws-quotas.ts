/**
 * AWS service quotas that the stack's resources must fit, each in one place with the page that states it. The
 * config checks and the components both read them here, so `pulumi preview` refuses what AWS would refuse at
 * `pulumi up` (or, worse, at the first task).
 */

/** EC2 user data: "limited to 16 KB, in raw form, before it is base64-encoded" (EC2 User Guide, "Work with instance user data"). */
export const USER_DATA_MAX_BYTES = 16 * 1024;

/** Lambda: the total size of a function's environment variables is at most 4 KB (Lambda Developer Guide, "Lambda quotas"). */
export const LAMBDA_ENVIRONMENT_MAX_BYTES = 4 * 1024;

/**
 * SSM CreateDocument: "The content of the document must not exceed 64KB. This quota also includes the content specified
 * for input parameters at runtime" (SSM API Reference, CreateDocument Content; MaxDocumentSizeExceeded).
 */
export const SSM_DOCUMENT_MAX_BYTES = 64 * 1024;

/** API Gateway HTTP API: "Maximum integration timeout: 30 seconds", not adjustable (API Gateway Developer Guide, "Quotas for configuring and running an HTTP API"). */
export const HTTP_API_INTEGRATION_TIMEOUT_SECONDS = 30;

/** Lambda: a function runs at most 15 minutes per invocation (Lambda Developer Guide, "Lambda quotas"). */
export const LAMBDA_TIMEOUT_MAX_SECONDS = 900;

/** Lambda DurableConfig: ExecutionTimeout 1–31,622,400 s (366 days), RetentionPeriodInDays 1–90 (Lambda API Reference, DurableConfig). */
export const DURABLE_EXECUTION_TIMEOUT_BOUNDS = { min: 1, max: 31_622_400 } as const;
export const DURABLE_RETENTION_DAYS_BOUNDS = { min: 1, max: 90 } as const;

/**
 * AgentCore Runtime lifecycle: idleRuntimeSessionTimeout and maxLifetime are 60–28,800 s (8 hours) (Bedrock AgentCore
 * API Reference, LifecycleConfiguration).
 */
export const AGENTCORE_LIFETIME_BOUNDS = { min: 60, max: 28_800 } as const;
