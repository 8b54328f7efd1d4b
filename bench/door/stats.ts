/** Samples in milliseconds and what the tables print of them. */

export const quantile = (samples: readonly number[], q: number): number => {
  if (samples.length === 0) return NaN;
  const sorted = [...samples].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
};

export interface Latency {
  p50: number;
  p99: number;
  n: number;
}

export const latency = (samples: readonly number[]): Latency => ({ p50: quantile(samples, 0.5), p99: quantile(samples, 0.99), n: samples.length });

/** Wall-clock milliseconds with sub-millisecond precision, comparable across processes of one machine. */
export const wallMs = (): number => performance.timeOrigin + performance.now();

export const ms = (x: number): string => (Number.isNaN(x) ? "–" : x < 10 ? x.toFixed(2) : x < 100 ? x.toFixed(1) : x.toFixed(0));
export const rate = (x: number): string => (Number.isNaN(x) ? "–" : `${x.toFixed(0)}/s`);
export const ratio = (x: number): string => (Number.isFinite(x) ? `${x.toFixed(2)}×` : "–");

/** `clients` loops each running `op` back to back for `seconds`; operations per second and latencies. */
export async function loadFor(
  seconds: number,
  clients: number,
  op: (client: number, i: number) => Promise<unknown>,
): Promise<{ perSecond: number } & Latency> {
  const samples: number[] = [];
  const start = performance.now();
  const end = start + seconds * 1000;
  await Promise.all(
    Array.from({ length: clients }, async (_, client) => {
      for (let i = 0; performance.now() < end; i++) {
        const t0 = performance.now();
        await op(client, i);
        samples.push(performance.now() - t0);
      }
    }),
  );
  return { perSecond: samples.length / ((performance.now() - start) / 1000), ...latency(samples) };
}

export async function until(check: () => boolean, what: string, timeoutMs = 300_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}
