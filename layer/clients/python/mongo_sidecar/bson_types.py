"""The BSON types that have no standard-library equivalent, as small value classes.

Their conversions to and from Extended JSON live in ``ejson.py``.
"""

import binascii
import datetime
import itertools
import os
import re
import threading
import time

_HEX_24 = re.compile(r"[0-9a-fA-F]{24}\Z")

# ObjectId generation: 4 bytes of seconds, 5 random bytes per process, a 3-byte counter.
_PROCESS_UNIQUE = os.urandom(5)
_counter = itertools.count(int.from_bytes(os.urandom(3), "big"))
_counter_lock = threading.Lock()


class ObjectId:
    """A 12-byte MongoDB id. ``ObjectId()`` makes a new one; ``ObjectId(hex_or_bytes)`` parses one.

    ``str()`` is its 24-character lowercase hex form; equal ids compare and hash equal.
    """

    __slots__ = ("_hex",)

    def __init__(self, oid=None):
        if oid is None:
            with _counter_lock:
                count = next(_counter) % 0x1000000
            raw = int(time.time()).to_bytes(4, "big") + _PROCESS_UNIQUE + count.to_bytes(3, "big")
            self._hex = raw.hex()
        elif isinstance(oid, str) and _HEX_24.match(oid):
            self._hex = oid.lower()
        elif isinstance(oid, ObjectId):
            self._hex = oid._hex
        elif isinstance(oid, (bytes, bytearray)) and len(oid) == 12:
            self._hex = bytes(oid).hex()
        else:
            raise TypeError(f"ObjectId takes 24 hexadecimal characters, 12 bytes or nothing, not {oid!r}")

    @classmethod
    def is_valid(cls, oid) -> bool:
        try:
            cls(oid)
        except TypeError:
            return False
        return oid is not None

    @property
    def binary(self) -> bytes:
        return binascii.unhexlify(self._hex)

    @property
    def generation_time(self) -> datetime.datetime:
        """When the id was made (second precision), UTC."""
        return datetime.datetime.fromtimestamp(int(self._hex[:8], 16), datetime.timezone.utc)

    def __str__(self):
        return self._hex

    def __repr__(self):
        return f"ObjectId('{self._hex}')"

    def __eq__(self, other):
        if isinstance(other, ObjectId):
            return self._hex == other._hex
        return NotImplemented

    def __lt__(self, other):
        if isinstance(other, ObjectId):
            return self._hex < other._hex
        return NotImplemented

    def __le__(self, other):
        if isinstance(other, ObjectId):
            return self._hex <= other._hex
        return NotImplemented

    def __gt__(self, other):
        if isinstance(other, ObjectId):
            return self._hex > other._hex
        return NotImplemented

    def __ge__(self, other):
        if isinstance(other, ObjectId):
            return self._hex >= other._hex
        return NotImplemented

    def __hash__(self):
        return hash(self._hex)


class Binary(bytes):
    """Bytes with a BSON subtype other than 0 (generic) and 4 (UUID, decoded as ``uuid.UUID``).

    Equal only to a Binary with the same bytes and subtype.
    """

    def __new__(cls, data, subtype=0):
        if not isinstance(subtype, int) or not 0 <= subtype <= 0xFF:
            raise TypeError(f"Binary subtype must be an integer from 0 to 255, not {subtype!r}")
        self = super().__new__(cls, data)
        self._subtype = subtype
        return self

    @property
    def subtype(self) -> int:
        return self._subtype

    def __eq__(self, other):
        if isinstance(other, Binary):
            return self._subtype == other._subtype and bytes(self) == bytes(other)
        return False

    def __ne__(self, other):
        return not self == other

    def __hash__(self):
        return hash((bytes(self), self._subtype))

    def __repr__(self):
        return f"Binary({bytes(self)!r}, {self._subtype})"

    def __reduce__(self):
        return (Binary, (bytes(self), self._subtype))


# The BSON regular expression options and the `re` flags that mean the same.
_RE_FLAGS = {"i": re.IGNORECASE, "l": re.LOCALE, "m": re.MULTILINE, "s": re.DOTALL, "x": re.VERBOSE}


