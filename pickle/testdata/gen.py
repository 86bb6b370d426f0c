#!/usr/bin/env python3
"""Pickles of real Python for the tests of mproc/pickle (standard library only).

    gen.py [dump]   one JSON line per (case, protocol): {"name", "protocol", "hex"},
                    for every protocol from 0 to pickle.HIGHEST_PROTOCOL, after a
                    first line {"python": "3.11.7", "highest": 5}
    gen.py small    the same without the LARGE cases
    gen.py objects  like dump, for the OBJECTS: the Python objects a manager's
                    messages carry (exceptions, Token, Namespace, slice)
    gen.py loads    reads JSON lines {"name", "hex"} and answers each with
                    {"name", "repr", "type", "redump"} (type: the class's module and
                    qualified name; redump: pickle.dumps(value, 4) in hex), plus "args"
                    (repr of e.args) for an exception, or {"name", "error"}

    python3 testdata/gen.py small > testdata/python.jsonl   regenerates the fixture

The Go tests run this script with every Python they find and also decode the
fixture, whose pickles seed FuzzUnmarshal. CASES and the Go table `pythonCases`
in python_test.go must name the same values.
"""

import json
import pickle
import sys


def recursive_list():
    x = []
    x.append(x)
    return x


def recursive_dict():
    x = {}
    x["self"] = x
    return x


def nested(depth):
    x = []
    for _ in range(depth):
        x = [x]
    return x


def shared():
    inner = [1, 2]
    return [inner, inner, "s", "s"]


def shared_tuple():
    t = ("t", 1)
    return {"a": t, "b": t}


CASES = {
    "none": lambda: None,
    "true": lambda: True,
    "false": lambda: False,
    "int_0": lambda: 0,
    "int_255": lambda: 255,
    "int_256": lambda: 256,
    "int_65535": lambda: 65535,
    "int_65536": lambda: 65536,
    "int_neg1": lambda: -1,
    "int32_max": lambda: 2**31 - 1,
    "int32_min": lambda: -(2**31),
    "int_2_31": lambda: 2**31,
    "int64_max": lambda: 2**63 - 1,
    "int64_min": lambda: -(2**63),
    "int_2_63": lambda: 2**63,
    "int_neg_2_63_minus_1": lambda: -(2**63) - 1,
    "int_2_64": lambda: 2**64,
    "int_2_1000": lambda: 2**1000,
    "int_neg_3_700": lambda: -(3**700),
    "int_2_2100": lambda: 2**2100,  # LONG4: more than 255 bytes
    "float_0": lambda: 0.0,
    "float_neg0": lambda: -0.0,
    "float_1_5": lambda: 1.5,
    "float_1e300": lambda: 1e300,
    "float_tiny": lambda: 5e-324,
    "float_inf": lambda: float("inf"),
    "float_neginf": lambda: float("-inf"),
    "float_nan": lambda: float("nan"),
    "float_third": lambda: 1 / 3,
    "str_empty": lambda: "",
    "str_a": lambda: "a",
    "str_accent": lambda: "héllo",
    "str_cjk": lambda: "日本語",
    "str_emoji": lambda: "😀",
    "str_escapes": lambda: "a\\b\nc\x00d\re\x1a\u0100\\u0041",
    "str_surrogate": lambda: "x\ud800y",
    "str_300": lambda: "é" * 150,
    "str_large": lambda: "L" * 70000,
    "bytes_empty": lambda: b"",
    "bytes_bin": lambda: b"\x00\xff\x80\n\\",
    "bytes_300": lambda: bytes(range(256)) + b"x" * 44,
    "bytes_large": lambda: b"\x01" * 70000,
    "bytearray_empty": lambda: bytearray(),
    "bytearray": lambda: bytearray(b"ab\xff"),
    "list_empty": lambda: [],
    "list_1": lambda: [1],
    "list_mixed": lambda: [1, "a", None, 2.5, b"b", True],
    "list_2500": lambda: list(range(2500)),
    "list_1001": lambda: ["x"] * 1001,
    "list_nested": lambda: [[[]], [1, [2, [3]]]],
    "list_deep": lambda: nested(200),
    "tuple_empty": lambda: (),
    "tuple_1": lambda: (1,),
    "tuple_2": lambda: (1, "b"),
    "tuple_3": lambda: (1, 2, 3),
    "tuple_5": lambda: (1, 2, 3, 4, 5),
    "tuple_nested": lambda: ((), ((),), [()]),
    "dict_empty": lambda: {},
    "dict_1": lambda: {"a": 1},
    "dict_order": lambda: {"b": 1, "a": 2, "c": [3]},
    "dict_scalar_keys": lambda: {1: "i", None: "n", 2.5: "f", "k": "s", False: "b"},
    "dict_1500": lambda: {"k%d" % i: i for i in range(1500)},
    "dict_tuple_key": lambda: {(1, 2): "t", "s": 1},
    "dict_bytes_key": lambda: {b"k": 1},
    "dict_bigint_key": lambda: {2**70: "big"},
    "set_empty": lambda: set(),
    "set_ints": lambda: {1, 2, 3},
    "set_strs": lambda: {"a", "b"},
    "set_tuples": lambda: {(1, 2), (3, 4)},
    "set_1500": lambda: set(range(1500)),
    "frozenset_empty": lambda: frozenset(),
    "frozenset": lambda: frozenset({1, "x"}),
    "set_of_frozensets": lambda: {frozenset({1}), frozenset()},
    "shared": shared,
    "shared_tuple": shared_tuple,
    "record": lambda: {
        "id": 7,
        "name": "widget",
        "tags": ["a", "b"],
        "score": 0.5,
        "raw": b"\x01\x02",
        "pos": (3, -4),
        "ok": True,
        "note": None,
        "items": [{"name": "x", "qty": 1}, {"name": "y", "qty": 2}],
    },
    "recursive_list": recursive_list,
    "recursive_dict": recursive_dict,
}


