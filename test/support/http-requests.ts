/**
 * tRPC calls a server answered over HTTP so far, by its own count on /metrics: a test tells
 * from it whether the SDK's calls went over the socket (the count stays) or over HTTP.
 */
export async function trpcHttpRequests(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  return text
    .split("\n")
    .filter((line) => line.startsWith("turnqueue_http_requests_total{") && line.includes('door="trpc"'))
    .reduce((sum, line) => sum + Number(line.split(" ").at(-1)), 0);
}
