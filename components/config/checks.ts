/** The checks every config section is built from: each records a problem under the key an operator would edit and returns a usable fallback. */
import type * as pulumi from "@pulumi/pulumi";

/** Collects problems as InputPropertyError details, keyed by the config path an operator would edit. */

export class Problems {
  readonly list: pulumi.InputPropertyErrorDetails[] = [];
  add(propertyPath: string, reason: string): void {
    this.list.push({ propertyPath, reason });
  }
  has(prefix: string): boolean {
    return this.list.some((p) => p.propertyPath === prefix || p.propertyPath.startsWith(`${prefix}.`));
  }
}

export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function unknownKeys(p: Problems, path: string, value: Record<string, unknown>, allowed: readonly string[]): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) p.add(`${path}.${key}`, `is not a known setting; allowed: ${allowed.join(", ")}`);
  }
}

export function int(p: Problems, path: string, value: unknown, fallback: number, min: number, max: number): number {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "number" || !Number.isInteger(value)) {
    p.add(path, `must be a whole number between ${min} and ${max}, got ${JSON.stringify(value)}`);
    return fallback;
  }
  if (value < min || value > max) {
    p.add(path, `must be between ${min} and ${max}, got ${value}`);
    return fallback;
  }
  return value;
}

export function optionalNumber(p: Problems, path: string, value: unknown, min: number, max: number, integer: boolean): number | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "number" || !Number.isFinite(value) || (integer && !Number.isInteger(value)) || value < min || value > max) {
    p.add(path, `must be a ${integer ? "whole number" : "number"} between ${min} and ${max}, got ${JSON.stringify(value)}`);
    return undefined;
  }
  return value;
}

export function bool(p: Problems, path: string, value: unknown, fallback: boolean): boolean {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "boolean") {
    p.add(path, `must be true or false, got ${JSON.stringify(value)}`);
    return fallback;
  }
  return value;
}

export function str(p: Problems, path: string, value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string" || value.trim() === "") {
    p.add(path, `must be a non-empty string, got ${JSON.stringify(value)}`);
    return undefined;
  }
  return value;
}

export function oneOf<T extends string>(p: Problems, path: string, value: unknown, allowed: readonly T[], fallback: T): T {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== "string" || !(allowed as readonly string[]).includes(value)) {
    p.add(path, `is ${JSON.stringify(value)}; allowed: ${allowed.join(", ")}`);
    return fallback;
  }
  return value as T;
}
