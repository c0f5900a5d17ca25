#!/usr/bin/python3
"""Seed corpus of fuzz_image_layer: the hostile layers of tests/unit/test_image_unpack.c and
tests/integration/60-image-import.sh, more of the same kind, and valid layers (every entry
type, whiteouts, opaque directories, xattrs, file capabilities, sparse files, long names).

Each seed is one selector byte then the blob (see tests/fuzz/fuzz_image_layer.c): byte % 16 != 0
extracts directly, == 0 goes through the store (blob put + unpack with its diffID; a wrong
diffID when byte & 0x20). Every layer is
written plain; valid ones also gzip (direct and through the store) and zstd when the zstd
CLI is there. The harness's base directory holds root/ (the layer root), outside/{file,dir/}, secret
and store/, so "../outside", "../secret" and "../store" are what hostile entries aim at.

Usage: tests/fuzz/gen/image_layer.py [OUTDIR]  (default tests/fuzz/corpus/fuzz_image_layer)
Deterministic: the same files every run (fixed mtimes, no user/group names)."""
import gzip
import hashlib
import io
import os
import subprocess
import sys
import tarfile

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
    os.path.dirname(os.path.abspath(__file__)), '..', 'corpus', 'fuzz_image_layer')

CAP_NET_RAW = b'\x01\x00\x00\x02\x00\x20\x00\x00' + b'\x00' * 12


def entry(name, kind='f', data=b'', link='', mode=None, uid=0, gid=0, xattrs=None, dev=(0, 0)):
    return dict(name=name, kind=kind, data=data, link=link, mode=mode, uid=uid, gid=gid,
                xattrs=xattrs or {}, dev=dev)


TYPES = {'f': tarfile.REGTYPE, 'd': tarfile.DIRTYPE, 'l': tarfile.SYMTYPE, 'h': tarfile.LNKTYPE,
         'c': tarfile.CHRTYPE, 'b': tarfile.BLKTYPE, 'p': tarfile.FIFOTYPE}


def tar(entries, fmt=tarfile.PAX_FORMAT):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=fmt) as t:
        for e in entries:
            i = tarfile.TarInfo(e['name'])
            i.type = TYPES[e['kind']]
            i.linkname = e['link']
            i.mode = e['mode'] if e['mode'] is not None else (0o755 if e['kind'] == 'd' else 0o644)
            i.uid, i.gid = e['uid'], e['gid']
            i.uname = i.gname = ''
            i.mtime = 1000000000
            i.devmajor, i.devminor = e['dev']
            if e['xattrs']:
                i.pax_headers = {'SCHILY.xattr.' + k: v for k, v in e['xattrs'].items()}
            data = e['data'] if e['kind'] == 'f' else b''
            i.size = len(data)
            t.addfile(i, io.BytesIO(data) if data else None)
    return buf.getvalue()


def gz(b):
    return gzip.compress(b, mtime=0)


