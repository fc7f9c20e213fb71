from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Iterable as _Iterable, Mapping as _Mapping, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor
DIRECTION_BACKWARD: Direction
DIRECTION_FORWARD: Direction
DIRECTION_UNSPECIFIED: Direction

class AckRequest(_message.Message):
    __slots__ = ["group", "member_id", "positions", "up_to"]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    POSITIONS_FIELD_NUMBER: _ClassVar[int]
    UP_TO_FIELD_NUMBER: _ClassVar[int]
    group: str
    member_id: str
    positions: _containers.RepeatedScalarFieldContainer[int]
    up_to: _containers.RepeatedCompositeFieldContainer[AckUpTo]
    def __init__(self, group: _Optional[str] = ..., member_id: _Optional[str] = ..., positions: _Optional[_Iterable[int]] = ..., up_to: _Optional[_Iterable[_Union[AckUpTo, _Mapping]]] = ...) -> None: ...

class AckResponse(_message.Message):
    __slots__ = ["acked", "ignored"]
    ACKED_FIELD_NUMBER: _ClassVar[int]
    IGNORED_FIELD_NUMBER: _ClassVar[int]
    acked: int
    ignored: int
    def __init__(self, acked: _Optional[int] = ..., ignored: _Optional[int] = ...) -> None: ...

class AckUpTo(_message.Message):
    __slots__ = ["partition", "position"]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    partition: int
    position: int
    def __init__(self, partition: _Optional[int] = ..., position: _Optional[int] = ...) -> None: ...

class AppendRequest(_message.Message):
    __slots__ = ["events", "expected_version", "request_id", "stream"]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    EXPECTED_VERSION_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    expected_version: int
    request_id: str
    stream: str
    def __init__(self, stream: _Optional[str] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., expected_version: _Optional[int] = ..., request_id: _Optional[str] = ...) -> None: ...

class AppendResponse(_message.Message):
    __slots__ = ["cursor", "deduplicated"]
    CURSOR_FIELD_NUMBER: _ClassVar[int]
    DEDUPLICATED_FIELD_NUMBER: _ClassVar[int]
    cursor: Cursor
    deduplicated: bool
    def __init__(self, cursor: _Optional[_Union[Cursor, _Mapping]] = ..., deduplicated: bool = ...) -> None: ...

class CaughtUp(_message.Message):
    __slots__ = ["version"]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    version: int
    def __init__(self, version: _Optional[int] = ...) -> None: ...

class ConsumeRequest(_message.Message):
    __slots__ = ["group", "max_deliveries_per_message", "member_name"]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MAX_DELIVERIES_PER_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    MEMBER_NAME_FIELD_NUMBER: _ClassVar[int]
    group: str
    max_deliveries_per_message: int
    member_name: str
    def __init__(self, group: _Optional[str] = ..., member_name: _Optional[str] = ..., max_deliveries_per_message: _Optional[int] = ...) -> None: ...

