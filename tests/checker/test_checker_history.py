"""Reading histories: the three formats, their semantics, and clear errors on bad input."""

from __future__ import annotations

import math

import pytest

from checker import HistoryError, Verdict, check_history, get_model
from checker.history import parse_history

JSONL = """\
{"type":"invoke","process":0,"f":"write","key":"a","value":1,"time":0}
{"type":"invoke","process":1,"f":"read","key":"a","value":null,"time":1}
{"type":"ok","process":0,"f":"write","key":"a","value":1,"time":2}
{"type":"ok","process":1,"f":"read","key":"a","value":1,"time":3}
{"type":"invoke","process":2,"f":"cas","key":"a","value":[1,2],"time":4}
{"type":"info","process":2,"f":"cas","key":"a","value":[1,2],"error":"timeout","time":5}
{"type":"invoke","process":3,"f":"read","key":"a","value":null,"time":6}
"""


def test_jsonl_pairs_operations_and_marks_unknown_outcomes() -> None:
    history = parse_history(JSONL, "h.jsonl")
    assert history.format == "jsonl"
    assert [op.input.f for op in history.operations] == ["write", "read", "cas", "read"]
    write, read, cas, pending = history.operations
    assert (write.call_time, write.return_time) == (0, 2)
    assert read.output.value == 1
    assert cas.input.value == (1, 2)
    assert cas.return_time == math.inf
    assert cas.output.status == "info"
    assert pending.return_time == math.inf  # never completed = info
    assert history.lines == (1, 2, 5, 7)


def test_header_names_the_model() -> None:
    text = '{"type":"header","model":"kv"}\n' + JSONL
    assert parse_history(text, "h.jsonl").model_name == "kv"


@pytest.mark.parametrize(("text", "line", "words"), [
    ('{"type":"invoke","process":0,"f":"read"}\nnot json\n', 2, "not valid JSON"),
    ('[1,2]\n', 1, "expected a JSON object"),
    ('{"type":"begin","process":0,"f":"read"}\n', 1, "field 'type'"),
    ('{"type":"invoke","process":"x","f":"read"}\n', 1, "field 'process'"),
    ('{"type":"invoke","process":0}\n', 1, "field 'f'"),
    ('{"type":"ok","process":0,"f":"read"}\n', 1, "no open invocation"),
    ('{"type":"invoke","process":0,"f":"read"}\n{"type":"invoke","process":0,"f":"read"}\n',
     2, "still open"),
    ('{"type":"invoke","process":0,"f":"read"}\n{"type":"ok","process":0,"f":"write"}\n',
     2, "does not match"),
    ('{"type":"invoke","process":0,"f":"w"}\n{"type":"info","process":0,"f":"w"}\n'
     '{"type":"invoke","process":0,"f":"w"}\n', 3, "never issues again"),
    ('{"type":"invoke","process":0,"f":"w","time":5}\n{"type":"ok","process":0,"f":"w",'
     '"time":4}\n', 2, "earlier than"),
    ('{"type":"invoke","process":0,"f":"w","time":5}\n{"type":"ok","process":0,"f":"w"}\n',
     2, "missing 'time'"),
    ('{"type":"header","model":"kv"}\n{"type":"header","model":"kv"}\n', 2, "first line"),
])
def test_malformed_jsonl_names_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(HistoryError) as caught:
        parse_history(text, "bad.jsonl")
    assert caught.value.line == line
    assert words in str(caught.value)
    assert f"bad.jsonl:{line}" in str(caught.value)


def test_an_operation_the_model_does_not_know_is_named_by_line() -> None:
    text = '{"type":"invoke","process":0,"f":"frobnicate","value":1}\n'
    with pytest.raises(HistoryError, match=r"h.jsonl:1: unknown operation 'frobnicate'"):
        check_history(get_model("cas-register"), parse_history(text, "h.jsonl"))


