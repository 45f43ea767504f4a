// Latency-aware region choice: time each region's ping endpoints (the node agents' `GET /ping`,
// listed by the matchmaker's `GET /regions`) and order the regions nearest first.

import type { FetchLike } from './types.js';

/** One region as `GET /regions` lists it. */
export interface RegionInfo {
  region: string;
  ping_urls: string[];
  /** Listed servers (of the game asked for). */
  servers: number;
  rooms: number;
  free_seats: number;
  /** A room of the game there has a free seat now (a server may still open a new room elsewise). */
  capacity: boolean;
}

/** A region as measured: `latencyMs` is the median round trip, null when no ping answered. */
export interface RegionLatency extends RegionInfo {
  latencyMs: number | null;
  samplesMs: number[];
}

export interface MeasureOptions {
  /** Pings timed per region after a first one that opens the connection (default 4). */
  samples?: number;
  /** A ping slower than this counts as unanswered (default 2000 ms). */
  timeoutMs?: number;
}

export const DEFAULT_SAMPLES = 4;
const PING_TIMEOUT_MS = 2000;

const now = (): number => (globalThis.performance ? globalThis.performance.now() : Date.now());

async function ping(fetchFn: FetchLike, url: string, timeoutMs: number): Promise<number | null> {
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), timeoutMs);
  const began = now();
  try {
    // A simple GET (no custom header): no CORS preflight, so one round trip is one ping.
    const resp = await fetchFn(url, { cache: 'no-store', signal: abort.signal });
    await resp.arrayBuffer();
    return resp.ok ? now() - began : null;
  } catch {
    return null;
  } finally {
    clearTimeout(timer);
  }
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

const round = (ms: number): number => Math.round(ms * 100) / 100;

/**
 * Time one region: a first ping opens the connection (not counted: a TCP handshake is not what a
 * game's messages pay), then `samples` pings over it, the median kept. The next ping URL is tried
 * when one does not answer.
 */
export async function timeRegion(fetchFn: FetchLike, info: RegionInfo, options: MeasureOptions = {}): Promise<RegionLatency> {
  const samples = Math.max(1, options.samples ?? DEFAULT_SAMPLES);
  const timeoutMs = options.timeoutMs ?? PING_TIMEOUT_MS;
  for (const url of info.ping_urls) {
    if (await ping(fetchFn, url, timeoutMs) === null) continue;
    const times: number[] = [];
    for (let i = 0; i < samples; i++) {
      const t = await ping(fetchFn, url, timeoutMs);
      if (t !== null) times.push(t);
    }
    if (times.length) return { ...info, latencyMs: round(median(times)), samplesMs: times.map(round) };
  }
  return { ...info, latencyMs: null, samplesMs: [] };
}

/** Nearest first; unreachable regions last. */
export function nearestFirst(regions: RegionLatency[]): RegionLatency[] {
  return [...regions].sort((a, b) => {
    if ((a.latencyMs === null) !== (b.latencyMs === null)) return a.latencyMs === null ? 1 : -1;
    return (a.latencyMs ?? 0) - (b.latencyMs ?? 0) || a.region.localeCompare(b.region);
  });
}

/** Every region timed (all at once), nearest first. */
export async function measure(fetchFn: FetchLike, listed: RegionInfo[], options: MeasureOptions = {}): Promise<RegionLatency[]> {
  return nearestFirst(await Promise.all(listed.map((info) => timeRegion(fetchFn, info, options))));
}

/**
 * The regions a joinOrCreate tries, in order: those with a server of the game, nearest first (the
 * matchmaker's join tells whether a region can still take the player).
 */
export function joinOrder(regions: RegionLatency[]): string[] {
  return nearestFirst(regions).filter((r) => r.servers > 0).map((r) => r.region);
}
