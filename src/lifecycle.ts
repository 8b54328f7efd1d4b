/** What every long-lived part returns, so shutdown can stop them in reverse order. */
export interface Closable {
  close(): Promise<void>;
}
