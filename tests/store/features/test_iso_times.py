"""Time text is parsed by Arrow when Arrow reads all of it, else by pandas: both must give
the same instants, and Arrow must never read a text pandas refuses."""

from __future__ import annotations

from datetime import datetime, timedelta

import pandas as pd
import pyarrow as pa
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from litemlops.errors import ValidationError
from litemlops.store.features.convert import _iso_times, cast_column
from litemlops.store.features.definitions import Field

TIME = Field("t", "timestamp")


def digits(low: int, high: int, widths: tuple[int, ...] = (1, 2, 3)) -> st.SearchStrategy[str]:
    return st.builds(lambda v, w: f"{v:0{w}d}", st.integers(low, high), st.sampled_from(widths))


@st.composite
def iso_like(draw: st.DrawFn) -> str:
    """Text near ISO-8601: right and wrong widths, ranges, separators, fractions, zones."""
    date = draw(st.sampled_from(["", "+", "-"])) + draw(digits(0, 10_000, (1, 2, 4, 4, 5)))
    dash = draw(st.sampled_from(["-", "-", "", "/"]))
    date += dash + draw(digits(0, 13, (1, 2, 2))) + dash + draw(digits(0, 32, (1, 2, 2)))
    text = date
    if draw(st.booleans()):
        text += draw(st.sampled_from(["T", "T", " ", "t", "_"])) + draw(digits(0, 25, (1, 2, 2)))
        for _ in range(draw(st.integers(0, 2))):
            text += ":" + draw(digits(0, 61, (1, 2, 2)))
        if draw(st.booleans()):
            text += draw(st.sampled_from([".", ".", ","])) + draw(
                st.text("0123456789", max_size=12)
            )
        zone = draw(st.sampled_from(["", "Z", "z", "+", "-", " +"]))
        if zone in ("+", "-", " +"):
            zone += draw(digits(0, 25, (2,)))
            zone += draw(st.sampled_from(["", ":", ""]))
            zone += draw(st.sampled_from(["", draw(digits(0, 60, (2,)))]))
        text += zone
    return draw(st.sampled_from(["", " "])) + text + draw(st.sampled_from(["", " "]))


texts = st.lists(st.none() | iso_like() | st.text(max_size=30), min_size=1, max_size=6)


def micros(times: pa.Array) -> list[int | None]:
    """Microseconds since 1970: year 0, which both parsers reach, has no Python datetime."""
    return times.cast(pa.int64()).to_pylist()


def by_pandas(values: list[str | None]) -> list[int | None]:
    """What the store made of time text before Arrow read it: pandas' parse, to whole
    microseconds since 1970, None where pandas cannot read it."""
    parsed = pd.to_datetime(pd.Series(values, dtype=object), utc=True, format="ISO8601",
                            errors="coerce")  # fmt: skip
    whole = parsed.dt.tz_convert(None).astype("datetime64[us]")
    return [
        None if pd.isna(t) else int(i)
        for t, i in zip(whole, whole.to_numpy().view("int64"), strict=True)
    ]


@given(texts)
@example(["2026-01-01T00:00:00+02:00", "2026-01-01T00:00:00.5Z", None])
@example(["2026-01-01", "2026-01-01 12:30", "1969-12-31T23:59:59.999999"])
@example(["2026-01-01T00:00:00Z", "2026-01-01T00:00:00"])  # zoned and naive: pandas reads
@example(["2026-01-01T00:00:00.1234567"])  # beyond microseconds: pandas reads, then truncates
@example(["0001-01-01T00:00:00+01:00", "0000-12-31"])  # year 0: both read it
def test_arrow_reads_a_subset_of_what_pandas_reads_to_the_same_instants(values):
    parsed = _iso_times(pa.array(values, pa.string()))
    reference = by_pandas(values)

    if parsed is not None:
        assert parsed.type == pa.timestamp("us")
        for value, ours, theirs in zip(values, micros(parsed), reference, strict=True):
            if value is None:
                assert ours is None
            else:
                assert theirs is not None, f"Arrow read {value!r}, pandas refuses it"
                assert ours == theirs, value


#: The instants a Python datetime holds, in microseconds since 1970.
EPOCH = datetime(1970, 1, 1)
FIRST, LAST = ((t - EPOCH) // timedelta(microseconds=1) for t in (datetime.min, datetime.max))


@given(texts)
@example(["2026-01-01", "0000-12-31", "x"])  # the unreadable row is named first
@example(["2026-01-01T00:00Z", "9999-12-31T23:59:59.999999Z", "9999-12-31T23:59:59-01:00"])
def test_a_column_of_time_text_reads_as_pandas_reads_it_or_names_its_first_bad_row(values):
    """Text neither parser reads is named first; then a time in no year Python holds."""
    reference = by_pandas(values)
    bad = [i for i, v in enumerate(values) if v is not None and reference[i] is None]
    outside = [i for i, t in enumerate(reference) if t is not None and not FIRST <= t <= LAST]

    if bad:
        with pytest.raises(ValidationError, match=rf"row {bad[0]} has .*\(not an ISO-8601 time\)"):
            cast_column(pa.array(values, pa.string()), TIME, "push")
    elif outside:
        with pytest.raises(ValidationError, match=rf"row {outside[0]} has .*\(outside the years"):
            cast_column(pa.array(values, pa.string()), TIME, "push")
    else:
        out = cast_column(pa.array(values, pa.string()), TIME, "push")
        assert out.type == pa.timestamp("us")
        assert micros(out) == reference


def test_the_quick_parse_is_what_reads_a_push_of_zoned_or_naive_text():
    zoned = pa.array(["2026-12-06T03:21:00.123456+01:00"])
    naive = pa.array(["2026-12-06 03:21"])

    assert _iso_times(zoned).to_pylist() == [
        pd.Timestamp("2026-12-06T02:21:00.123456").to_pydatetime()
    ]
    assert _iso_times(naive).to_pylist() == [pd.Timestamp("2026-12-06T03:21").to_pydatetime()]
    assert _iso_times(pa.array(["2026-12-06T03:21Z", "2026-12-06T03:21"])) is None


def test_a_column_arrow_reads_never_reaches_pandas(monkeypatch):
    """The quick parse is taken, not only correct: pandas costs some 30 times more."""

    def refuse(*args, **kwargs):
        raise AssertionError("pandas parsed a column Arrow reads")

    monkeypatch.setattr(pd, "to_datetime", refuse)
    for text in ("2026-12-06T03:21:00+01:00", "2026-12-06 02:21"):
        out = cast_column(pa.array([text, None]), TIME, "push")
        assert micros(out) == [micros_of("2026-12-06T02:21:00"), None]


def micros_of(text: str) -> int:
    return (datetime.fromisoformat(text) - EPOCH) // timedelta(microseconds=1)
