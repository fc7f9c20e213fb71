import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A fault-injecting HTTP proxy between a store and DynamoDB (Local): every request is forwarded,
 * or not, as a rule decides, so tests can make the network and the service misbehave the ways the
 * real ones do.
 */

/** What the proxy does with one request. */
export type Fault =
  /** Forwards the request and its reply unchanged. */
  | { kind: 'pass' }
  /** Closes the connection without forwarding or answering: the request never reached DynamoDB. */
  | { kind: 'drop' }
  /**
   * Waits, then forwards and answers. The request is forwarded even when the client gave up
   * meanwhile: a write can land after its sender timed out (a late write).
   */
  | { kind: 'delay'; ms: number }
  /** Neither forwards nor answers, keeping the connection open: packets lost on the way (a black hole). */
  | { kind: 'hang' }
  /** Answers 500 InternalServerError without forwarding. */
  | { kind: 'error500' }
  /** Answers 400 with a throttling error without forwarding (the SDK retries these with backoff). */
  | { kind: 'throttle'; type: ThrottlingType }
  /**
   * Forwards the request, waits for DynamoDB's reply, then closes the client's connection instead
   * of answering: the write happened, and its sender cannot know.
   */
  | { kind: 'resetAfterWrite' }
  /**
   * Forwards the request, then sends DynamoDB's status, headers and half its body and closes the
   * connection: the write happened, and the reply breaks off mid-way.
   */
  | { kind: 'truncate' }
  /** Answers with this status and body (not DynamoDB's shape: a load balancer's 502/503 page). */
  | { kind: 'raw'; status: number; body: string }
  /**
   * Forwards the request's headers (announcing its whole body) and its first `bytes` bytes, then
   * closes both connections: the request breaks off mid-body, as when its sender dies or the
   * network fails while a large write is on its way.
   */
  | { kind: 'cutRequest'; bytes: number };

export type FaultKind = Fault['kind'];
export type ThrottlingType = 'ThrottlingException' | 'ProvisionedThroughputExceededException';

/** What a rule sees of a request. */
export interface ProxiedRequest {
  /** The DynamoDB operation, from X-Amz-Target ("PutItem", "TransactWriteItems", ...). */
  operation: string;
  body: Buffer;
}

export type FaultRule = (request: ProxiedRequest) => Fault;

export const PASS: Fault = { kind: 'pass' };

/** Requests seen and faults injected, by operation and kind (for assertions and reports). */
export interface ProxyStats {
  requests: number;
  /** `${kind}` → count, over all operations. */
  faults: Record<string, number>;
  /** `${operation} ${kind}` → count. */
  byOperation: Record<string, number>;
  /**
   * Requests forwarded after their sender had given up (it timed out during a delay): each may
   * have written after its sender reported a failure.
   */
  late: number;
}

export class FaultProxy {
  private rule: FaultRule = () => PASS;
  private down = false;
  private readonly sockets = new Set<Socket>();
  private readonly agent = new http.Agent({ keepAlive: true });
  private stats: ProxyStats = emptyStats();
  /** Requests being handled (read, delayed or forwarded) and when the last one ended. */
  private inFlight = 0;
  private lastSettled = Date.now();

  private constructor(
    private readonly server: http.Server,
    private readonly upstream: URL,
    /** The proxy's own endpoint URL, for the store under test. */
    readonly endpoint: string,
  ) {}

  /** Starts a proxy to `upstream` (e.g. DynamoDB Local's endpoint) on a free loopback port. */
  static async start(upstream: string): Promise<FaultProxy> {
    const server = http.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    const { port } = server.address() as AddressInfo;
    const proxy = new FaultProxy(server, new URL(upstream), `http://127.0.0.1:${port}`);
    server.on('connection', (socket) => proxy.accept(socket));
    server.on('request', (request, response) => void proxy.handle(request, response));
    return proxy;
  }

  /** Decides each following request's fault. */
  setRule(rule: FaultRule): void {
    this.rule = rule;
  }

  /** Forwards everything unchanged from now on. */
  passAll(): void {
    this.rule = () => PASS;
  }

  /**
   * Down: every open connection is closed and every new one closed as soon as it is accepted, as
   * when DynamoDB is unreachable. Up again: connections are served by the rule.
   */
  setDown(down: boolean): void {
    this.down = down;
    if (down) for (const socket of this.sockets) socket.destroy();
  }

  /** The counts so far; `reset` starts new ones. */
  takeStats(reset = false): ProxyStats {
    const stats = this.stats;
    if (reset) this.stats = emptyStats();
    return stats;
  }

