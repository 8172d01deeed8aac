/**
 * Repository credentials reach an agent only through the channel's credentials route, never inside its payload:
 * the route can refuse a finished task, and a provider can mint a short-lived token scoped to the one repository.
 * The port and the providers live in runtime/credentials/; this is how a runtime picks one.
 */
import type { RuntimeConfig } from "../config";
import type { RepoCredentialsProvider } from "../credentials/provider";

export type { GitCredentials, RepoCredentialsProvider } from "../credentials/provider";

/** The default: no repository credentials anywhere, so the route answers 404. */
export const NO_REPO_CREDENTIALS: RepoCredentialsProvider = {
  getGitCredentials: async () => undefined,
};

/**
 * The provider RuntimeConfig.credentials names, loaded on the first request for credentials (its SDK clients are
 * not worth loading in a Lambda invocation that never serves one); none when unset.
 */
export function configuredRepoCredentials(config: Pick<RuntimeConfig, "credentials" | "region">): RepoCredentialsProvider {
  if (!config.credentials) return NO_REPO_CREDENTIALS;
  let provider: Promise<RepoCredentialsProvider> | undefined;
  return {
    async getGitCredentials(task) {
      provider ??= import("../credentials").then((m) => m.repoCredentialsProvider(config) ?? NO_REPO_CREDENTIALS);
      return (await provider).getGitCredentials(task);
    },
  };
}
