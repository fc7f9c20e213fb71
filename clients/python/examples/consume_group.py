"""A member of an Event Horizon consumer group, with the generated Python client.

    PYTHONPATH=clients/python python3 clients/python/examples/consume_group.py ADDRESS GROUP [SUBTREE]

With SUBTREE, creates GROUP over that subtree first (from the beginning of the feed; an existing
group is fine). Then joins GROUP with Consume and handles each delivery (here: prints it as one
JSON line), acks what it handled in batches, and on SIGINT or SIGTERM stops cleanly: no new
deliveries, the last acks sent, then {"stopped": true, "acked": n}. Run it twice and the two
processes share the group's partitions (docs/consumer-groups.md).

A stream has at most one unacked entry in the whole group, so a handler sees each stream in
version order; acks are batched (every ACK_EVERY_S, or at ACK_BATCH entries) because each Ack is
a call, and the stream's next entry waits for its predecessor's ack.
"""
import json
import signal
import sys
import threading

import grpc

from eventhorizon.v1 import eventhorizon_pb2 as pb
from eventhorizon.v1 import eventhorizon_pb2_grpc as rpc

ACK_BATCH = 50
ACK_EVERY_S = 0.05


def emit(value):
    print(json.dumps(value), flush=True)


def create_group(stub, group, subtree):
    try:
        stub.CreateConsumerGroup(
            pb.CreateConsumerGroupRequest(name=group, selector=pb.FeedSelector(stream=subtree)), timeout=10
        )
    except grpc.RpcError as error:
        if error.code() != grpc.StatusCode.ALREADY_EXISTS:
            raise


class Acker:
    """Collects the positions handled and acks them in batches, from a thread of its own."""

    def __init__(self, stub, group):
        self.stub, self.group = stub, group
        self.member_id = ""
        self.pending = []
        self.acked = 0
        self.failed = False
        self.lock = threading.Condition()
        self.closing = False
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def add(self, position):
        with self.lock:
            self.pending.append(position)
            if len(self.pending) >= ACK_BATCH:
                self.lock.notify()

    def close(self):
        """Sends what is left and waits for it."""
        with self.lock:
            self.closing = True
            self.lock.notify()
        self.thread.join()

    def _run(self):
        while True:
            with self.lock:
                if not self.closing and len(self.pending) < ACK_BATCH:
                    self.lock.wait(ACK_EVERY_S)
                batch, self.pending = self.pending, []
                closing = self.closing
            if batch:
                # Acks go on the channel of the member's Consume call: they reach the same server.
                try:
                    answer = self.stub.Ack(pb.AckRequest(group=self.group, member_id=self.member_id, positions=batch), timeout=10)
                    self.acked += answer.acked
                except grpc.RpcError as error:
                    # Left unacked: the group delivers these entries again after their ack wait.
                    print(f"consume_group: Ack failed: {error.code().name} {error.details()}", file=sys.stderr, flush=True)
                    self.failed = True
            if closing:
                return


def main(argv):
    if len(argv) < 3:
        raise SystemExit("usage: consume_group.py ADDRESS GROUP [SUBTREE]")
    address, group = argv[1], argv[2]
    with grpc.insecure_channel(address) as channel:
        stub = rpc.EventHorizonStub(channel)
        if len(argv) > 3:
            create_group(stub, group, argv[3])

        call = stub.Consume(pb.ConsumeRequest(group=group, member_name="python-example"))
        stopping = threading.Event()

        def stop(_signal, _frame):
            # Leave: ending the call frees this member's partitions at once; the entries it holds
            # stay its own until acked (below) or until their ack wait ends.
            stopping.set()
            call.cancel()

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)

        acker = Acker(stub, group)
        try:
            for message in call:
                kind = message.WhichOneof("message")
                if kind == "joined":
                    acker.member_id = message.joined.member_id
                    emit({"joined": message.joined.member_id})
                elif kind == "assignment":
                    emit({"assignment": list(message.assignment.partitions)})
                elif kind == "delivery":
                    delivery = message.delivery
                    entry = delivery.entry
                    # The handler: a real one would update a read model, idempotently (the group
                    # delivers at least once), keyed by stream and version.
                    emit({
                        "entry": {
                            "stream": entry.stream,
                            "version": entry.version,
                            "position": entry.position,
                            "partition": delivery.partition,
                            "delivery_count": delivery.delivery_count,
                            "types": [event.type for event in entry.events],
                        }
                    })
                    acker.add(entry.position)
        except grpc.RpcError as error:
            if not (stopping.is_set() and error.code() == grpc.StatusCode.CANCELLED):
                raise
        finally:
            acker.close()
        emit({"stopped": True, "acked": acker.acked})
        if acker.failed:
            raise SystemExit(1)


if __name__ == "__main__":
    main(sys.argv)