class Regex:
    """A BSON regular expression: a PCRE ``pattern`` and its ``flags`` (options i, l, m, s, u, x).

    Kept as it is, because not every PCRE pattern compiles with Python's ``re``; ``try_compile()``
    gives an ``re.Pattern`` where it does.
    """

    __slots__ = ("pattern", "flags")

    def __init__(self, pattern, flags=""):
        self.pattern = pattern
        self.flags = "".join(sorted(flags))

    @classmethod
    def from_native(cls, compiled) -> "Regex":
        """From an ``re.Pattern``: IGNORECASE, LOCALE, MULTILINE, DOTALL and VERBOSE carry over."""
        pattern = compiled.pattern
        if isinstance(pattern, bytes):
            pattern = pattern.decode("utf-8")
        return cls(pattern, "".join(opt for opt, flag in _RE_FLAGS.items() if compiled.flags & flag))

    def try_compile(self):
        """An ``re.Pattern``; raises ``re.error`` for PCRE syntax Python does not read."""
        flags = 0
        for option in self.flags:
            if option != "l":  # LOCALE only applies to bytes patterns
                flags |= _RE_FLAGS.get(option, 0)
        return re.compile(self.pattern, flags)

    def __eq__(self, other):
        if isinstance(other, Regex):
            return (self.pattern, self.flags) == (other.pattern, other.flags)
        return NotImplemented

    def __hash__(self):
        return hash((self.pattern, self.flags))

    def __repr__(self):
        return f"Regex({self.pattern!r}, {self.flags!r})"


class Timestamp:
    """A BSON timestamp (replication oplog time): ``time`` in seconds and an increment ``inc``."""

    __slots__ = ("time", "inc")

    def __init__(self, time, inc):
        for name, value in (("time", time), ("inc", inc)):
            if not isinstance(value, int) or not 0 <= value <= 0xFFFFFFFF:
                raise TypeError(f"Timestamp {name} must be an unsigned 32-bit integer, not {value!r}")
        self.time = time
        self.inc = inc

    def __eq__(self, other):
        if isinstance(other, Timestamp):
            return (self.time, self.inc) == (other.time, other.inc)
        return NotImplemented

    def __hash__(self):
        return hash((self.time, self.inc))

    def __repr__(self):
        return f"Timestamp({self.time}, {self.inc})"


class MinKey:
    """Sorts before every other value."""

    __slots__ = ()

    def __eq__(self, other):
        return isinstance(other, MinKey)

    def __hash__(self):
        return hash(MinKey)

    def __repr__(self):
        return "MinKey()"


class MaxKey:
    """Sorts after every other value."""

    __slots__ = ()

    def __eq__(self, other):
        return isinstance(other, MaxKey)

    def __hash__(self):
        return hash(MaxKey)

    def __repr__(self):
        return "MaxKey()"


# Code and DatetimeMS are not str/int subclasses on purpose: json.dumps writes those as plain
# strings and numbers without asking the encoder, and they must stay their own BSON types.


class Code:
    """JavaScript code stored as a value, with an optional ``scope`` document."""

    __slots__ = ("code", "scope")

    def __init__(self, code, scope=None):
        self.code = str(code)
        self.scope = scope

    def __str__(self):
        return self.code

    def __eq__(self, other):
        if isinstance(other, Code):
            return (self.code, self.scope) == (other.code, other.scope)
        return NotImplemented

    def __hash__(self):
        return hash(self.code)

    def __repr__(self):
        return f"Code({self.code!r}, {self.scope!r})"


class DatetimeMS:
    """A BSON date outside ``datetime``'s years 1-9999: ``ms`` milliseconds since the Unix epoch."""

    __slots__ = ("ms",)

    def __init__(self, ms):
        self.ms = int(ms)

    def __int__(self):
        return self.ms

    def __eq__(self, other):
        if isinstance(other, DatetimeMS):
            return self.ms == other.ms
        return NotImplemented

    def __hash__(self):
        return hash(self.ms)

    def __repr__(self):
        return f"DatetimeMS({self.ms})"
