"""Built-in models for histories in the Jepsen event model (`Input` / `Output` records).

Role: the sequential specifications users check most often, each a `Model` of pure
functions, partitioned per key (keys are independent objects; `key: null` is one object).

Rules shared by every model here (see docs/history-format.md):
- `fail` means the operation did not happen (Effect.NONE), except a failed `cas`, which
  observed a current value different from the expected one (Porcupine's etcd model).
- `info` (unknown outcome) is accepted in every state: a write-like operation takes effect
  where it is linearized; a read-like one constrains nothing and is dropped.
- An operation a model does not know raises `OperationError`, which the history reader turns
  into an error naming the line.

Models:
  register           read / write, initially absent (None)
  cas-register       read / write / cas [expected, new], initially absent (Porcupine's etcd)
  kv                 get / put / delete / cas per key, initially absent
  kv-get-put-append  get / put / append of strings per key, initially "" (Porcupine's kv)
  append-list        append x / read -> [x, ...] per key, initially [] (exactly-once workload)
  counter            add n / read -> n per key, initially 0
  set                add x / read -> [x, ...] per key, initially empty
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Any

from checker.errors import ModelError, OperationError
from checker.model import Effect, Input, Model, Output, key_of

_READS = frozenset({"read", "get"})
_WRITES = frozenset({"write", "put"})


def _parts(input: Any, output: Any) -> tuple[str, Any, Output]:
    if not isinstance(input, Input) or not isinstance(output, Output):
        raise OperationError(f"expected Input and Output records, got {input!r}, {output!r}")
    return input.f, input.value, output


def _pair(value: Any, f: str) -> tuple[Any, Any]:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise OperationError(f"{f} needs a value [expected, new], got {value!r}")
    return value[0], value[1]


def _register_step(fs: frozenset[str]) -> Callable[[Any, Any, Any], tuple[bool, Any]]:
    def step(state: Any, input: Any, output: Any) -> tuple[bool, Any]:
        f, value, out = _parts(input, output)
        if f not in fs:
            raise OperationError(f"unknown operation {f!r} (this model knows {sorted(fs)})")
        if f in _READS:
            return out.status != "ok" or out.value == state, state
        if out.status == "fail" and f != "cas":
            return True, state
        if f in _WRITES:
            return True, value
        if f == "delete":
            return True, None
        expected, new = _pair(value, f)
        if out.status == "ok":
            return state == expected, new
        if out.status == "fail":
            return state != expected, state
        return True, (new if state == expected else state)

    return step


def _register_effect(input: Any, output: Any) -> Effect:
    f, _, out = _parts(input, output)
    if f in _READS:
        return Effect.READ if out.status == "ok" else Effect.NONE
    if out.status == "fail":
        return Effect.READ if f == "cas" else Effect.NONE
    return Effect.WRITE


def _describe_register(input: Any, output: Any) -> str:
    f, value, out = _parts(input, output)
    suffix = {"ok": "", "fail": " (failed)", "info": " (unknown)"}.get(out.status, "")
    if f in _READS:
        shown = "?" if out.status != "ok" else _show(out.value)
        return f"{f} -> {shown}{suffix}"
    if f == "cas":
        expected, new = _pair(value, f)
        return f"cas {_show(expected)} -> {_show(new)}{suffix}"
    if f == "delete":
        return f"delete{suffix}"
    return f"{f} {_show(value)}{suffix}"


def _show(value: Any) -> str:
    if value is None:
        return "nil"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, tuple | list):
        return "[" + " ".join(_show(v) for v in value) + "]"
    return str(value)


def _register_model(name: str, fs: frozenset[str]) -> Model:
    return Model(
        init=lambda: None,
        step=_register_step(fs),
        partition=key_of,
        describe_operation=_describe_register,
        describe_state=_show,
        effect=_register_effect,
        name=name,
    )


def _string_step(state: Any, input: Any, output: Any) -> tuple[bool, Any]:
    f, value, out = _parts(input, output)
    if f == "get":
        return out.status != "ok" or (out.value or "") == state, state
    if f not in ("put", "append"):
        raise OperationError(f"unknown operation {f!r} (this model knows get, put, append)")
    if not isinstance(value, str):
        raise OperationError(f"{f} needs a string value, got {value!r}")
    if out.status == "fail":
        return True, state
    return True, (value if f == "put" else state + value)


def _grow_effect(input: Any, output: Any) -> Effect:
    """Reads are READ, appends and adds GROW, anything else (put) WRITE."""
    f, _, out = _parts(input, output)
    if f in _READS:
        return Effect.READ if out.status == "ok" else Effect.NONE
    if out.status == "fail":
        return Effect.NONE
    if f in ("append", "add", "increment"):
        return Effect.GROW
    return Effect.WRITE


def _counter_effect(input: Any, output: Any) -> Effect:
    """Adding a non-negative amount only grows a counter."""
    effect = _grow_effect(input, output)
    value = input.value
    if effect is Effect.GROW and not (value is None or (isinstance(value, int) and value >= 0)):
        return Effect.WRITE
    return effect


def _string_reachable(state: Any, input: Any, output: Any) -> bool:  # noqa: ARG001
    return isinstance(output.value or "", str) and (output.value or "").startswith(state)


def _append_reachable(state: Any, input: Any, output: Any) -> bool:  # noqa: ARG001
    value = output.value
    return isinstance(value, tuple | list) and tuple(value[: len(state)]) == state


def _counter_reachable(state: Any, input: Any, output: Any) -> bool:  # noqa: ARG001
    return isinstance(output.value, int) and output.value >= state


def _set_reachable(state: Any, input: Any, output: Any) -> bool:  # noqa: ARG001
    return isinstance(output.value, tuple | list) and state <= frozenset(output.value)


def _append_step(state: Any, input: Any, output: Any) -> tuple[bool, Any]:
    f, value, out = _parts(input, output)
    if f == "read":
        if out.status != "ok":
            return True, state
        return _as_tuple(out.value) == state, state
    if f != "append":
        raise OperationError(f"unknown operation {f!r} (this model knows append, read)")
    if out.status == "fail":
        return True, state
    return True, (*state, value)


def _as_tuple(value: Any) -> tuple[Any, ...]:
    if value is None:
        return ()
    if not isinstance(value, tuple | list):
        raise OperationError(f"a read must return a list, got {value!r}")
    return tuple(value)


def _counter_step(state: Any, input: Any, output: Any) -> tuple[bool, Any]:
    f, value, out = _parts(input, output)
    if f == "read":
        return out.status != "ok" or out.value == state, state
    if f not in ("add", "increment"):
        raise OperationError(f"unknown operation {f!r} (this model knows add, read)")
    delta = 1 if value is None else value
    if not isinstance(delta, int) or isinstance(delta, bool):
        raise OperationError(f"{f} needs an integer value, got {value!r}")
    if out.status == "fail":
        return True, state
    return True, state + delta


def _set_step(state: Any, input: Any, output: Any) -> tuple[bool, Any]:
    f, value, out = _parts(input, output)
    if f == "read":
        if out.status != "ok":
            return True, state
        return frozenset(_as_tuple(out.value)) == state, state
    if f != "add":
        raise OperationError(f"unknown operation {f!r} (this model knows add, read)")
    if out.status == "fail":
        return True, state
    return True, state | {value}


def _show_state(state: Any) -> str:
    if isinstance(state, frozenset):
        return "#{" + " ".join(sorted(_show(v) for v in state)) + "}"
    return _show(state)


def _per_key(
    name: str,
    init: Hashable,
    step: Callable[[Any, Any, Any], tuple[bool, Any]],
    reachable: Callable[[Any, Any, Any], bool],
    effect: Callable[[Any, Any], Effect] = _grow_effect,
) -> Model:
    return Model(
        init=lambda: init,
        step=step,
        partition=key_of,
        describe_operation=_describe_register,
        describe_state=_show_state,
        effect=effect,
        reachable=reachable,
        name=name,
    )


MODELS: dict[str, Model] = {
    "register": _register_model("register", frozenset({"read", "write"})),
    "cas-register": _register_model("cas-register", frozenset({"read", "write", "cas"})),
    "kv": _register_model("kv", frozenset({"get", "put", "delete", "cas"})),
    "kv-get-put-append": _per_key("kv-get-put-append", "", _string_step, _string_reachable),
    "append-list": _per_key("append-list", (), _append_step, _append_reachable),
    "counter": _per_key("counter", 0, _counter_step, _counter_reachable, _counter_effect),
    "set": _per_key("set", frozenset(), _set_step, _set_reachable),
}


def get_model(name: str) -> Model:
    """The built-in model called `name`; ModelError names the known ones otherwise."""
    try:
        return MODELS[name]
    except KeyError:
        known = ", ".join(sorted(MODELS))
        raise ModelError(f"unknown model {name!r} (known: {known})") from None
