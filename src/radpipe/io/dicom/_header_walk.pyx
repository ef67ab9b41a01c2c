# cython: language_level=3, boundscheck=False, wraparound=False, cdivision=True
"""Compiled twin of ``fast_header``'s element walk and value decoding.

``walk(data)`` gives exactly what ``fast_header._walk_python(data)`` gives — the decoded
wanted values, the tags present, the transfer syntax and the native pixel offset, or None
where the Python walk gives None — in C loops over the bytes instead of ``struct`` calls.
``tests/io/test_dicom_fast.py`` checks the two agree on every test file and on damaged copies.
The tables come from ``fast_header`` through :func:`configure`, so both read the same ones.
"""

from struct import unpack_from as _unpack_from

cdef unsigned int _ITEM = 0xFFFEE000
cdef unsigned int _ITEM_END = 0xFFFEE00D
cdef unsigned int _SEQUENCE_END = 0xFFFEE0DD
cdef unsigned int _PIXEL_DATA = 0x7FE00010
cdef unsigned int _UNDEFINED = 0xFFFFFFFF
cdef unsigned int _CHARSET = 0x00080005

# value kinds, set by configure() from each wanted attribute's VR
cdef int _SKIP = 0, _US = 1, _FD = 2, _PLAIN = 3, _TEXT = 4, _NAME = 5, _LONG_TEXT = 6

cdef dict _wanted = {}       # tag -> (keyword, kind)
cdef set _presence = set()
# the same tags as C arrays, searched without making Python integers
cdef enum:
    _MAX_TAGS = 256
cdef unsigned int _wanted_tags[_MAX_TAGS]
cdef Py_ssize_t _wanted_count = 0
cdef unsigned int _presence_tags[_MAX_TAGS]
cdef Py_ssize_t _presence_count = 0
cdef dict _decodings = {}
cdef object _implicit_syntax = None
cdef object _declined_syntaxes = frozenset()


def configure(dict wanted, presence, dict decodings, str implicit_syntax, declined_syntaxes):
    """Take the tables of ``fast_header``: wanted tags with (keyword, VR), the presence
    sequence tags, character-set decodings and the syntaxes declined."""
    global _wanted, _presence, _decodings, _implicit_syntax, _declined_syntaxes
    global _wanted_count, _presence_count
    kinds = {}
    for tag, (keyword, vr) in wanted.items():
        if vr == "US":
            kind = _US
        elif vr == "FD":
            kind = _FD
        elif vr == "PN":
            kind = _NAME
        elif vr in ("LO", "SH", "UC"):
            kind = _TEXT
        elif vr in ("LT", "ST", "UT"):
            kind = _LONG_TEXT
        elif vr in ("AE", "AS", "CS", "DA", "DS", "DT", "IS", "TM", "UI"):
            kind = _PLAIN
        else:
            kind = _SKIP
        kinds[int(tag)] = (keyword, kind)
    if len(kinds) > _MAX_TAGS or len(presence) > _MAX_TAGS:
        raise ValueError(f"at most {_MAX_TAGS} tags")
    _wanted = kinds
    _presence = {int(tag) for tag in presence}
    for index, tag in enumerate(sorted(kinds)):
        _wanted_tags[index] = tag
    _wanted_count = len(kinds)
    for index, tag in enumerate(sorted(_presence)):
        _presence_tags[index] = tag
    _presence_count = len(_presence)
    _decodings = dict(decodings)
    _implicit_syntax = implicit_syntax
    _declined_syntaxes = frozenset(declined_syntaxes)


cdef inline bint _among(
    unsigned int tag, const unsigned int* table, Py_ssize_t count
) noexcept nogil:
    """Binary search of a sorted table."""
    cdef Py_ssize_t low = 0, high = count - 1, middle
    while low <= high:
        middle = (low + high) >> 1
        if table[middle] == tag:
            return True
        if table[middle] < tag:
            low = middle + 1
        else:
            high = middle - 1
    return False


cdef inline unsigned int _u16(const unsigned char* p, Py_ssize_t i) noexcept nogil:
    return p[i] | (<unsigned int>p[i + 1] << 8)


cdef inline unsigned int _u32(const unsigned char* p, Py_ssize_t i) noexcept nogil:
    return (
        p[i]
        | (<unsigned int>p[i + 1] << 8)
        | (<unsigned int>p[i + 2] << 16)
        | (<unsigned int>p[i + 3] << 24)
    )


cdef inline bint _long_vr(unsigned char a, unsigned char b) noexcept nogil:
    """OB OW OF OD OL OV SQ UC UN UR UT SV UV: a 4-byte length after 2 reserved bytes."""
    if a == b"O":
        return b == b"B" or b == b"W" or b == b"F" or b == b"D" or b == b"L" or b == b"V"
    if a == b"U":
        return b == b"C" or b == b"N" or b == b"R" or b == b"T" or b == b"V"
    if a == b"S":
        return b == b"Q" or b == b"V"
    return False


cdef inline Py_ssize_t _explicit_value(
    const unsigned char* p, Py_ssize_t end, Py_ssize_t position, unsigned int* length
) noexcept nogil:
    """Value offset of the explicit-VR element at ``position`` (its length into ``length``),
    or -1 where the 4-byte length of a long VR runs past the data."""
    if _long_vr(p[position + 4], p[position + 5]):
        if position + 12 > end:
            return -1
        length[0] = _u32(p, position + 8)
        return position + 12
    length[0] = _u16(p, position + 6)
    return position + 8


