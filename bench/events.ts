import type { Event } from '../clients/ts/src/gen/eventhorizon/v1/eventhorizon';

/**
 * Typical JSON events of about 300 bytes: an order-placed event whose values come from
 * realistic vocabularies (a customer base, a catalogue, cities) and counters, as business events
 * do. They are not random bytes, which no store compresses, nor copies of one event, which every
 * store compresses to nothing.
 */

const CITIES = ['Lisbon', 'Porto', 'Madrid', 'Lyon', 'Berlin', 'Hamburg', 'Milan', 'Vienna', 'Prague', 'Ghent'];
const STREETS = ['Rua Augusta', 'Calle Mayor', 'Rue de la Paix', 'Hauptstrasse', 'Via Roma', 'Kerkstraat'];
const SKUS = Array.from({ length: 200 }, (_, i) => `SKU-${(10_000 + i * 37).toString(36).toUpperCase()}`);
const CHANNELS = ['web', 'ios', 'android', 'store'];

/** Deterministic pseudo-random numbers, so every run stores the same bytes. */
function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Makes a sequence of distinct, typical ~300-byte JSON documents. */
export class OrderEvents {
  private readonly random: () => number;
  private sequence = 0;

  constructor(seed = 42) {
    this.random = mulberry32(seed);
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)] as T;
  }

  /** The next JSON document, as bytes. */
  nextJson(): Buffer {
    const n = this.sequence++;
    const lines = 1 + Math.floor(this.random() * 2);
    const items = Array.from({ length: lines }, () => ({
      sku: this.pick(SKUS),
      qty: 1 + Math.floor(this.random() * 3),
      price: (199 + Math.floor(this.random() * 80) * 50) / 100,
    }));
    const total = items.reduce((sum, item) => sum + item.qty * item.price, 0);
    const document = {
      orderId: `ord-${(1_000_000 + n).toString()}`,
      customerId: `cus-${Math.floor(this.random() * 50_000).toString().padStart(6, '0')}`,
      channel: this.pick(CHANNELS),
      items,
      total: Math.round(total * 100) / 100,
      currency: 'EUR',
      shipTo: { street: `${this.pick(STREETS)} ${1 + Math.floor(this.random() * 200)}`, city: this.pick(CITIES), country: 'EU' },
      placedAt: new Date(Date.UTC(2026, 0, 1) + n * 1500).toISOString(),
    };
    return Buffer.from(JSON.stringify(document));
  }

  /** The next event as a client sends it: no id (the server assigns one), JSON data. */
  nextEvent(metadata: Record<string, string> = {}): Event {
    return { id: '', type: 'order.placed', data: this.nextJson(), contentType: 'application/json', metadata, occurredAt: undefined };
  }
}
