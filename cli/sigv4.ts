/**
 * SigV4 signing of task API requests: the deployed TaskApi is an API Gateway HTTP API with AWS_IAM auth
 * (service "execute-api"); a Lambda function URL with AWS_IAM would be service "lambda".
 */
import { Sha256 } from "@aws-crypto/sha256-js";
import { SignatureV4 } from "@smithy/signature-v4";
import type { AwsCredentialIdentity, Provider } from "@smithy/types";

export type SigningService = "execute-api" | "lambda";

export interface SignOptions {
  credentials: AwsCredentialIdentity | Provider<AwsCredentialIdentity>;
  region: string;
  service: SigningService;
  /** Signing time (tests fix it to check the signature is deterministic). */
  signingDate?: Date;
}

export interface PlainRequest {
  method: string;
  url: string;
  headers?: Record<string, string>;
  body?: string;
}

/** Headers to send with the request: the given ones plus host, x-amz-date, authorization (and the session token). */
export async function signRequest(request: PlainRequest, options: SignOptions): Promise<Record<string, string>> {
  const url = new URL(request.url);
  const query: Record<string, string | string[]> = {};
  for (const [k, v] of url.searchParams) {
    const prev = query[k];
    query[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  const signer = new SignatureV4({
    credentials: options.credentials,
    region: options.region,
    service: options.service,
    sha256: Sha256,
  });
  const signed = await signer.sign(
    {
      method: request.method.toUpperCase(),
      protocol: url.protocol,
      hostname: url.hostname,
      ...(url.port ? { port: Number(url.port) } : {}),
      path: url.pathname,
      query,
      headers: { ...(request.headers ?? {}), host: url.host },
      ...(request.body !== undefined ? { body: request.body } : {}),
    },
    options.signingDate ? { signingDate: options.signingDate } : {},
  );
  return signed.headers as Record<string, string>;
}

/** Lambda function URLs live on *.lambda-url.<region>.on.aws; anything else is taken for API Gateway. */
export function signingServiceFor(apiUrl: string): SigningService {
  return /\.lambda-url\.[a-z0-9-]+\.on\.aws$/.test(new URL(apiUrl).hostname) ? "lambda" : "execute-api";
}

/** The region in an API Gateway or function URL host name, if it has one. */
export function regionFromUrl(apiUrl: string): string | undefined {
  const host = new URL(apiUrl).hostname;
  return /\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$/.exec(host)?.[1] ?? /\.lambda-url\.([a-z0-9-]+)\.on\.aws$/.exec(host)?.[1];
}