  /**
   * Resolves once no request has been in flight for `ms`: delayed requests have landed (or not)
   * and their senders have stopped retrying, so DynamoDB's contents no longer change.
   */
  async quiet(ms: number, timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.inFlight > 0 || Date.now() - this.lastSettled < ms) {
      if (Date.now() > deadline) throw new Error(`proxy: still ${this.inFlight} requests in flight after ${timeoutMs} ms`);
      await sleep(20);
    }
  }

  async close(): Promise<void> {
    for (const socket of this.sockets) socket.destroy();
    this.agent.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  private accept(socket: Socket): void {
    if (this.down) {
      socket.destroy();
      return;
    }
    this.sockets.add(socket);
    socket.once('close', () => this.sockets.delete(socket));
  }

  private async handle(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    this.inFlight++;
    try {
      await this.serve(request, response);
    } finally {
      this.inFlight--;
      this.lastSettled = Date.now();
    }
  }

  private async serve(request: http.IncomingMessage, response: http.ServerResponse): Promise<void> {
    let body: Buffer;
    try {
      body = await readBody(request);
    } catch {
      request.socket.destroy();
      return;
    }
    const target = request.headers['x-amz-target'];
    const operation = (Array.isArray(target) ? target[0] : target)?.split('.').pop() ?? 'unknown';
    const fault = this.down ? ({ kind: 'drop' } as const) : this.rule({ operation, body });
    this.count(operation, fault.kind);
    switch (fault.kind) {
      case 'drop':
        request.socket.destroy();
        return;
      case 'hang':
        // Not counted as in flight: it never reaches DynamoDB, and its sender gives up on its own.
        return;
      case 'error500':
        answerError(response, 500, 'InternalServerError', 'injected internal server error');
        return;
      case 'throttle':
        answerError(response, 400, fault.type, 'injected throttling');
        return;
      case 'delay':
        await sleep(fault.ms);
        break;
      case 'raw':
        response.writeHead(fault.status, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(fault.body) });
        response.end(fault.body);
        return;
      case 'cutRequest':
        await this.forwardPart(request, body.subarray(0, fault.bytes), body.length);
        request.socket.destroy();
        return;
      case 'pass':
      case 'resetAfterWrite':
      case 'truncate':
        break;
    }
    let reply: Reply;
    try {
      reply = await this.forward(request, body);
    } catch {
      // DynamoDB itself did not answer: so does the proxy.
      request.socket.destroy();
      return;
    }
    if (fault.kind === 'resetAfterWrite' || this.down) {
      request.socket.destroy();
      return;
    }
    if (response.destroyed || request.socket.destroyed) {
      this.stats.late++;
      return;
    }
    response.writeHead(reply.status, reply.headers);
    if (fault.kind === 'truncate') {
      response.write(reply.body.subarray(0, Math.floor(reply.body.length / 2)), () => request.socket.destroy());
      return;
    }
    response.end(reply.body);
  }

  private forward(request: http.IncomingMessage, body: Buffer): Promise<Reply> {
    return new Promise((resolve, reject) => {
      const upstream = http.request(
        {
          protocol: this.upstream.protocol,
          hostname: this.upstream.hostname,
          port: this.upstream.port,
          method: request.method,
          path: request.url,
          // The SDK signs its own Host header; DynamoDB Local does not check signatures.
          headers: { ...request.headers, 'content-length': String(body.length) },
          agent: this.agent,
        },
        (reply) => {
          readBody(reply).then(
            (replyBody) => {
              const headers = { ...reply.headers };
              // The body is re-sent whole; its length is known.
              delete headers['transfer-encoding'];
              headers['content-length'] = String(replyBody.length);
              resolve({ status: reply.statusCode ?? 502, headers, body: replyBody });
            },
            reject,
          );
        },
      );
      upstream.once('error', reject);
      upstream.end(body);
    });
  }

  /**
   * Sends DynamoDB the request's headers, announcing `length` bytes of body, and `part` of it, then
   * closes the connection once `part` has left: DynamoDB gets a request that ends early.
   */
  private forwardPart(request: http.IncomingMessage, part: Buffer, length: number): Promise<void> {
    return new Promise((resolve) => {
      const upstream = http.request({
        protocol: this.upstream.protocol,
        hostname: this.upstream.hostname,
        port: this.upstream.port,
        method: request.method,
        path: request.url,
        headers: { ...request.headers, 'content-length': String(length) },
        // A connection of its own, never reused: it is destroyed mid-request.
        agent: false,
      });
      upstream.once('error', () => resolve());
      upstream.once('close', () => resolve());
      upstream.write(part, () => {
        // Give DynamoDB a moment to read what arrived, as a peer that dies mid-send would.
        setTimeout(() => upstream.destroy(), 50);
      });
    });
  }

  private count(operation: string, kind: FaultKind): void {
    this.stats.requests++;
    if (kind === 'pass') return;
    this.stats.faults[kind] = (this.stats.faults[kind] ?? 0) + 1;
    const key = `${operation} ${kind}`;
    this.stats.byOperation[key] = (this.stats.byOperation[key] ?? 0) + 1;
  }
}

interface Reply {
  status: number;
  headers: http.OutgoingHttpHeaders;
  body: Buffer;
}

function emptyStats(): ProxyStats {
  return { requests: 0, faults: {}, byOperation: {}, late: 0 };
}

function readBody(stream: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    stream.on('data', (chunk: Buffer) => chunks.push(chunk));
    stream.once('end', () => resolve(Buffer.concat(chunks)));
    stream.once('error', reject);
    stream.once('aborted', () => reject(new Error('aborted')));
  });
}

/** An error answer shaped as DynamoDB sends it (JSON 1.0 protocol), which the AWS SDK parses. */
function answerError(response: http.ServerResponse, status: number, type: string, message: string): void {
  const body = JSON.stringify({ __type: `com.amazonaws.dynamodb.v20120810#${type}`, message });
  response.writeHead(status, {
    'content-type': 'application/x-amz-json-1.0',
    'x-amzn-errortype': type,
    'x-amzn-requestid': 'injected-fault',
    'content-length': Buffer.byteLength(body),
  });
  response.end(body);
}
