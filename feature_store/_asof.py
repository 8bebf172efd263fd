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


def key_codes(
    left: list[pa.Array | pa.ChunkedArray], right: list[pa.Array | pa.ChunkedArray]
) -> tuple[np.ndarray, np.ndarray]:
    """Non-negative int64 codes for (possibly multi-column) keys, equal exactly when all key values are equal.

    Rows with a null in any key column get -1 (they match nothing). Both sides must have the same types, or
    both be integral (compared as int64).
    One integral key column is used as is (offset by its minimum) when its range is below 2**40, which
    saves a hash pass over every row; anything else is dictionary-encoded into dense codes.
    """
    if len(left) == 1 and pa.types.is_integer(right[0].type):
        fast = _integer_codes(left[0], right[0])
        if fast is not None:
            return fast
    n_left = len(left[0])
    combined: np.ndarray | None = None
    null = np.zeros(n_left + len(right[0]), dtype=bool)
    for lcol, rcol in zip(left, right, strict=True):
        if pa.types.is_integer(lcol.type) and pa.types.is_integer(rcol.type) and lcol.type != rcol.type:
            lcol, rcol = lcol.cast(pa.int64()), rcol.cast(pa.int64())
        arr = pa.chunked_array([*(_chunks(lcol)), *(_chunks(rcol))], type=rcol.type).combine_chunks()
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


def _integer_codes(
    left: pa.Array | pa.ChunkedArray, right: pa.Array | pa.ChunkedArray
) -> tuple[np.ndarray, np.ndarray] | None:
    """Codes from one integral key column offset by its minimum, or None when its range is 2**40 or wider."""
    sides = []
    for col in (left, right):
        col = col.cast(pa.int64())
        sides.append((col.fill_null(0).to_numpy(zero_copy_only=False), col.is_valid().to_numpy(zero_copy_only=False)))
    lo = hi = None
    for values, valid in sides:
        if valid.any():
            v = values[valid]
            lo = int(v.min()) if lo is None else min(lo, int(v.min()))
            hi = int(v.max()) if hi is None else max(hi, int(v.max()))
    if lo is None or hi is None:
        return np.full(len(left), -1, np.int64), np.full(len(right), -1, np.int64)
    if hi - lo >= 1 << 40:
        return None
    out = []
    for values, valid in sides:
        out.append(np.where(valid, values - lo, -1))
    return out[0], out[1]


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

    Only the feature side is sorted, by one packed (code, ts) int64; the labels are sorted too (cheap, and
    it turns the binary searches into a cache-friendly sweep) and binary-searched into it. At 5M feature
    rows x 1M labels this is ~4x faster than sorting the union of both sides.
    """
    n_labels = len(label_codes)
    out = np.full(n_labels, -1, dtype=np.int64)
    lsel = np.flatnonzero(label_valid & (label_codes >= 0))
    fsel = np.flatnonzero(feature_valid & (feature_codes >= 0))
    if len(lsel) == 0 or len(fsel) == 0:
        return out
    fcodes, fts = feature_codes[fsel], feature_ts[fsel]
    lcodes, lts = label_codes[lsel], label_ts[lsel]
    fkey, lkey = _packed(fcodes, fts, lcodes, lts)
    forder = np.argsort(fkey, kind="stable")
    fsorted = fkey[forder]
    lorder = np.argsort(lkey, kind="stable")
    pos = np.searchsorted(fsorted, lkey[lorder], side="right") - 1
    hit = forder[np.maximum(pos, 0)]  # candidate: the last feature row at or before (code, ts)
    ok = (pos >= 0) & (fcodes[hit] == lcodes[lorder])
    if lookback_us is not None:
        ok &= (lts[lorder] - fts[hit]) <= lookback_us
    out[lsel[lorder]] = np.where(ok, fsel[hit], -1)
    return out


def _packed(fcodes: np.ndarray, fts: np.ndarray, lcodes: np.ndarray, lts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(code, ts) of both sides packed into one order-preserving non-negative int64 each.

    Timestamps are offset by the common minimum; when code and time bits do not fit in 63 bits, times and
    codes are replaced by their dense ranks over both sides (an extra sort, only for very wide ranges).
    """
    tmin = min(int(fts.min()), int(lts.min()))
    span = max(int(fts.max()), int(lts.max())) - tmin
    bits_t = max(span, 1).bit_length()
    bits_c = max(int(fcodes.max()), int(lcodes.max()), 1).bit_length()
    if bits_t + bits_c > 63:
        nf = len(fts)
        _, trank = np.unique(np.concatenate([fts, lts]), return_inverse=True)
        _, crank = np.unique(np.concatenate([fcodes, lcodes]), return_inverse=True)
        fts, lts = trank[:nf].astype(np.int64), trank[nf:].astype(np.int64)
        fcodes, lcodes = crank[:nf].astype(np.int64), crank[nf:].astype(np.int64)
        tmin = 0
        bits_t = max(int(trank.max(initial=0)), 1).bit_length()
    return (fcodes << bits_t) | (fts - tmin), (lcodes << bits_t) | (lts - tmin)


def asof_match(
    label_keys: list[pa.Array | pa.ChunkedArray],
    label_ts: pa.Array | pa.ChunkedArray | None,
    feature_keys: list[pa.Array | pa.ChunkedArray],
    feature_ts: pa.Array | pa.ChunkedArray | None,
    lookback_us: int | None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The as-of join of one slice of labels and feature rows, as indices; shared by the Spark and local paths.

    Returns (idx, age): idx[i] is the feature row matched by label row i or -1; age[i] is label ts - matched
    feature ts in microseconds (meaningless where idx is -1), None without timestamps. Without timestamps
    (`feature_ts` None: one row per key) the match is on the key alone.
    """
    lc, fc = key_codes(label_keys, feature_keys)
    if feature_ts is None:
        zl, zf = np.zeros(len(lc), np.int64), np.zeros(len(fc), np.int64)
        return asof_indices(lc, zl, zl == 0, fc, zf, zf == 0, None), None
    lts, lvalid = to_micros(label_ts)
    fts, fvalid = to_micros(feature_ts)
    idx = asof_indices(lc, lts, lvalid, fc, fts, fvalid, lookback_us)
    age = lts - fts[np.maximum(idx, 0)] if len(fts) else np.zeros(len(idx), np.int64)
    return idx, age


def take_or_null(column: pa.ChunkedArray | pa.Array, idx: np.ndarray, target: pa.DataType | None = None) -> pa.Array:
    """column[idx], with nulls where idx is -1; cast to `target` when given."""
    if len(column) == 0:
        return pa.nulls(len(idx), type=target or column.type)
    indices = pa.array(idx, type=pa.int64(), mask=idx < 0)
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    out = column.take(indices)
    return out if target is None or out.type == target else out.cast(target)
