import type { DeepPartial, Event } from '../../clients/ts/src/gen/eventhorizon/v1/eventhorizon';
import { jsonEvent } from './server';

/**
 * A typical JSON event of about 300 bytes (an order with two line items), for cost tests and
 * benchmarks: similar to its neighbours, as real events of one stream are.
 */
export function typicalEvent(i: number): DeepPartial<Event> {
  return jsonEvent('order.placed', {
    orderId: `ord-${100000 + i}`,
    customerId: `cus-${(i * 7919) % 100000}`,
    placedAt: new Date(Date.UTC(2026, 0, 1, 0, 0, i)).toISOString(),
    currency: 'EUR',
    total: 129.9 + i,
    items: [
      { sku: `SKU-${i % 97}`, quantity: 1 + (i % 3), price: 49.95 },
      { sku: `SKU-${(i + 13) % 97}`, quantity: 1, price: 29.99 },
    ],
    shipping: { method: 'standard', country: 'DE', postcode: `${10000 + (i % 89999)}` },
  });
}
