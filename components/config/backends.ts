/** backends and defaultBackend: which cloud backends this stack builds, and the one tasks get by default. */
import type { Problems } from "./checks";
import { DEFAULTS } from "./defaults";
import { CLOUD_BACKENDS, type CloudBackend, type RawConfig } from "./types";

export function validateBackends(p: Problems, raw: RawConfig): { backends: CloudBackend[]; defaultBackend: CloudBackend } {
  let backends: CloudBackend[] = [...DEFAULTS.backends];
  if (raw.backends !== undefined) {
    if (!Array.isArray(raw.backends) || raw.backends.length === 0) {
      p.add("backends", `must be a non-empty list; allowed values: ${CLOUD_BACKENDS.join(", ")}`);
    } else {
      backends = [];
      raw.backends.forEach((b, i) => {
        if (typeof b !== "string" || !(CLOUD_BACKENDS as readonly string[]).includes(b)) {
          p.add(`backends[${i}]`, `is ${JSON.stringify(b)}; allowed: ${CLOUD_BACKENDS.join(", ")}`);
        } else if (backends.includes(b as CloudBackend)) {
          p.add(`backends[${i}]`, `'${b}' is listed twice`);
        } else {
          backends.push(b as CloudBackend);
        }
      });
    }
  }
  let defaultBackend = backends[0] ?? "ecs";
  if (raw.defaultBackend !== undefined) {
    const d = raw.defaultBackend;
    if (typeof d !== "string" || !(CLOUD_BACKENDS as readonly string[]).includes(d)) {
      p.add("defaultBackend", `is ${JSON.stringify(d)}; allowed: ${CLOUD_BACKENDS.join(", ")}`);
    } else if (!backends.includes(d as CloudBackend)) {
      p.add("defaultBackend", `'${d}' is not enabled; enabled backends: ${backends.join(", ")}`);
    } else {
      defaultBackend = d as CloudBackend;
    }
  }
  return { backends, defaultBackend };
}
