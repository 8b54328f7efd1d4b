import type { ThreadState } from "../domain/index.js";

/**
 * Thread states by id, least recently used evicted first. An entry is only a starting
 * point: the engine always catches it up with the log before deciding.
 */
export class StateCache {
  private readonly states = new Map<string, ThreadState>();

  constructor(private readonly capacity: number) {}

  get(threadId: string): ThreadState | undefined {
    const state = this.states.get(threadId);
    if (state) {
      this.states.delete(threadId);
      this.states.set(threadId, state);
    }
    return state;
  }

  set(state: ThreadState): void {
    this.states.delete(state.threadId);
    this.states.set(state.threadId, state);
    if (this.states.size > this.capacity) this.states.delete(this.states.keys().next().value!);
  }
}