def objects():
    """The objects of the manager's protocol that this Python has, by name.

    The Go test (TestObjectsPython, object_test.go) knows what each must
    decode to, by Python version."""
    import queue
    import threading
    from multiprocessing.managers import Namespace, Token

    def attr(msg, **kw):
        try:
            return AttributeError(msg, **kw)
        except TypeError:  # Python < 3.10: no name= or obj=
            return None

    noted = KeyError("k")
    noted.note = 1
    cases = {
        "empty": queue.Empty(),  # _queue.Empty from Python 3.7
        "full": queue.Full(),
        "shutdown": getattr(queue, "ShutDown", lambda: None)(),  # Python 3.13
        "keyerror": KeyError("k"),
        "indexerror": IndexError("list index out of range"),
        "valueerror": ValueError("bad", 3),
        "typeerror": TypeError("unsupported operand"),
        "attributeerror": AttributeError("'X' object has no attribute 'y'"),
        "attributeerror_name": attr("msg", name="y"),
        "keyerror_note": noted,
        "brokenbarrier": threading.BrokenBarrierError(),
        "token": Token("Queue", ("127.0.0.1", 50000), "7f00aa"),
        "token_unix": Token("dict", "/tmp/mgr.sock", "7f00bb"),
        "namespace": Namespace(a=1, b="x"),
        "namespace_empty": Namespace(),
        "slice": slice(1, 3),
        "slice_step": slice(None, None, -1),
        "error_reply": ("#ERROR", KeyError("k")),
        "proxy_reply": ("#PROXY", (("__next__",), Token("Iterator", ("127.0.0.1", 50000), "7f00aa"))),
        "two_errors": [KeyError("a"), KeyError("b")],
    }
    return {k: v for k, v in cases.items() if v is not None}


# Cases left out of the checked-in fixture (and so of the fuzz seed corpus).
LARGE = {"str_large", "bytes_large", "list_2500", "list_1001", "dict_1500", "set_1500", "int_2_2100"}


def dump(small=False):
    print(json.dumps({"python": sys.version.split()[0], "highest": pickle.HIGHEST_PROTOCOL}))
    for name, make in CASES.items():
        if small and name in LARGE:
            continue
        for proto in range(0, pickle.HIGHEST_PROTOCOL + 1):
            data = pickle.dumps(make(), protocol=proto)
            print(json.dumps({"name": name, "protocol": proto, "hex": data.hex()}))


def dump_objects():
    print(json.dumps({"python": sys.version.split()[0], "highest": pickle.HIGHEST_PROTOCOL}))
    for name, value in objects().items():
        for proto in range(0, pickle.HIGHEST_PROTOCOL + 1):
            data = pickle.dumps(value, protocol=proto)
            print(json.dumps({"name": name, "protocol": proto, "hex": data.hex()}))


def loads():
    for line in sys.stdin:
        req = json.loads(line)
        try:
            value = pickle.loads(bytes.fromhex(req["hex"]))
            cls = type(value)
            out = {"name": req["name"], "repr": repr(value), "type": cls.__module__ + "." + cls.__qualname__,
                   "redump": pickle.dumps(value, 4).hex()}
            if isinstance(value, BaseException):
                out["args"] = repr(value.args)
        except Exception as e:  # reported to the Go test, which decides
            out = {"name": req["name"], "error": "%s: %s" % (type(e).__name__, e)}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    mode = sys.argv[1] if len(sys.argv) > 1 else "dump"
    {"dump": dump, "small": lambda: dump(small=True), "objects": dump_objects, "loads": loads}[mode]()
