"""-accel mixed's trace events, read by argument name.

The events are declared once, in qemu/files/accel/mixed/trace-events. Each parser here is
built from that declaration: its format string becomes a pattern whose groups carry the
declared argument names and C types. A bench therefore asks for `latency_ns`, not for
the third number on a line; rewording or reordering a format changes nothing for it, and
a renamed or dropped argument fails at once with its name instead of reading the wrong
number. Lines come from QEMU's log backend (`-trace NAME -D FILE`), with or without its
`pid@seconds:` prefix, or from a console that carries QEMU's standard error.
"""
import os
import re

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
TRACE_EVENTS = os.path.join(ROOT, "qemu", "files", "accel", "mixed", "trace-events")

DECLARATION = re.compile(r"^(\w+)\((.*?)\)\s+(\".*\")\s*$")
# A format is C string pieces and inttypes.h macros between them.
FORMAT_PIECE = re.compile(r'"((?:[^"\\]|\\.)*)"|(PRI[diuxX](?:8|16|32|64|PTR)?)')
CONVERSION = re.compile(r"%(?:%|[-+ #0]*\d*(?:\.\d+)?(?:hh|h|ll|l|z|j|t)?([diuxXscp]))")
VALUE = {"d": (r"-?\d+", int), "i": (r"-?\d+", int), "u": (r"\d+", int),
         "x": (r"[0-9a-f]+", lambda s: int(s, 16)), "X": (r"[0-9A-F]+", lambda s: int(s, 16)),
         "c": (r".", str), "s": (r".*?", str), "p": (r"\(nil\)|0x[0-9a-f]+", str)}


class TraceEventError(Exception):
    pass


def _c_format(quoted):
    """The printf format of a declaration: its string pieces joined, each PRI macro
    replaced by its conversion letter."""
    out, end = [], 0
    for m in FORMAT_PIECE.finditer(quoted):
        if quoted[end:m.start()].strip():
            raise TraceEventError(f"cannot read format {quoted}")
        end = m.end()
        # PRId64 and the like: the letter after "PRI" is the conversion.
        out.append(bytes(m.group(1), "utf-8").decode("unicode_escape") if m.group(1) is not None
                   else m.group(2)[3])
    return "".join(out)


class TraceEvent:
    def __init__(self, name, declaration, args, fmt):
        self.name = name
        self.args = args                    # [(C type, name)] in declared order
        self.c_format = fmt                 # printf format, PRI macros resolved
        pattern, casts, end = [], [], 0
        names = iter(args)
        for m in CONVERSION.finditer(fmt):
            pattern.append(re.escape(fmt[end:m.start()]))
            end = m.end()
            if m.group(1) is None:          # "%%"
                pattern.append("%")
                continue
            try:
                ctype, arg = next(names)
            except StopIteration:
                raise TraceEventError(f"{name}: more conversions than arguments in {declaration}")
            regex, cast = VALUE[m.group(1)]
            if ctype == "bool":
                cast = lambda s: s != "0"   # noqa: E731  (bool travels as %d)
            pattern.append(f"(?P<{arg}>{regex})")
            casts.append((arg, cast))
        pattern.append(re.escape(fmt[end:]))
        self.casts = casts
        # Anything may come before the name (the log backend's "pid@seconds:", or a
        # console's prefix when the log is a serial port); the line ends with the record.
        self.regex = re.compile(rf"(?<!\w){name} " + "".join(pattern) + r"\s*$", re.M)

    def require(self, *fields):
        """Fails now, with the declaration's file, if the event lacks any of these."""
        have = {a for _, a in self.args}
        missing = [f for f in fields if f not in have]
        if missing:
            raise TraceEventError(f"trace event {self.name} has no argument "
                                  f"{', '.join(missing)} ({TRACE_EVENTS}); it has {sorted(have)}")
        return self

    def parse(self, text):
        """Every record of this event in a log, as {argument name: value}."""
        return [{arg: cast(m.group(arg)) for arg, cast in self.casts}
                for m in self.regex.finditer(text)]


def load(path=TRACE_EVENTS, names=None):
    """The events declared in `path`; with `names`, only those (another subsystem's file
    may use declarations this reader has no need to understand)."""
    events = {}
    with open(path) as f:
        for line in f:
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            if names is not None and line.split("(", 1)[0] not in names:
                continue
            m = DECLARATION.match(line)
            if not m:
                raise TraceEventError(f"{path}: cannot read declaration {line!r}")
            name, params, quoted = m.groups()
            args = []
            for p in filter(None, (p.strip() for p in params.split(","))):
                if p == "void":
                    continue
                ctype, arg = p.rsplit(None, 1)
                while arg.startswith("*"):
                    ctype, arg = ctype + " *", arg[1:]
                args.append((ctype, arg))
            events[name] = TraceEvent(name, line, args, _c_format(quoted))
    return events


def event(name, *fields, path=TRACE_EVENTS):
    """The parser of one event, checked to carry the given arguments. `path` may name
    another trace-events file, such as QEMU's own accel/kvm/trace-events in the built
    source tree."""
    events = load(path, None if path == TRACE_EVENTS else {name})
    if name not in events:
        raise TraceEventError(f"no trace event {name} in {path}")
    return events[name].require(*fields)


def records(text, events):
    """Every record of the given {name: TraceEvent} in a log, in the log's order, as
    (name, {argument name: value}): for figures that depend on what came first."""
    for line in text.splitlines():
        for name, ev in events.items():
            m = ev.regex.search(line)
            if m:
                yield name, {arg: cast(m.group(arg)) for arg, cast in ev.casts}
                break
