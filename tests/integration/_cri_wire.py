"""Protobuf wire format by hand, for the tests' small CRI clients (python3-grpcio only, no
generated code): field numbers come from k8s.io/cri-api's api.proto."""


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def f_int(num, v):
    """A varint field; zero is proto3's default and is left out."""
    return varint(num << 3) + varint(v) if v else b""


def f_bytes(num, v):
    if isinstance(v, str):
        v = v.encode()
    return varint((num << 3) | 2) + varint(len(v)) + v


def f_msg(num, fields):
    return f_bytes(num, b"".join(fields))


def _varint_at(buf, i):
    shift = n = 0
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return n, i


def decode(buf):
    """field number -> list of values (ints for varints, bytes for length-delimited)."""
    out, i = {}, 0
    while i < len(buf):
        key, i = _varint_at(buf, i)
        num, wt = key >> 3, key & 7
        if wt == 0:
            v, i = _varint_at(buf, i)
        elif wt == 2:
            n, i = _varint_at(buf, i)
            v, i = buf[i:i + n], i + n
        elif wt == 1:
            v, i = buf[i:i + 8], i + 8
        elif wt == 5:
            v, i = buf[i:i + 4], i + 4
        else:
            raise ValueError("wire type %d" % wt)
        out.setdefault(num, []).append(v)
    return out


def first(d, num, default=None):
    return d.get(num, [default])[0]