def zst(b):
    """zstd through the CLI (python3 has no zstd module of its own); None without it."""
    try:
        return subprocess.run(['zstd', '-q', '-c', '--no-check'], input=b, stdout=subprocess.PIPE,
                               check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None


HOSTILE = {
    # tests/unit/test_image_unpack.c
    'dotdot': [entry('a/../../pwned', data=b'x')],
    'dotdot-outside': [entry('../outside/x', data=b'x')],
    'absolute': [entry('/tmp/kelp-fuzz-pwned', data=b'x')],
    'symlink-abs-then-file': [entry('evil', 'l', link='/tmp'), entry('evil/kelp-fuzz-pwned', data=b'x')],
    'symlink-rel-then-dir': [entry('rel', 'l', link='../outside'), entry('rel/sub', 'd')],
    'symlink-rel-then-file': [entry('rel', 'l', link='../outside'), entry('rel/x', data=b'x')],
    'symlink-to-outside-file-then-file': [entry('lnk', 'l', link='../outside/file'), entry('lnk', data=b'x')],
    'hardlink-dotdot': [entry('h', 'h', link='../secret')],
    'hardlink-abs': [entry('h', 'h', link='/etc/passwd')],
    'hardlink-through-symlink': [entry('up', 'l', link='..'), entry('h', 'h', link='up/secret')],
    'hardlink-missing': [entry('h', 'h', link='missing')],
    # tests/integration/60-image-import.sh
    'import-dotdot': [entry('a/../../../../../../../../tmp/kelp-fuzz-pwned', data=b'pwned')],
    'import-symlink': [entry('lnk', 'l', link='/tmp'), entry('lnk/kelp-fuzz-pwned', data=b'pwned')],
    'import-hardlink': [entry('h', 'h', link='../../../../../../../../etc/passwd')],
    # more of the kind
    'symlink-chain': [entry('a', 'l', link='b'), entry('b', 'l', link='../outside'), entry('a/x', data=b'x')],
    'symlink-dir-then-deep': [entry('d', 'd'), entry('d/up', 'l', link='../..'), entry('d/up/outside/x', data=b'x')],
    'symlink-self-loop': [entry('loop', 'l', link='loop'), entry('loop/x', data=b'x')],
    'symlink-then-hardlink-onto-it': [entry('lnk', 'l', link='../outside/file'), entry('f', data=b'x'),
                                      entry('lnk', 'h', link='f')],
    'hardlink-to-symlink-to-outside': [entry('lnk', 'l', link='../outside/file'), entry('h', 'h', link='lnk')],
    'hardlink-to-dir': [entry('d', 'd'), entry('h', 'h', link='d')],
    'hardlink-to-root': [entry('h', 'h', link='.')],
    'hardlink-dot-slash': [entry('f', data=b'x'), entry('./h', 'h', link='./f')],
    'hardlink-through-symlink-dir': [entry('o', 'l', link='../outside'), entry('h', 'h', link='o/file')],
    'whiteout-dotdot': [entry('.wh...', data=b'')],
    'whiteout-dot': [entry('.wh..', data=b'')],
    'whiteout-empty': [entry('.wh.', data=b'')],
    'whiteout-escape-path': [entry('../.wh.outside', data=b'')],
    'whiteout-through-symlink': [entry('o', 'l', link='../outside'), entry('o/.wh.file', data=b'')],
    'whiteout-of-symlink-target': [entry('o', 'l', link='../outside'), entry('.wh.o', data=b'')],
    'opaque-through-symlink': [entry('o', 'l', link='../outside'), entry('o/.wh..wh..opq', data=b'')],
    'opaque-root': [entry('.wh..wh..opq', data=b'')],
    'opaque-xattr-smuggled': [entry('d', 'd', xattrs={'trusted.overlay.opaque': 'y'}),
                              entry('f', data=b'x', xattrs={'trusted.overlay.redirect': '/outside'})],
    'aufs-meta': [entry('.wh..wh.plnk', 'd'), entry('.wh..wh.plnk/123.456', data=b'x')],
    'device-nodes': [entry('dev/null', 'c', mode=0o666, dev=(1, 3)), entry('dev/sda', 'b', mode=0o660, dev=(8, 0)),
                     entry('dev/fifo', 'p')],
    'device-then-file-through': [entry('n', 'c', dev=(1, 3)), entry('n/x', data=b'x')],
    'file-then-file-under-it': [entry('f', data=b'x'), entry('f/g', data=b'y')],
    'dir-replaced-by-symlink': [entry('d', 'd'), entry('d/f', data=b'x'), entry('d', 'l', link='../outside'),
                                entry('d/g', data=b'y')],
    'huge-name': [entry('n' * 255, data=b'x'), entry('m' * 256, data=b'y')],
    'huge-path': [entry('/'.join(['d' * 200] * 22), data=b'x')],
    'deep-path-200': [entry('a/' * 200 + 'f', data=b'x')],
    'empty-name': [entry('', data=b'x')],
    'dot-only': [entry('.', 'd', mode=0o700), entry('./', 'd', mode=0o777)],
    'slashes': [entry('a//b///c', data=b'x'), entry('./a/./b/./d', data=b'y')],
    'setuid-root-file': [entry('bin/su', data=b'#!', mode=0o4755)],
    'xattr-security-capability': [entry('bin/ping', data=b'', mode=0o755, xattrs={'security.capability': CAP_NET_RAW.decode('latin-1')})],
    'xattr-weird-names': [entry('f', data=b'x', xattrs={'user.a': 'b', 'system.posix_acl_access': 'x', 'bogus': 'y'})],
    'mode-zero-dir': [entry('locked', 'd', mode=0), entry('locked/f', data=b'x', mode=0)],
    'uid-gid-big': [entry('f', data=b'x', uid=2**21 - 1, gid=65534)],
}

VALID = {
    'valid-full': [
        entry('./etc/', 'd', mode=0o750),
        entry('./etc/motd', data=b'hello\n', mode=0o640, uid=1000, gid=1001, xattrs={'user.kelp': 'v'}),
        entry('bin/tool', data=b'#!', mode=0o4755),
        entry('bin/sh', 'l', link='/bin/busybox'),
        entry('etc/motd2', 'h', link='etc/motd'),
        entry('dev/null', 'c', mode=0o666, dev=(1, 3)),
        entry('etc/.wh.gone', data=b''),
        entry('opq', 'd'),
        entry('opq/.wh..wh..opq', data=b''),
        entry('opq/kept', data=b'k', xattrs={'trusted.overlay.opaque': 'y'}),
    ],
    'valid-hello': [entry('hello', data=b'world')],
    'valid-busybox-like': [entry('bin', 'd'), entry('bin/busybox', data=b'\x7fELF' + b'\0' * 60, mode=0o755),
                           entry('bin/ls', 'h', link='bin/busybox'), entry('bin/cat', 'h', link='bin/busybox'),
                           entry('usr/bin/env', 'l', link='../../bin/busybox'), entry('tmp', 'd', mode=0o1777)],
    'valid-replace': [entry('f', data=b'1'), entry('f', data=b'22'), entry('d', 'd'), entry('d/x', data=b'x'),
                      entry('d', 'd', mode=0o700), entry('l', 'l', link='f'), entry('l', data=b'3')],
    'valid-upper-whiteouts': [entry('etc/.wh.passwd', data=b''), entry('var/.wh..wh..opq', data=b''),
                              entry('var/new', data=b'n'), entry('.wh.tmp', data=b'')],
}


def sparse_gnu():
    """A GNU sparse file (old format) written by hand: 1 MiB apparent, 4 bytes of data."""
    t = tarfile.TarInfo('sparse')
    t.size = 4
    t.mtime = 1000000000
    t.mode = 0o644
    h = bytearray(t.tobuf(tarfile.GNU_FORMAT))
    h[156] = ord('S')
    # sparse map at 386: offset 12 bytes, numbytes 12 bytes; realsize at 483
    h[386:398] = b'%011o\0' % 0x10000
    h[398:410] = b'%011o\0' % 4
    h[483:495] = b'%011o\0' % (1 << 20)
    h[148:156] = b' ' * 8
    h[148:156] = b'%06o\0 ' % sum(h)
    data = b'data' + b'\0' * 508
    return bytes(h) + data + b'\0' * 1024


# Reproducers of what the fuzzer found (tests/fuzz/crashes/fuzz_image_layer-N); each joins the
# corpus once its fix is in (docs/reliability.md), until then it is only written to crashes/.
CRASHES = os.path.join(os.path.dirname(os.path.abspath(__file__)), '..', 'crashes')
FOUND = {
    # 1100 nested directories: extracted fine, but kelp_rm_rf_at (the store's GC) holds one fd per
    # level and fails with EMFILE under a service's 1024 fd limit: the layer is never removed.
    1: ('deep-path-1100', 1, [entry('a/' * 1100 + 'f', data=b'x')]),
}
FIXED = {1}  # numbers of FOUND whose fix is applied: they go into the corpus too


def write(name, sel, blob, out=None):
    if blob is None:
        return
    h = hashlib.sha1(blob).hexdigest()[:8]
    path = out or os.path.join(OUT, '%s-%02x-%s' % (name, sel, h))
    with open(path, 'wb') as f:
        f.write(bytes([sel]) + blob)


def main():
    os.makedirs(OUT, exist_ok=True)
    for name, ents in HOSTILE.items():
        plain = tar(ents)
        write(name, 1, plain)
        write(name, 0, plain)
    for name, ents in VALID.items():
        plain = tar(ents)
        write(name, 1, plain)
        write(name, 0, plain)
        write(name + '-gz', 2, gz(plain))
        write(name + '-gz', 0x10, gz(plain))
        write(name + '-wrong-diffid', 0x20, plain)
        write(name + '-zst', 3, zst(plain))
        write(name + '-gnu', 4, tar(ents, tarfile.GNU_FORMAT))
    write('valid-sparse-gnu', 5, sparse_gnu())
    write('empty', 1, b'')
    write('end-marker-only', 1, b'\0' * 1024)
    write('not-a-tar', 1, b'hello world\n')
    write('gzip-garbage', 1, b'\x1f\x8b\x08\x00' + b'\xff' * 32)
    write('zstd-garbage', 0, b'\x28\xb5\x2f\xfd' + b'\xff' * 32)
    write('truncated', 1, tar(VALID['valid-full'])[:700])
    os.makedirs(CRASHES, exist_ok=True)
    for n, (name, sel, ents) in FOUND.items():
        write(name, sel, tar(ents), os.path.join(CRASHES, 'fuzz_image_layer-%d' % n))
        if n in FIXED:
            write(name, sel, tar(ents))


if __name__ == '__main__':
    main()