def test_a_cas_without_a_pair_is_named_by_line() -> None:
    text = ('{"type":"invoke","process":0,"f":"write","value":1}\n'
            '{"type":"ok","process":0,"f":"write","value":1}\n'
            '{"type":"invoke","process":0,"f":"cas","value":3}\n')
    with pytest.raises(HistoryError, match=r"h.jsonl:3: cas needs a value"):
        check_history(get_model("cas-register"), parse_history(text, "h.jsonl"))


EDN = """\
{:type :invoke, :f :write, :value 1, :process 0, :time 10, :index 0}
{:type :invoke, :f :read, :value nil, :process 1, :time 20, :index 1}
{:type :ok, :f :write, :value 1, :process 0, :time 30, :index 2}
{:type :info, :f :start-partition, :value nil, :process :nemesis, :time 35, :index 3}
{:type :ok, :f :read, :value 1, :process 1, :time 40, :index 4}
{:type :invoke, :f :cas, :value [1 2], :process 0, :time 50, :index 5}
{:type :fail, :f :cas, :value [1 2], :process 0, :time 60, :index 6}
"""


def test_jepsen_edn_lines() -> None:
    history = parse_history(EDN, "history.edn")
    assert history.format == "edn"
    assert [op.input.f for op in history.operations] == ["write", "read", "cas"]
    assert history.operations[2].input.value == (1, 2)
    assert history.operations[2].output.status == "fail"
    # The cas failed although the value was 1: not linearizable under the etcd model.
    result = check_history(get_model("cas-register"), history)
    assert result.verdict is Verdict.ILLEGAL


def test_jepsen_edn_vector() -> None:
    history = parse_history("[" + EDN + "]", "history.edn")
    assert len(history.operations) == 3


def test_malformed_edn_names_the_line() -> None:
    with pytest.raises(HistoryError, match=r"h.edn:2: not valid EDN"):
        parse_history('{:type :invoke, :f :read, :process 0}\n{:type :ok\n', "h.edn")


PORCUPINE_LOG = """\
INFO  jepsen.util - 0\t:invoke\t:write\t4
INFO  jepsen.util - 1\t:invoke\t:read\tnil
INFO  jepsen.util - 0\t:ok\t:write\t4
INFO  jepsen.util - 1\t:ok\t:read\t4
INFO  jepsen.util - 2\t:invoke\t:cas\t[4 0]
INFO  jepsen.util - 2\t:info\t:cas\t:timed-out
INFO  jepsen.util - 3\t:invoke\t:read\tnil
INFO  jepsen.util - 3\t:fail\t:read\t:timed-out
"""


def test_porcupine_jepsen_log() -> None:
    history = parse_history(PORCUPINE_LOG, "etcd_000.log")
    assert history.format == "porcupine"
    cas = history.operations[2]
    assert cas.input.value == (4, 0)
    assert cas.output.status == "info"
    assert cas.output.error == "timed-out"
    assert check_history(get_model("cas-register"), history).verdict is Verdict.OK


def test_porcupine_kv_lines() -> None:
    text = ('{:process 0, :type :invoke, :f :append, :key "0", :value "x 0 0 y"}\n'
            '{:process 0, :type :ok, :f :append, :key "0", :value "x 0 0 y"}\n'
            '{:process 0, :type :invoke, :f :get, :key "0", :value nil}\n'
            '{:process 0, :type :ok, :f :get, :key "0", :value "x 0 1 y"}\n')
    history = parse_history(text, "c01-bad.txt", "porcupine")
    result = check_history(get_model("kv-get-put-append"), history)
    assert result.verdict is Verdict.ILLEGAL


def test_bad_porcupine_line() -> None:
    with pytest.raises(HistoryError, match=r"x.log:1: expected 'INFO"):
        parse_history("hello\n", "x.log")


def test_unknown_format_is_refused() -> None:
    with pytest.raises(HistoryError, match="cannot tell the format"):
        parse_history("hello\n", "x.dat")