cdef Py_ssize_t _empty_sequence(
    const unsigned char* p, Py_ssize_t end, Py_ssize_t value_start, unsigned int length
) noexcept nogil:
    """1 when every item of the sequence is empty, 0 when not, -1 where the Python walk's
    ``struct`` call would fail (the parse gives None)."""
    cdef Py_ssize_t position = value_start
    cdef Py_ssize_t stop = end if length == _UNDEFINED else value_start + length
    cdef unsigned int tag, item_length
    while position + 8 <= stop:
        if position + 8 > end:
            return -1
        tag = (_u16(p, position) << 16) | _u16(p, position + 2)
        item_length = _u32(p, position + 4)
        if tag == _SEQUENCE_END:
            return 1
        if tag == _ITEM and item_length == 0:
            position += 8
        elif tag == _ITEM and item_length == _UNDEFINED and position + 12 <= stop:
            if position + 12 > end:
                return -1
            if ((_u16(p, position + 8) << 16) | _u16(p, position + 10)) != _ITEM_END:
                return 0
            position += 16
        else:
            return 0
    return 0 if length == _UNDEFINED else 1


cdef Py_ssize_t _skip_undefined(
    const unsigned char* p, Py_ssize_t end, Py_ssize_t position, bint implicit
) noexcept nogil:
    """The position after the delimiter of a sequence of undefined length, or -1."""
    cdef int depth = 1
    cdef unsigned int tag, length
    cdef Py_ssize_t value_start
    while position + 8 <= end:
        tag = (_u16(p, position) << 16) | _u16(p, position + 2)
        length = _u32(p, position + 4)
        if tag == _SEQUENCE_END or tag == _ITEM_END:
            position += 8
            if tag == _SEQUENCE_END:
                depth -= 1
                if depth == 0:
                    return position
            continue
        if tag == _ITEM:
            position += 8 if length == _UNDEFINED else 8 + <Py_ssize_t>length
            continue
        if implicit:
            value_start = position + 8
        else:
            value_start = _explicit_value(p, end, position, &length)
            if value_start < 0:
                return -1
        if length == _UNDEFINED:
            depth += 1
            position = value_start
        else:
            position = value_start + length
    return -1


def walk(bytes data):
    """``(values, tags, syntax, pixel_offset)`` of a DICOM file's first bytes, or None (see
    ``fast_header._walk_python``, which this reproduces exactly)."""
    cdef const unsigned char* p = data
    cdef Py_ssize_t end = len(data)
    cdef Py_ssize_t position = 132, value_start
    cdef unsigned int group, element, tag, length
    cdef bint implicit, is_sequence
    cdef Py_ssize_t empty
    syntax = None
    while position + 8 <= end:
        group = _u16(p, position)
        element = _u16(p, position + 2)
        if group != 0x0002:
            break
        value_start = _explicit_value(p, end, position, &length)
        if value_start < 0:
            return None
        if element == 0x0010:
            try:
                syntax = data[value_start : value_start + length].rstrip(b"\0 ").decode("ascii")
            except UnicodeDecodeError:
                return None
        position = value_start + length
    if syntax is None or syntax in _declined_syntaxes:
        return None
    implicit = syntax == _implicit_syntax
    cdef dict raw = {}
    cdef set tags = set()
    while True:
        if position + 8 > end:
            return None  # ran out before the pixel data: the caller reads more
        tag = (_u16(p, position) << 16) | _u16(p, position + 2)
        if implicit:
            length = _u32(p, position + 4)
            value_start = position + 8
            is_sequence = length == _UNDEFINED or _among(tag, _presence_tags, _presence_count)
        else:
            value_start = _explicit_value(p, end, position, &length)
            if value_start < 0:
                return None
            is_sequence = p[position + 4] == b"S" and p[position + 5] == b"Q"
        if tag == _PIXEL_DATA:
            tags.add(tag)
            values = _decode(raw)
            if values is None:
                return None
            return values, tags, syntax, (None if length == _UNDEFINED else value_start)
        if tag > _PIXEL_DATA:
            return None
        if _among(tag, _presence_tags, _presence_count):
            empty = _empty_sequence(p, end, value_start, length)
            if empty < 0:
                return None
            if not empty:
                tags.add(tag)
        else:
            tags.add(tag)
        if length == _UNDEFINED:
            if not is_sequence and not implicit:
                return None
            position = _skip_undefined(p, end, value_start, implicit)
            if position < 0:
                return None
            continue
        if _among(tag, _wanted_tags, _wanted_count):
            raw[tag] = data[value_start : value_start + length]
        position = value_start + length
        if position > end:
            return None


cdef object _decode(dict raw):
    """The wanted values decoded as ``fast_header._decode_values`` does, or None where it
    raises (a character set it leaves to pydicom, or text that is not in it)."""
    cdef bytes value
    cdef int kind
    charset_bytes = raw.get(_CHARSET, b"")
    charset = charset_bytes.decode("ascii", "replace").strip(" \0")
    encoding = _decodings.get(charset)
    cdef dict values = {}
    for tag, value in raw.items():
        keyword, kind = _wanted[tag]
        if kind == _US:
            if len(value) >= 2:
                values[keyword] = (<const unsigned char*>value)[0] | (
                    (<const unsigned char*>value)[1] << 8
                )
            continue
        if kind == _FD:
            if len(value) >= 8:
                values[keyword] = _unpack_from("<d", value)[0]
            continue
        if kind == _SKIP:
            continue
        if encoding is None and kind != _PLAIN:
            return None
        try:
            text = value.decode(encoding or "latin-1").rstrip("\0 ")
        except UnicodeDecodeError:
            return None
        if kind != _LONG_TEXT:
            if "\\" in text:
                if kind == _NAME:
                    values[keyword] = [part.rstrip() for part in text.split("\\")]
                else:
                    values[keyword] = [part.strip() for part in text.split("\\")]
                continue
            text = text.rstrip() if kind == _NAME else text.strip()
        if text == "":
            continue
        values[keyword] = text
    return values

