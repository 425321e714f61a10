"""The shared SSE parser and percentile function (harness/): what tests and benchmarks read their figures with."""

from __future__ import annotations

from harness.percentiles import percentiles
from harness.sse import CONNECTED, Frames, fields, is_comment, iter_frames

STREAM = CONNECTED + b'id: 1-0\nevent: tick.received\ndata: {"a":1}\n\n: ping\n\nid: 2-0\ndata: x\ndata: y\n\n'


def test_frames_split_across_any_chunk_boundary_come_out_whole() -> None:
    whole = Frames().feed(STREAM)
    for size in (1, 2, 7, len(STREAM)):
        chunks = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
        assert list(iter_frames(chunks)) == whole
    assert len(whole) == 4
    assert [is_comment(f) for f in whole] == [True, False, True, False]


def test_a_frame_not_yet_ended_waits_in_the_buffer() -> None:
    frames = Frames()
    assert frames.feed(b"id: 1-0\ndata: {}\n") == []
    assert frames.feed(b"\nid: 2") == [b"id: 1-0\ndata: {}\n\n"]
    assert frames.buffer == b"id: 2"


def test_fields_join_data_lines_and_skip_comments() -> None:
    assert fields(b": hi\nid: 2-0\ndata: x\ndata: y\n\n") == {"id": "2-0", "data": "x\ny"}


def test_percentiles_of_none_one_and_many_values() -> None:
    assert percentiles([]) == {"p50": None, "p95": None, "p99": None, "max": None}
    assert percentiles([3.14159]) == {"p50": 3.14, "p95": 3.14, "p99": 3.14, "max": 3.14}
    assert percentiles(range(101)) == {"p50": 50.0, "p95": 95.0, "p99": 99.0, "max": 100.0}
    assert percentiles([10.0, 0.0]) == {"p50": 5.0, "p95": 9.5, "p99": 9.9, "max": 10.0}
