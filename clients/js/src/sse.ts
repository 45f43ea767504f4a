// A Server-Sent Events reader on top of fetch (streamed body), so the room list updates work the
// same in browsers and in Node 20, which has fetch but no EventSource.

export interface SseEvent {
  event: string;
  data: string;
  id: string;
}

/** Splits a text/event-stream body into events; `retry:` fields go to `onRetry`. */
export class SseParser {
  private buffer = '';
  private event = '';
  private data: string[] = [];
  private id = '';

  constructor(private readonly onEvent: (ev: SseEvent) => void, private readonly onRetry: (ms: number) => void) {}

  push(chunk: string): void {
    this.buffer += chunk;
    let newline = this.buffer.search(/\r\n|\r|\n/);
    while (newline >= 0) {
      const line = this.buffer.slice(0, newline);
      const skip = this.buffer.startsWith('\r\n', newline) ? 2 : 1;
      this.buffer = this.buffer.slice(newline + skip);
      this.line(line);
      newline = this.buffer.search(/\r\n|\r|\n/);
    }
  }

  private line(line: string): void {
    if (line === '') {
      if (this.data.length) this.onEvent({ event: this.event || 'message', data: this.data.join('\n'), id: this.id });
      this.event = '';
      this.data = [];
      return;
    }
    if (line.startsWith(':')) return;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    if (field === 'event') this.event = value;
    else if (field === 'data') this.data.push(value);
    else if (field === 'id') this.id = value;
    else if (field === 'retry' && /^\d+$/.test(value)) this.onRetry(Number(value));
  }
}
