/**
 * AWS clients, created on first use and reused (one per class and region). Retries are the SDK's own
 * adaptive mode (token bucket + client-side rate limiting), never a hand-written loop.
 * Endpoints follow the SDK's standard AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> variables, which is
 * how tests point clients at moto and the local platform at its embedded DynamoDB.
 */
const cache = new Map<string, unknown>();

export const DEFAULT_MAX_ATTEMPTS = 5;

export interface ClientOptions {
  region?: string;
  /** Explicit endpoint (the local platform's embedded DynamoDB); else the SDK's AWS_ENDPOINT_URL* variables apply. */
  endpoint?: string;
  /** S3 against an emulator needs path-style addressing. */
  forcePathStyle?: boolean;
}

type Ctor<T> = new (config: Record<string, unknown>) => T;

export function awsClient<T>(ctor: Ctor<T>, options: ClientOptions = {}): T {
  const region = options.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1";
  const key = `${ctor.name}|${region}|${options.endpoint ?? ""}|${options.forcePathStyle ? "path" : ""}`;
  let client = cache.get(key) as T | undefined;
  if (!client) {
    client = new ctor({
      region,
      ...(options.endpoint ? { endpoint: options.endpoint } : {}),
      retryMode: "adaptive",
      maxAttempts: Number(process.env.AWS_MAX_ATTEMPTS) || DEFAULT_MAX_ATTEMPTS,
      ...(options.forcePathStyle || process.env.AWS_S3_FORCE_PATH_STYLE === "true" ? { forcePathStyle: true } : {}),
    });
    cache.set(key, client);
  }
  return client;
}

/** Forget every cached client (tests that change endpoints between suites). */
export function resetClients(): void {
  cache.clear();
}
