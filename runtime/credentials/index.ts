/** The repository credentials provider a runtime config asks for (RuntimeConfig.credentials); none when unset. */
import { SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { awsClient } from "../aws/clients";
import type { RuntimeConfig } from "../config";
import { localCredentialsProvider } from "./local";
import type { RepoCredentialsProvider } from "./provider";
import { secretsManagerProvider, secretsManagerReader } from "./secrets";

export type { GitCredentials, RepoCredentialsProvider } from "./provider";

export function repoCredentialsProvider(config: Pick<RuntimeConfig, "credentials" | "region">, env: NodeJS.ProcessEnv = process.env): RepoCredentialsProvider | undefined {
  const c = config.credentials;
  if (!c) return undefined;
  switch (c.kind) {
    case "secrets-manager":
      return secretsManagerProvider(c.prefix, secretsManagerReader(awsClient(SecretsManagerClient, { region: config.region })));
    case "local":
      return localCredentialsProvider(env);
  }
}
