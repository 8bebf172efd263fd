"""The vectorised as-of kernel: for each label row, the feature row with the greatest timestamp <= its own.

Pure Arrow/NumPy on one co-partitioned slice of labels and features; Spark calls it once per partition
(see `_pit`). Kept free of Spark so the oracle tests can exercise it directly.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_US_PER_DAY = 86_400_000_000


def to_micros(column: pa.ChunkedArray | pa.Array) -> tuple[np.ndarray, np.ndarray]:
    """(int64 microseconds, valid mask) of a timestamp / timestamp_ntz / date column.

    A tz-aware timestamp is its UTC instant; a timestamp without time zone is read as a UTC wall clock; a
    date is 00:00 UTC of that day. The caller has already refused mixing zoned and zoneless timestamps.
    """
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    t = column.type
    if pa.types.is_timestamp(t):
        unit_scale = {"s": 1_000_000, "ms": 1_000, "us": 1, "ns": None}[t.unit]
        raw = column.cast(pa.int64())
        if unit_scale is None:
            raw = pc.floor_divide(raw, 1_000)  # ns -> us, towards -inf like Spark
        elif unit_scale != 1:
            raw = pc.multiply(raw, unit_scale)
    elif pa.types.is_date32(t):
        raw = pc.multiply(column.cast(pa.int32()).cast(pa.int64()), _US_PER_DAY)
    elif pa.types.is_date64(t):
        raw = pc.multiply(column.cast(pa.int64()), 1_000)
    else:
        raise TypeError(f"not a timestamp or date column: {t}")
    valid = raw.is_valid().to_numpy(zero_copy_only=False)
    values = raw.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64, copy=False)
    return values, valid


def key_codes(left: list[pa.Array | pa.ChunkedArray], right: list[pa.Array | pa.ChunkedArray]) -> tuple[np.ndarray, np.ndarray]:
    """Dense int64 codes for (possibly multi-column) keys, equal exactly when all key values are equal.

    Rows with a null in any key column get -1 (they match nothing). Both sides must have the same types.
    """
    n_left = len(left[0])
    combined: np.ndarray | None = None
    null = np.zeros(n_left + len(right[0]), dtype=bool)
    for lcol, rcol in zip(left, right, strict=True):
        arr = pa.chunked_array(
            [*(_chunks(lcol)), *(_chunks(rcol))], type=rcol.type
        ).combine_chunks()
        enc = pc.dictionary_encode(arr, null_encoding="mask")
        idx = enc.indices
        null |= ~idx.is_valid().to_numpy(zero_copy_only=False)
        codes = idx.fill_null(0).to_numpy(zero_copy_only=False).astype(np.int64)
        if combined is None:
            combined = codes
        else:
            width = int(codes.max(initial=0)) + 1
            combined = combined * width + codes
            _, combined = np.unique(combined, return_inverse=True)  # keep codes dense: no overflow
            combined = combined.astype(np.int64, copy=False)
    if combined is None:
        raise ValueError("key_codes needs at least one key column")
    combined = np.where(null, -1, combined)
    return combined[:n_left], combined[n_left:]


def _chunks(col: pa.Array | pa.ChunkedArray) -> list[pa.Array]:
    return list(col.chunks) if isinstance(col, pa.ChunkedArray) else [col]


def asof_indices(
    label_codes: np.ndarray,
    label_ts: np.ndarray,
    label_valid: np.ndarray,
    feature_codes: np.ndarray,
    feature_ts: np.ndarray,
    feature_valid: np.ndarray,
    lookback_us: int | None,
) -> np.ndarray:
    """Index of the matched feature row for each label row, -1 where none.

    Match: same code, feature ts <= label ts (inclusive), and label ts - feature ts <= lookback when given.
    Feature (code, ts) pairs are unique (the table's keys), so the match is unique; duplicate label rows
    each get the same match.
    """
    n_labels = len(label_codes)
    out = np.full(n_labels, -1, dtype=np.int64)
    lsel = np.flatnonzero(label_valid & (label_codes >= 0))
    fsel = np.flatnonzero(feature_valid & (feature_codes >= 0))
    if len(lsel) == 0 or len(fsel) == 0:
        return out
    nf = len(fsel)
    codes = np.concatenate([feature_codes[fsel], label_codes[lsel]])
    ts = np.concatenate([feature_ts[fsel], label_ts[lsel]])
    order = _order(codes, ts, nf)
    is_feature = order < nf
    last = np.where(is_feature, np.arange(len(order)), -1)
    np.maximum.accumulate(last, out=last)
    label_pos = np.flatnonzero(~is_feature)
    found = last[label_pos]
    safe = np.maximum(found, 0)
    sorted_codes = codes[order]
    ok = (found >= 0) & (sorted_codes[safe] == sorted_codes[label_pos])
    if lookback_us is not None:
        sorted_ts = ts[order]
        ok &= (sorted_ts[label_pos] - sorted_ts[safe]) <= lookback_us
    label_idx = lsel[order[label_pos] - nf]
    matched = order[safe]  # a feature position wherever ok; clipped below only to keep the gather in range
    out[label_idx] = np.where(ok, fsel[np.minimum(matched, nf - 1)], -1)
    return out


def _order(codes: np.ndarray, ts: np.ndarray, n_features: int) -> np.ndarray:
    """Sort by (code, ts, features before labels); ties between features and labels keep the feature first,
    which makes the match inclusive. One int64 radix-friendly key when it fits, else a lexsort."""
    tmin = int(ts.min())
    span = int(ts.max()) - tmin
    bits_t = max(span, 1).bit_length() + 1
    bits_c = max(int(codes.max()), 1).bit_length()
    if bits_t + bits_c <= 62:
        comp = (codes << bits_t) | ((ts - tmin) << 1)
        comp[n_features:] |= 1
        return np.argsort(comp, kind="stable")
    kind = np.zeros(len(codes), dtype=np.int8)
    kind[n_features:] = 1
    return np.lexsort((kind, ts, codes))


def take_or_null(column: pa.ChunkedArray | pa.Array, idx: np.ndarray) -> pa.Array:
    """column[idx], with nulls where idx is -1."""
    indices = pa.array(idx, type=pa.int64(), mask=idx < 0)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    return column.take(indices)
