"""Which Delta tables the lean log (`lakehouse._log`) may read and write: the one protocol check.

A Delta table announces what a reader and a writer must understand in its `protocol` action: legacy
`minReaderVersion`/`minWriterVersion` (each version implies a fixed set of features), or, from reader 3 /
writer 7, explicit `readerFeatures`/`writerFeatures` lists (Delta PROTOCOL.md, "Table Features"). The lean
reader turns data files into rows with pyarrow and nothing else, so it may read a table only when every reader
feature is in `READER_FEATURES`; the lean writer writes plain appends, removes and compactions, so it may write
only when every writer feature is in `WRITER_FEATURES` *and* none of the features whose rules it does not
enforce is active (an `appendOnly` table, a CHECK constraint, a generated column, ...). Anything else is refused
with `UnsupportedTableFeatureError` naming the feature, never misread or written wrongly.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from typing import Any

from .errors import UnsupportedTableFeatureError

MAX_READER_VERSION = 3
MAX_WRITER_VERSION = 7

READER_FEATURES = frozenset({"columnMapping", "timestampNtz", "vacuumProtocolCheck"})
"""Reader features the lean reader handles. `columnMapping` only while `delta.columnMapping.mode` is `none`;
`timestampNtz` is a type pyarrow reads as is; `vacuumProtocolCheck` constrains VACUUM, which we do not run."""

WRITER_FEATURES = frozenset(
    {
        "appendOnly",
        "changeDataFeed",
        "checkConstraints",
        "columnMapping",
        "generatedColumns",
        "identityColumns",
        "invariants",
        "timestampNtz",
        "vacuumProtocolCheck",
    }
)
"""Writer features the lean writer honours, most of them by refusing to write while the feature is active
(see `_active_writer_features`). Every other writer feature (deletionVectors, rowTracking, domainMetadata,
inCommitTimestamp, v2Checkpoint, clustering, icebergCompat*, typeWidening, allowColumnDefaults, variantType,
checkpointProtection, catalogManaged, ...) is refused outright."""

_LEGACY_READER = {1: frozenset(), 2: frozenset({"columnMapping"})}
_LEGACY_WRITER = {
    1: frozenset(),
    2: frozenset({"appendOnly", "invariants"}),
    3: frozenset({"appendOnly", "invariants", "checkConstraints"}),
    4: frozenset({"appendOnly", "invariants", "checkConstraints", "changeDataFeed", "generatedColumns"}),
    5: frozenset(
        {"appendOnly", "invariants", "checkConstraints", "changeDataFeed", "generatedColumns", "columnMapping"}
    ),
    6: frozenset(
        {
            "appendOnly",
            "invariants",
            "checkConstraints",
            "changeDataFeed",
            "generatedColumns",
            "columnMapping",
            "identityColumns",
        }
    ),
}


def reader_features(protocol: Mapping[str, Any]) -> frozenset[str]:
    """The reader features a protocol action requires (explicit list from reader 3, implied before)."""
    version = int(protocol.get("minReaderVersion") or 1)
    if version >= 3:
        return frozenset(protocol.get("readerFeatures") or ())
    return _LEGACY_READER.get(version, frozenset())


def writer_features(protocol: Mapping[str, Any]) -> frozenset[str]:
    """The writer features a protocol action requires (explicit list from writer 7, implied before)."""
    version = int(protocol.get("minWriterVersion") or 1)
    if version >= 7:
        return frozenset(protocol.get("writerFeatures") or ())
    return _LEGACY_WRITER.get(version, frozenset())


def _check_protocol(
    table: str, operation: str, version: int, max_version: int, required: frozenset[str], supported: frozenset[str]
) -> None:
    """The reader (or writer) half of the protocol: a known version, and only features we honour."""
    role = "reader" if operation == "read" else "writer"
    if version > max_version:
        raise UnsupportedTableFeatureError(
            table,
            f"min{role.title()}Version={version}",
            operation,
            f"the highest {role} version we know is {max_version}",
        )
    unknown = sorted(required - supported)
    if unknown:
        raise UnsupportedTableFeatureError(
            table, unknown[0], operation, f"{role} features {unknown}; supported: {sorted(supported)}"
        )


def check_readable(table: str, protocol: Mapping[str, Any] | None, metadata: Mapping[str, Any] | None) -> None:
    """Raise UnsupportedTableFeatureError unless the lean reader reads this table correctly."""
    if protocol is None:
        return
    _check_protocol(
        table,
        "read",
        int(protocol.get("minReaderVersion") or 1),
        MAX_READER_VERSION,
        reader_features(protocol),
        READER_FEATURES,
    )
    if metadata is not None:
        mode = _config(metadata).get("delta.columnMapping.mode", "none")
        if mode != "none":
            raise UnsupportedTableFeatureError(
                table,
                "columnMapping",
                "read",
                f"delta.columnMapping.mode = {mode!r}: data files hold physical "
                "column names the lean reader does not map",
            )
        if metadata.get("partitionColumns"):
            raise UnsupportedTableFeatureError(
                table,
                "partitionColumns",
                "read",
                f"partitioned by {list(metadata['partitionColumns'])}: the lean "
                "reader does not rebuild partition values from file paths",
            )


def check_writable(table: str, protocol: Mapping[str, Any] | None, metadata: Mapping[str, Any] | None) -> None:
    """Raise UnsupportedTableFeatureError unless the lean writer may commit to this table."""
    check_readable(table, protocol, metadata)
    if protocol is None:
        return
    _check_protocol(
        table,
        "write",
        int(protocol.get("minWriterVersion") or 1),
        MAX_WRITER_VERSION,
        writer_features(protocol),
        WRITER_FEATURES,
    )
    if metadata is not None:
        for feature, detail in _active_writer_features(metadata):
            raise UnsupportedTableFeatureError(table, feature, "write", detail)


def check_add(table: str, add: Mapping[str, Any]) -> None:
    """Refuse a data file the lean reader would misread (one with a deletion vector)."""
    if add.get("deletionVector"):
        raise UnsupportedTableFeatureError(
            table,
            "deletionVectors",
            "read",
            f"data file {add.get('path')!r} has a deletion vector; its rows would be read as if none were deleted",
        )


def _active_writer_features(metadata: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(feature, why) for each feature whose rules the lean writer would break if it wrote to this table."""
    config = _config(metadata)
    if config.get("delta.appendOnly", "false").lower() == "true":
        yield "appendOnly", "delta.appendOnly = true, and the lean writer removes and rewrites files"
    constraints = sorted(k for k in config if k.startswith("delta.constraints."))
    if constraints:
        yield "checkConstraints", f"CHECK constraints {constraints} are not evaluated by the lean writer"
    if config.get("delta.enableChangeDataFeed", "false").lower() == "true":
        yield "changeDataFeed", "delta.enableChangeDataFeed = true, and the lean writer writes no change data"
    for name, meta in _field_metadata(metadata):
        if "delta.invariants" in meta:
            yield "invariants", f"column {name!r} has an invariant the lean writer does not check"
        if "delta.generationExpression" in meta:
            yield "generatedColumns", f"column {name!r} is generated, and the lean writer does not compute it"
        if any(k.startswith("delta.identity.") for k in meta):
            yield "identityColumns", f"column {name!r} is an identity column the lean writer does not fill"


def _config(metadata: Mapping[str, Any]) -> Mapping[str, str]:
    return metadata.get("configuration") or {}


def _field_metadata(metadata: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(dotted column name, field metadata) for every field of the schema, nested structs included."""
    try:
        schema = json.loads(metadata.get("schemaString") or "{}")
    except json.JSONDecodeError:
        return
    stack: list[tuple[str, Any]] = [("", schema)]
    while stack:
        prefix, node = stack.pop()
        if not isinstance(node, dict):
            continue
        for f in node.get("fields") or ():
            name = f"{prefix}{f.get('name')}"
            yield name, f.get("metadata") or {}
            stack.append((name + ".", f.get("type")))
        for key in ("elementType", "valueType", "keyType"):
            if isinstance(node.get(key), dict):
                stack.append((prefix, node[key]))


DELTA_READER_FEATURES = frozenset(
    {
        "catalogManaged",
        "columnMapping",
        "deletionVectors",
        "timestampNtz",
        "typeWidening",
        "typeWidening-preview",
        "v2Checkpoint",
        "vacuumProtocolCheck",
        "variantType",
        "variantType-preview",
        "variantShredding-preview",
    }
)
"""Reader features some Delta engine implements (Delta PROTOCOL.md): a table asking for any other one is
unreadable by every engine, and says so with UnsupportedTableFeatureError."""


def check_known_reader_features(table: str, protocol: Mapping[str, Any] | None) -> None:
    """Raise UnsupportedTableFeatureError when the protocol asks for a reader feature no Delta engine knows."""
    if protocol is None:
        return
    unknown = sorted(reader_features(protocol) - DELTA_READER_FEATURES)
    if unknown:
        raise UnsupportedTableFeatureError(
            table, unknown[0], "read", f"reader features {unknown} are not Delta table features any engine reads"
        )
