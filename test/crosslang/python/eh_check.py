"""Cross-language check: drives Event Horizon through the generated Python client.

Run with Debian's /usr/bin/python3 and PYTHONPATH=clients/python. Each command prints JSON lines
on stdout for test/crosslang/crosslang.test.ts to check:

  append ADDRESS STREAM COUNT     appends COUNT entries, prints {"appended": [versions...]}
  read ADDRESS STREAM             prints {"entries": [...]} read with Read from version 0
  subscribe ADDRESS STREAM COUNT  prints {"caught_up": v} when live, one {"entry": ...} per entry
                                  from version 0, and stops after COUNT entries
  conflict ADDRESS STREAM         appends with a wrong expected_version, prints the ErrorInfo
  readfeed ADDRESS SUBTREE LIMIT POSITION_FILE [TYPE...]
                                  reads the feed of SUBTREE with ReadFeed, LIMIT entries a page,
                                  after the position stored in POSITION_FILE (0 when there is
                                  none), only events of the TYPEs (exact or "prefix.*") when
                                  given; stores how far it read and prints {"entries": [...],
                                  "pages": n, "position": stored}
"""
import json
import os
import sys

import grpc
from google.rpc import error_details_pb2, status_pb2

from eventhorizon.v1 import eventhorizon_pb2 as pb
from eventhorizon.v1 import eventhorizon_pb2_grpc as rpc


def emit(value):
    print(json.dumps(value), flush=True)


def entry_json(entry):
    return {
        "version": entry.version,
        "events": [{"type": e.type, "data": json.loads(e.data.decode("utf-8"))} for e in entry.events],
    }


def append(stub, stream, count):
    versions = []
    for n in range(count):
        event = pb.Event(
            type="xlang.python",
            data=json.dumps({"n": n, "from": "python"}).encode("utf-8"),
            content_type="application/json",
        )
        response = stub.Append(pb.AppendRequest(stream=stream, events=[event]), timeout=10)
        versions.append(response.cursor.version)
    emit({"appended": versions})


def read(stub, stream):
    response = stub.Read(pb.ReadRequest(stream=stream, from_version=0), timeout=10)
    emit({"entries": [entry_json(entry) for entry in response.entries], "head": response.head_version})


def subscribe(stub, stream, count):
    seen = 0
    call = stub.Subscribe(pb.SubscribeRequest(stream=stream, from_version=0))
    for message in call:
        kind = message.WhichOneof("message")
        if kind == "caught_up":
            emit({"caught_up": message.caught_up.version})
        elif kind == "entry":
            emit({"entry": entry_json(message.entry)})
            seen += 1
        if seen >= count:
            call.cancel()
            return


def feed_entry_json(entry):
    return {
        "stream": entry.stream,
        "version": entry.version,
        "position": entry.position,
        "types": [event.type for event in entry.events],
    }


def load_position(path):
    """The stored feed position: 0 (the beginning of the feed) when there is none yet."""
    try:
        with open(path, encoding="utf-8") as file:
            return int(file.read())
    except FileNotFoundError:
        return 0


def store_position(path, position):
    """Replaces the stored feed position at once (write, then rename)."""
    with open(path + ".tmp", "w", encoding="utf-8") as file:
        file.write(f"{position}\n")
    os.replace(path + ".tmp", path)


def read_feed(stub, subtree, limit, position_file, event_types):
    """A batch job over the feed: reads every page after the stored position, then stores how far
    it read (next_after_position, which also moves past entries the type filter skipped)."""
    position = load_position(position_file)
    selector = pb.FeedSelector(stream=subtree, event_types=event_types)
    entries, pages = [], 0
    while True:
        page = stub.ReadFeed(pb.ReadFeedRequest(selector=selector, after_position=position, limit=limit), timeout=10)
        pages += 1
        entries.extend(feed_entry_json(entry) for entry in page.entries)
        position = page.next_after_position
        store_position(position_file, position)
        if not page.more:
            break
    emit({"entries": entries, "pages": pages, "position": position})


def error_info(error):
    """The google.rpc.ErrorInfo the server put in the grpc-status-details-bin trailer."""
    for key, value in error.trailing_metadata() or ():
        if key == "grpc-status-details-bin":
            status = status_pb2.Status.FromString(value)
            for detail in status.details:
                if detail.Is(error_details_pb2.ErrorInfo.DESCRIPTOR):
                    info = error_details_pb2.ErrorInfo()
                    detail.Unpack(info)
                    return info
    return None


def conflict(stub, stream):
    event = pb.Event(type="xlang.python", data=b"{}")
    try:
        stub.Append(pb.AppendRequest(stream=stream, events=[event], expected_version=999), timeout=10)
    except grpc.RpcError as error:
        info = error_info(error)
        emit({
            "code": error.code().name,
            "reason": info.reason if info else None,
            "domain": info.domain if info else None,
            "actual_version": info.metadata.get("actual_version") if info else None,
        })
        return
    emit({"code": "OK"})


def main(argv):
    command, address, stream = argv[1], argv[2], argv[3]
    with grpc.insecure_channel(address) as channel:
        stub = rpc.EventHorizonStub(channel)
        if command == "append":
            append(stub, stream, int(argv[4]))
        elif command == "read":
            read(stub, stream)
        elif command == "subscribe":
            subscribe(stub, stream, int(argv[4]))
        elif command == "conflict":
            conflict(stub, stream)
        elif command == "readfeed":
            read_feed(stub, stream, int(argv[4]), argv[5], argv[6:])
        else:
            raise SystemExit(f"unknown command {command}")


if __name__ == "__main__":
    main(sys.argv)