class ConsumeResponse(_message.Message):
    __slots__ = ["assignment", "deliveries", "delivery", "heartbeat", "joined"]
    ASSIGNMENT_FIELD_NUMBER: _ClassVar[int]
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    DELIVERY_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    JOINED_FIELD_NUMBER: _ClassVar[int]
    assignment: ConsumerAssignment
    deliveries: ConsumerDeliveryBatch
    delivery: ConsumerDelivery
    heartbeat: Heartbeat
    joined: ConsumerJoined
    def __init__(self, joined: _Optional[_Union[ConsumerJoined, _Mapping]] = ..., assignment: _Optional[_Union[ConsumerAssignment, _Mapping]] = ..., delivery: _Optional[_Union[ConsumerDelivery, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., deliveries: _Optional[_Union[ConsumerDeliveryBatch, _Mapping]] = ...) -> None: ...

class ConsumerAssignment(_message.Message):
    __slots__ = ["partitions"]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    partitions: _containers.RepeatedScalarFieldContainer[int]
    def __init__(self, partitions: _Optional[_Iterable[int]] = ...) -> None: ...

class ConsumerDelivery(_message.Message):
    __slots__ = ["delivery_count", "entry", "partition"]
    DELIVERY_COUNT_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    delivery_count: int
    entry: FeedEntry
    partition: int
    def __init__(self, entry: _Optional[_Union[FeedEntry, _Mapping]] = ..., partition: _Optional[int] = ..., delivery_count: _Optional[int] = ...) -> None: ...

class ConsumerDeliveryBatch(_message.Message):
    __slots__ = ["deliveries"]
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    deliveries: _containers.RepeatedCompositeFieldContainer[ConsumerDelivery]
    def __init__(self, deliveries: _Optional[_Iterable[_Union[ConsumerDelivery, _Mapping]]] = ...) -> None: ...

class ConsumerGroup(_message.Message):
    __slots__ = ["created_at", "name", "selector", "settings", "start_position"]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    START_POSITION_FIELD_NUMBER: _ClassVar[int]
    created_at: _timestamp_pb2.Timestamp
    name: str
    selector: FeedSelector
    settings: ConsumerGroupSettings
    start_position: int
    def __init__(self, name: _Optional[str] = ..., selector: _Optional[_Union[FeedSelector, _Mapping]] = ..., settings: _Optional[_Union[ConsumerGroupSettings, _Mapping]] = ..., start_position: _Optional[int] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ConsumerGroupMember(_message.Message):
    __slots__ = ["in_flight", "joined_at", "member_id", "member_name", "partitions", "server_id"]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    JOINED_AT_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    MEMBER_NAME_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    SERVER_ID_FIELD_NUMBER: _ClassVar[int]
    in_flight: int
    joined_at: _timestamp_pb2.Timestamp
    member_id: str
    member_name: str
    partitions: _containers.RepeatedScalarFieldContainer[int]
    server_id: str
    def __init__(self, member_id: _Optional[str] = ..., member_name: _Optional[str] = ..., partitions: _Optional[_Iterable[int]] = ..., in_flight: _Optional[int] = ..., joined_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., server_id: _Optional[str] = ...) -> None: ...

class ConsumerGroupPartition(_message.Message):
    __slots__ = ["in_flight", "lag_entries", "lag_seconds", "member_id", "partition", "position", "server_id"]
    IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    LAG_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    LAG_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    PARTITION_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    SERVER_ID_FIELD_NUMBER: _ClassVar[int]
    in_flight: int
    lag_entries: int
    lag_seconds: float
    member_id: str
    partition: int
    position: int
    server_id: str
    def __init__(self, partition: _Optional[int] = ..., position: _Optional[int] = ..., member_id: _Optional[str] = ..., in_flight: _Optional[int] = ..., lag_entries: _Optional[int] = ..., lag_seconds: _Optional[float] = ..., server_id: _Optional[str] = ...) -> None: ...

class ConsumerGroupSettings(_message.Message):
    __slots__ = ["ack_wait_ms", "max_deliveries", "max_in_flight", "partitions"]
    ACK_WAIT_MS_FIELD_NUMBER: _ClassVar[int]
    MAX_DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    MAX_IN_FLIGHT_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    ack_wait_ms: int
    max_deliveries: int
    max_in_flight: int
    partitions: int
    def __init__(self, partitions: _Optional[int] = ..., ack_wait_ms: _Optional[int] = ..., max_deliveries: _Optional[int] = ..., max_in_flight: _Optional[int] = ...) -> None: ...

class ConsumerJoined(_message.Message):
    __slots__ = ["group", "member_id"]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    MEMBER_ID_FIELD_NUMBER: _ClassVar[int]
    group: ConsumerGroup
    member_id: str
    def __init__(self, member_id: _Optional[str] = ..., group: _Optional[_Union[ConsumerGroup, _Mapping]] = ...) -> None: ...

class CreateConsumerGroupRequest(_message.Message):
    __slots__ = ["after_position", "from_now", "name", "selector", "settings"]
    AFTER_POSITION_FIELD_NUMBER: _ClassVar[int]
    FROM_NOW_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    after_position: int
    from_now: bool
    name: str
    selector: FeedSelector
    settings: ConsumerGroupSettings
    def __init__(self, name: _Optional[str] = ..., selector: _Optional[_Union[FeedSelector, _Mapping]] = ..., after_position: _Optional[int] = ..., from_now: bool = ..., settings: _Optional[_Union[ConsumerGroupSettings, _Mapping]] = ...) -> None: ...

class CreateConsumerGroupResponse(_message.Message):
    __slots__ = ["group"]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    group: ConsumerGroup
    def __init__(self, group: _Optional[_Union[ConsumerGroup, _Mapping]] = ...) -> None: ...

class CreateStreamRequest(_message.Message):
    __slots__ = ["create_parents", "events", "request_id", "stream"]
    CREATE_PARENTS_FIELD_NUMBER: _ClassVar[int]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    create_parents: bool
    events: _containers.RepeatedCompositeFieldContainer[Event]
    request_id: str
    stream: str
    def __init__(self, stream: _Optional[str] = ..., create_parents: bool = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., request_id: _Optional[str] = ...) -> None: ...

class CreateStreamResponse(_message.Message):
    __slots__ = ["created", "deduplicated", "head"]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    DEDUPLICATED_FIELD_NUMBER: _ClassVar[int]
    HEAD_FIELD_NUMBER: _ClassVar[int]
    created: _containers.RepeatedScalarFieldContainer[str]
    deduplicated: bool
    head: Cursor
    def __init__(self, head: _Optional[_Union[Cursor, _Mapping]] = ..., created: _Optional[_Iterable[str]] = ..., deduplicated: bool = ...) -> None: ...

class Cursor(_message.Message):
    __slots__ = ["stream", "version"]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    stream: str
    version: int
    def __init__(self, stream: _Optional[str] = ..., version: _Optional[int] = ...) -> None: ...

class DeleteConsumerGroupRequest(_message.Message):
    __slots__ = ["name"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DeleteConsumerGroupResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class DeleteSnapshotRequest(_message.Message):
    __slots__ = ["perspective", "stream"]
    PERSPECTIVE_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    perspective: str
    stream: str
    def __init__(self, stream: _Optional[str] = ..., perspective: _Optional[str] = ...) -> None: ...

class DeleteSnapshotResponse(_message.Message):
    __slots__ = ["deleted"]
    DELETED_FIELD_NUMBER: _ClassVar[int]
    deleted: bool
    def __init__(self, deleted: bool = ...) -> None: ...

class DescribeConsumerGroupRequest(_message.Message):
    __slots__ = ["name"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    name: str
    def __init__(self, name: _Optional[str] = ...) -> None: ...

class DescribeConsumerGroupResponse(_message.Message):
    __slots__ = ["group", "head_position", "members", "parked", "parked_count", "partitions", "read_position"]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    HEAD_POSITION_FIELD_NUMBER: _ClassVar[int]
    MEMBERS_FIELD_NUMBER: _ClassVar[int]
    PARKED_COUNT_FIELD_NUMBER: _ClassVar[int]
    PARKED_FIELD_NUMBER: _ClassVar[int]
    PARTITIONS_FIELD_NUMBER: _ClassVar[int]
    READ_POSITION_FIELD_NUMBER: _ClassVar[int]
    group: ConsumerGroup
    head_position: int
    members: _containers.RepeatedCompositeFieldContainer[ConsumerGroupMember]
    parked: _containers.RepeatedCompositeFieldContainer[ParkedEntry]
    parked_count: int
    partitions: _containers.RepeatedCompositeFieldContainer[ConsumerGroupPartition]
    read_position: int
    def __init__(self, group: _Optional[_Union[ConsumerGroup, _Mapping]] = ..., partitions: _Optional[_Iterable[_Union[ConsumerGroupPartition, _Mapping]]] = ..., members: _Optional[_Iterable[_Union[ConsumerGroupMember, _Mapping]]] = ..., parked_count: _Optional[int] = ..., parked: _Optional[_Iterable[_Union[ParkedEntry, _Mapping]]] = ..., head_position: _Optional[int] = ..., read_position: _Optional[int] = ...) -> None: ...

class DescribeStreamRequest(_message.Message):
    __slots__ = ["stream"]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    stream: str
    def __init__(self, stream: _Optional[str] = ...) -> None: ...

class DescribeStreamResponse(_message.Message):
    __slots__ = ["bytes_stored", "child_count", "created_at", "head_version", "snapshot_perspectives", "stream"]
    BYTES_STORED_FIELD_NUMBER: _ClassVar[int]
    CHILD_COUNT_FIELD_NUMBER: _ClassVar[int]
    CREATED_AT_FIELD_NUMBER: _ClassVar[int]
    HEAD_VERSION_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_PERSPECTIVES_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    bytes_stored: int
    child_count: int
    created_at: _timestamp_pb2.Timestamp
    head_version: int
    snapshot_perspectives: _containers.RepeatedScalarFieldContainer[str]
    stream: str
    def __init__(self, stream: _Optional[str] = ..., head_version: _Optional[int] = ..., created_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., child_count: _Optional[int] = ..., bytes_stored: _Optional[int] = ..., snapshot_perspectives: _Optional[_Iterable[str]] = ...) -> None: ...

class Entry(_message.Message):
    __slots__ = ["events", "recorded_at", "version"]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    recorded_at: _timestamp_pb2.Timestamp
    version: int
    def __init__(self, version: _Optional[int] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., recorded_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class EntryBatch(_message.Message):
    __slots__ = ["entries"]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[Entry]
    def __init__(self, entries: _Optional[_Iterable[_Union[Entry, _Mapping]]] = ...) -> None: ...

class Event(_message.Message):
    __slots__ = ["content_type", "data", "id", "metadata", "occurred_at", "type"]
    class MetadataEntry(_message.Message):
        __slots__ = ["key", "value"]
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    METADATA_FIELD_NUMBER: _ClassVar[int]
    OCCURRED_AT_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    content_type: str
    data: bytes
    id: str
    metadata: _containers.ScalarMap[str, str]
    occurred_at: _timestamp_pb2.Timestamp
    type: str
    def __init__(self, id: _Optional[str] = ..., type: _Optional[str] = ..., data: _Optional[bytes] = ..., content_type: _Optional[str] = ..., metadata: _Optional[_Mapping[str, str]] = ..., occurred_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class FeedCheckpoint(_message.Message):
    __slots__ = ["position"]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    position: int
    def __init__(self, position: _Optional[int] = ...) -> None: ...

class FeedEntry(_message.Message):
    __slots__ = ["events", "position", "recorded_at", "stream", "version"]
    EVENTS_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    RECORDED_AT_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    events: _containers.RepeatedCompositeFieldContainer[Event]
    position: int
    recorded_at: _timestamp_pb2.Timestamp
    stream: str
    version: int
    def __init__(self, version: _Optional[int] = ..., events: _Optional[_Iterable[_Union[Event, _Mapping]]] = ..., recorded_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ..., stream: _Optional[str] = ..., position: _Optional[int] = ...) -> None: ...

class FeedEntryBatch(_message.Message):
    __slots__ = ["entries"]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[FeedEntry]
    def __init__(self, entries: _Optional[_Iterable[_Union[FeedEntry, _Mapping]]] = ...) -> None: ...

class FeedSelector(_message.Message):
    __slots__ = ["event_types", "exclude_descendants", "stream"]
    EVENT_TYPES_FIELD_NUMBER: _ClassVar[int]
    EXCLUDE_DESCENDANTS_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    event_types: _containers.RepeatedScalarFieldContainer[str]
    exclude_descendants: bool
    stream: str
    def __init__(self, stream: _Optional[str] = ..., exclude_descendants: bool = ..., event_types: _Optional[_Iterable[str]] = ...) -> None: ...

class GetSnapshotRequest(_message.Message):
    __slots__ = ["entries_after", "limit", "perspective", "stream"]
    ENTRIES_AFTER_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PERSPECTIVE_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    entries_after: bool
    limit: int
    perspective: str
    stream: str
    def __init__(self, stream: _Optional[str] = ..., perspective: _Optional[str] = ..., entries_after: bool = ..., limit: _Optional[int] = ...) -> None: ...

class GetSnapshotResponse(_message.Message):
    __slots__ = ["entries", "more", "next_version", "snapshot"]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    NEXT_VERSION_FIELD_NUMBER: _ClassVar[int]
    SNAPSHOT_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[Entry]
    more: bool
    next_version: int
    snapshot: Snapshot
    def __init__(self, snapshot: _Optional[_Union[Snapshot, _Mapping]] = ..., entries: _Optional[_Iterable[_Union[Entry, _Mapping]]] = ..., more: bool = ..., next_version: _Optional[int] = ...) -> None: ...

class Heartbeat(_message.Message):
    __slots__ = ["time"]
    TIME_FIELD_NUMBER: _ClassVar[int]
    time: _timestamp_pb2.Timestamp
    def __init__(self, time: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class ListChildrenRequest(_message.Message):
    __slots__ = ["limit", "page_token", "stream"]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    limit: int
    page_token: str
    stream: str
    def __init__(self, stream: _Optional[str] = ..., limit: _Optional[int] = ..., page_token: _Optional[str] = ...) -> None: ...

class ListChildrenResponse(_message.Message):
    __slots__ = ["children", "next_page_token"]
    CHILDREN_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    children: _containers.RepeatedScalarFieldContainer[str]
    next_page_token: str
    def __init__(self, children: _Optional[_Iterable[str]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class ListConsumerGroupsRequest(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class ListConsumerGroupsResponse(_message.Message):
    __slots__ = ["groups"]
    GROUPS_FIELD_NUMBER: _ClassVar[int]
    groups: _containers.RepeatedCompositeFieldContainer[ConsumerGroup]
    def __init__(self, groups: _Optional[_Iterable[_Union[ConsumerGroup, _Mapping]]] = ...) -> None: ...

class ParkedEntry(_message.Message):
    __slots__ = ["deliveries", "parked_at", "position", "reason", "stream", "version"]
    DELIVERIES_FIELD_NUMBER: _ClassVar[int]
    PARKED_AT_FIELD_NUMBER: _ClassVar[int]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    deliveries: int
    parked_at: _timestamp_pb2.Timestamp
    position: int
    reason: str
    stream: str
    version: int
    def __init__(self, position: _Optional[int] = ..., stream: _Optional[str] = ..., version: _Optional[int] = ..., deliveries: _Optional[int] = ..., reason: _Optional[str] = ..., parked_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class PutSnapshotRequest(_message.Message):
    __slots__ = ["content_type", "data", "perspective", "stream", "version"]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    PERSPECTIVE_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    content_type: str
    data: bytes
    perspective: str
    stream: str
    version: int
    def __init__(self, stream: _Optional[str] = ..., perspective: _Optional[str] = ..., version: _Optional[int] = ..., data: _Optional[bytes] = ..., content_type: _Optional[str] = ...) -> None: ...

class PutSnapshotResponse(_message.Message):
    __slots__ = ["stored", "stored_version"]
    STORED_FIELD_NUMBER: _ClassVar[int]
    STORED_VERSION_FIELD_NUMBER: _ClassVar[int]
    stored: bool
    stored_version: int
    def __init__(self, stored: bool = ..., stored_version: _Optional[int] = ...) -> None: ...

class ReadFeedRequest(_message.Message):
    __slots__ = ["after_position", "limit", "selector"]
    AFTER_POSITION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    after_position: int
    limit: int
    selector: FeedSelector
    def __init__(self, selector: _Optional[_Union[FeedSelector, _Mapping]] = ..., after_position: _Optional[int] = ..., limit: _Optional[int] = ...) -> None: ...

class ReadFeedResponse(_message.Message):
    __slots__ = ["entries", "head_position", "more", "next_after_position"]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    HEAD_POSITION_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    NEXT_AFTER_POSITION_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[FeedEntry]
    head_position: int
    more: bool
    next_after_position: int
    def __init__(self, entries: _Optional[_Iterable[_Union[FeedEntry, _Mapping]]] = ..., next_after_position: _Optional[int] = ..., more: bool = ..., head_position: _Optional[int] = ...) -> None: ...

class ReadRequest(_message.Message):
    __slots__ = ["direction", "from_version", "limit", "stream"]
    DIRECTION_FIELD_NUMBER: _ClassVar[int]
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    direction: Direction
    from_version: int
    limit: int
    stream: str
    def __init__(self, stream: _Optional[str] = ..., from_version: _Optional[int] = ..., limit: _Optional[int] = ..., direction: _Optional[_Union[Direction, str]] = ...) -> None: ...

class ReadResponse(_message.Message):
    __slots__ = ["entries", "head_version", "more", "next_version"]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    HEAD_VERSION_FIELD_NUMBER: _ClassVar[int]
    MORE_FIELD_NUMBER: _ClassVar[int]
    NEXT_VERSION_FIELD_NUMBER: _ClassVar[int]
    entries: _containers.RepeatedCompositeFieldContainer[Entry]
    head_version: int
    more: bool
    next_version: int
    def __init__(self, entries: _Optional[_Iterable[_Union[Entry, _Mapping]]] = ..., more: bool = ..., next_version: _Optional[int] = ..., head_version: _Optional[int] = ...) -> None: ...

class ResetConsumerGroupRequest(_message.Message):
    __slots__ = ["after_position", "name", "to_now"]
    AFTER_POSITION_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    TO_NOW_FIELD_NUMBER: _ClassVar[int]
    after_position: int
    name: str
    to_now: bool
    def __init__(self, name: _Optional[str] = ..., after_position: _Optional[int] = ..., to_now: bool = ...) -> None: ...

class ResetConsumerGroupResponse(_message.Message):
    __slots__ = ["position"]
    POSITION_FIELD_NUMBER: _ClassVar[int]
    position: int
    def __init__(self, position: _Optional[int] = ...) -> None: ...

class RotateStreamKeyRequest(_message.Message):
    __slots__ = ["stream"]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    stream: str
    def __init__(self, stream: _Optional[str] = ...) -> None: ...

class RotateStreamKeyResponse(_message.Message):
    __slots__ = ["dek_version"]
    DEK_VERSION_FIELD_NUMBER: _ClassVar[int]
    dek_version: int
    def __init__(self, dek_version: _Optional[int] = ...) -> None: ...

class ShredStreamRequest(_message.Message):
    __slots__ = ["stream"]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    stream: str
    def __init__(self, stream: _Optional[str] = ...) -> None: ...

class ShredStreamResponse(_message.Message):
    __slots__ = []
    def __init__(self) -> None: ...

class Snapshot(_message.Message):
    __slots__ = ["content_type", "data", "perspective", "stored_at", "version"]
    CONTENT_TYPE_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    PERSPECTIVE_FIELD_NUMBER: _ClassVar[int]
    STORED_AT_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    content_type: str
    data: bytes
    perspective: str
    stored_at: _timestamp_pb2.Timestamp
    version: int
    def __init__(self, perspective: _Optional[str] = ..., version: _Optional[int] = ..., data: _Optional[bytes] = ..., content_type: _Optional[str] = ..., stored_at: _Optional[_Union[_timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SubscribeFeedRequest(_message.Message):
    __slots__ = ["after_position", "checkpoint_every_entries", "checkpoint_interval_ms", "from_now", "max_entries_per_message", "selector"]
    AFTER_POSITION_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_EVERY_ENTRIES_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    FROM_NOW_FIELD_NUMBER: _ClassVar[int]
    MAX_ENTRIES_PER_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    SELECTOR_FIELD_NUMBER: _ClassVar[int]
    after_position: int
    checkpoint_every_entries: int
    checkpoint_interval_ms: int
    from_now: bool
    max_entries_per_message: int
    selector: FeedSelector
    def __init__(self, selector: _Optional[_Union[FeedSelector, _Mapping]] = ..., after_position: _Optional[int] = ..., from_now: bool = ..., checkpoint_every_entries: _Optional[int] = ..., checkpoint_interval_ms: _Optional[int] = ..., max_entries_per_message: _Optional[int] = ...) -> None: ...

class SubscribeFeedResponse(_message.Message):
    __slots__ = ["caught_up", "checkpoint", "entries", "entry", "heartbeat"]
    CAUGHT_UP_FIELD_NUMBER: _ClassVar[int]
    CHECKPOINT_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    caught_up: FeedCheckpoint
    checkpoint: FeedCheckpoint
    entries: FeedEntryBatch
    entry: FeedEntry
    heartbeat: Heartbeat
    def __init__(self, entry: _Optional[_Union[FeedEntry, _Mapping]] = ..., caught_up: _Optional[_Union[FeedCheckpoint, _Mapping]] = ..., checkpoint: _Optional[_Union[FeedCheckpoint, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., entries: _Optional[_Union[FeedEntryBatch, _Mapping]] = ...) -> None: ...

class SubscribeRequest(_message.Message):
    __slots__ = ["from_version", "max_entries_per_message", "stream"]
    FROM_VERSION_FIELD_NUMBER: _ClassVar[int]
    MAX_ENTRIES_PER_MESSAGE_FIELD_NUMBER: _ClassVar[int]
    STREAM_FIELD_NUMBER: _ClassVar[int]
    from_version: int
    max_entries_per_message: int
    stream: str
    def __init__(self, stream: _Optional[str] = ..., from_version: _Optional[int] = ..., max_entries_per_message: _Optional[int] = ...) -> None: ...

class SubscribeResponse(_message.Message):
    __slots__ = ["caught_up", "entries", "entry", "heartbeat"]
    CAUGHT_UP_FIELD_NUMBER: _ClassVar[int]
    ENTRIES_FIELD_NUMBER: _ClassVar[int]
    ENTRY_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    caught_up: CaughtUp
    entries: EntryBatch
    entry: Entry
    heartbeat: Heartbeat
    def __init__(self, entry: _Optional[_Union[Entry, _Mapping]] = ..., caught_up: _Optional[_Union[CaughtUp, _Mapping]] = ..., heartbeat: _Optional[_Union[Heartbeat, _Mapping]] = ..., entries: _Optional[_Union[EntryBatch, _Mapping]] = ...) -> None: ...

class UpdateConsumerGroupRequest(_message.Message):
    __slots__ = ["name", "settings"]
    NAME_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    settings: ConsumerGroupSettings
    def __init__(self, name: _Optional[str] = ..., settings: _Optional[_Union[ConsumerGroupSettings, _Mapping]] = ...) -> None: ...

class UpdateConsumerGroupResponse(_message.Message):
    __slots__ = ["group"]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    group: ConsumerGroup
    def __init__(self, group: _Optional[_Union[ConsumerGroup, _Mapping]] = ...) -> None: ...

class Direction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = []
