// The error event every source produces (the in-memory ring, the log file) and the bounded ring that keeps
// the most recent ones of this process.

export interface ErrorEvent {
  /** Epoch milliseconds. */
  time: number;
  level: 'error' | 'fatal';
  /** Error code (e.g. APP_OVERLOADED, FST_ERR_...), else the error type (TypeError), else HTTP_<status>. */
  code: string;
  /** The raw message; redacted whenever it is shown or sent anywhere. */
  message: string;
  route?: string | undefined;
  method?: string | undefined;
  status?: number | undefined;
  request_id?: string | undefined;
  trace_id?: string | undefined;
  span_id?: string | undefined;
}

// Messages can be anything (a whole SQL statement, a response body); the ring keeps a bounded prefix.
const MAX_MESSAGE_CHARS = 1_000;

/**
 * The last `capacity` events, oldest overwritten first. A fixed array and a cursor: recording is one
 * assignment, and no ring-buffer package we could add is smaller than these lines.
 */
export class ErrorRing {
  readonly #slots: (ErrorEvent | undefined)[];
  #next = 0;
  #size = 0;

  constructor(readonly capacity: number) {
    this.#slots = new Array<ErrorEvent | undefined>(capacity);
  }

  record(event: ErrorEvent): void {
    if (event.message.length > MAX_MESSAGE_CHARS) {
      event = { ...event, message: event.message.slice(0, MAX_MESSAGE_CHARS) };
    }
    this.#slots[this.#next] = event;
    this.#next = (this.#next + 1) % this.capacity;
    this.#size = Math.min(this.#size + 1, this.capacity);
  }

  get size(): number {
    return this.#size;
  }

  /** Every kept event, oldest first. */
  snapshot(): ErrorEvent[] {
    const start = (this.#next - this.#size + this.capacity) % this.capacity;
    const out: ErrorEvent[] = [];
    for (let i = 0; i < this.#size; i++) out.push(this.#slots[(start + i) % this.capacity]!);
    return out;
  }
}
