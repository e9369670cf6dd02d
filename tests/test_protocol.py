"""The parent-worker protocol: every job and event crosses the boundary whole, field by field,
and anything else is one clear error."""

from __future__ import annotations

import dataclasses
import json
import types
from array import array
from collections.abc import Mapping, Sequence
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import pytest

from anybench import _protocol
from anybench._protocol import (
    EVENTS,
    Calibration,
    Job,
    Plan,
    ProtocolError,
    Round,
    ScaleJob,
    decode_event,
    decode_job,
    encode_event,
    encode_job,
)
from anybench._sweep import Budget


def _example(tp: Any, seed: int) -> Any:
    """A value of type *tp* unlike any default (so that a field lost on the way shows)."""
    origin, args = get_origin(tp), get_args(tp)
    if dataclasses.is_dataclass(tp):
        return _instance(tp, seed)  # type: ignore[arg-type]
    if origin in (Union, types.UnionType):
        return _example(next(a for a in args if a is not type(None)), seed)
    if origin is Literal:
        return args[seed % len(args)]
    if origin is tuple:
        return (_example(args[0], seed), _example(args[0], seed + 1))
    if origin in (dict, Mapping):
        return {f"key{seed}": _example(args[1], seed)}
    if origin is Sequence:
        return array("q", [seed, -seed, 2**40 + seed])
    if tp is bool:
        return seed % 2 == 0
    if tp is int:
        return 1000 + seed
    if tp is float:
        return 0.25 + seed
    if tp is str:
        return f"text {seed} | ünïcode\n"
    if tp is Any:
        return {"nested": [seed, "x"]}
    raise AssertionError(f"no example for {tp!r}: teach _example the new type")


def _instance(cls: type[Any], seed: int = 3) -> Any:
    hints = get_type_hints(cls)
    return cls(
        **{f.name: _example(hints[f.name], seed + i) for i, f in enumerate(dataclasses.fields(cls))}
    )


@pytest.mark.parametrize("kind", list(EVENTS))
def test_every_event_crosses_whole_with_every_field(kind: str) -> None:
    """Built from its own annotations, so that a field added to an event is covered here with
    no edit: the field survives encoding, with its value, and is on the wire by its name."""
    message = _instance(EVENTS[kind])
    line = encode_event(message)
    assert "\n" not in line  # one event, one line
    wire = json.loads(line)
    assert wire[_protocol.EVENT_KEY] == kind
    assert set(wire) == {_protocol.EVENT_KEY} | {f.name for f in dataclasses.fields(message)}
    assert decode_event(line) == message


def test_the_events_are_declared() -> None:
    assert list(EVENTS) == [
        "hello",
        "begin",
        "round",
        "finished",
        "failed",
        "done",
        "region",
        "calls",
        "sampled",
    ]


def test_a_job_crosses_whole_with_every_field() -> None:
    job = _instance(Job)
    assert job.plan != Plan()
    assert job.plan.budget != Budget()
    assert job.scales[0].calibration != Calibration()
    assert decode_job(encode_job(job)) == job


def test_a_job_says_turns_only_when_it_takes_them() -> None:
    """A worker of an anybench from before ``turns`` (the base of ``bench_ab``) refuses a field
    it does not know: a job that takes no turns does not send it."""
    job = _instance(Job)
    plain = dataclasses.replace(job, turns=False)
    assert "turns" not in json.loads(encode_job(plain))
    assert decode_job(encode_job(plain)) == plain
    lockstep = dataclasses.replace(job, turns=True)
    assert json.loads(encode_job(lockstep))["turns"] is True
    assert decode_job(encode_job(lockstep)) == lockstep


def test_a_real_job_crosses_whole() -> None:
    job = Job(
        scenario_module="scenarios.spawn",
        sys_path=("/x",),
        runtimes=("asyncio", "trio"),
        plan=Plan(Budget(target_ops=5, min_rounds=1), deadline_s=0.5, memory_limit_bytes=None),
        scales=(
            ScaleJob(n=10, runtimes=("asyncio",), calibration=Calibration({"asyncio": 7})),
            ScaleJob(n=100, runtimes=("asyncio", "trio"), latency_rounds=1, memory_n=100),
        ),
    )
    assert decode_job(encode_job(job)) == job


def test_a_new_field_is_one_edit(monkeypatch: pytest.MonkeyPatch) -> None:
    """What adding a field to what a worker sends back takes: the field, in one class."""

    @dataclasses.dataclass(frozen=True)
    class Counted(Round):
        context_switches: int = 0

    monkeypatch.setitem(EVENTS, "round", Counted)
    monkeypatch.setitem(_protocol._KIND_OF, Counted, "round")
    sent = Counted(
        n=10, runtime="trio", kind="throughput", n_round=10, ops=10, elapsed_ns=5, passes=1,
        context_switches=42,
    )  # fmt: skip
    received = decode_event(encode_event(sent))
    assert isinstance(received, Counted)
    assert received.context_switches == 42


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "malformed worker event: not JSON"),
        ("[1, 2]", "malformed worker event (no 'event' kind)"),
        ('{"n": 1}', "malformed worker event (no 'event' kind)"),
        ('{"event": "explain"}', "unknown worker event 'explain'; known: hello, begin, round"),
        ('{"event": "finished", "n": 1}', "finished lacks its field 'runtime'"),
        ('{"event": "finished", "n": "1", "runtime": "trio"}', "finished.n should be int"),
        ('{"event": "finished", "n": true, "runtime": "trio"}', "finished.n should be int"),
        ('{"event": "done", "extra": 1}', "done has unknown fields ['extra']"),
        (
            '{"event": "begin", "n": 1, "runtime": "trio", "kind": "nap", "deadline_s": 1}',
            "begin.kind is 'nap', not one of 'warmup', 'throughput', 'latency', 'memory'",
        ),
        (
            '{"event": "round", "n": 1, "runtime": "t", "kind": "latency", "n_round": 1, '
            '"ops": 1, "elapsed_ns": 1, "passes": 1, "samples": {"a": "%%%"}}',
            "latency samples are not base64",
        ),
    ],
)
def test_a_malformed_or_unknown_event_is_one_clear_error(line: str, message: str) -> None:
    with pytest.raises(ProtocolError) as caught:
        decode_event(line)
    text = str(caught.value)
    assert message in text
    assert "\n" not in text


def test_a_malformed_job_is_one_clear_error() -> None:
    job = json.loads(encode_job(_instance(Job)))
    job["plan"]["budget"]["processes"] = "three"
    with pytest.raises(ProtocolError, match=r"job\.plan\.budget\.processes should be int"):
        decode_job(json.dumps(job))
