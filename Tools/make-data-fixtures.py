#!/usr/bin/env python3
"""Writes the ModelKitData golden and corrupt fixtures under Fixtures/data/.

Independent of the Swift code: .npy files come from numpy, PNGs from Pillow where Pillow can write
the format and otherwise from the small PNG writer below (checked by decoding with Pillow), IDX
files from struct/numpy/gzip. Every PNG gets `<name>.expected.npy`: the pixels a decoder must
produce as uint8 [height, width, channels], with alpha dropped, sub-byte gray scaled to 0..255 and
16-bit samples rounded to round(v / 257).

Run with the repository's venv:  /work/main/.venv/bin/python Tools/make-data-fixtures.py
Needs numpy and pillow. Deterministic: rerunning rewrites identical files.
"""
import gzip
import io
import os
import struct
import zlib

import numpy as np
from PIL import Image

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "Fixtures", "data")
CORRUPT = os.path.join(ROOT, "corrupt")
rng = np.random.default_rng(20240611)


def out(name, data):
    path = os.path.join(ROOT, name)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def gz(data):
    # mtime=0 keeps the output deterministic.
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as f:
        f.write(data)
    return buf.getvalue()


def npy_bytes(array, version=None):
    buf = io.BytesIO()
    np.lib.format.write_array(buf, array, version=version)
    return buf.getvalue()


# ---------------------------------------------------------------------------- .npy
def make_npy():
    out("npy/f4.npy", npy_bytes((np.arange(12, dtype=np.float32) * 0.5 - 2.0).reshape(3, 4)))
    out("npy/f4-1d.npy", npy_bytes(np.array([1.5, -0.25, 1e-3], dtype=np.float32)))
    out("npy/f4-scalar.npy", npy_bytes(np.array(3.25, dtype=np.float32)))
    out("npy/f4-empty.npy", npy_bytes(np.zeros((0, 3), dtype=np.float32)))
    out("npy/u1.npy", npy_bytes(np.array([[0, 1, 127], [128, 254, 255]], dtype=np.uint8)))
    out("npy/i1.npy", npy_bytes(np.array([-128, -1, 0, 127], dtype=np.int8)))
    out("npy/i4.npy", npy_bytes(np.array([[-2147483648, -7], [0, 16777216]], dtype="<i4")))
    out("npy/f8.npy", npy_bytes(np.array([[0.1, -2.5], [1e10, np.pi]], dtype="<f8")))
    out("npy/f4-v2.npy", npy_bytes(np.arange(6, dtype=np.float32).reshape(2, 1, 3), version=(2, 0)))
    out("npy/u1-v3.npy", npy_bytes(np.arange(5, dtype=np.uint8), version=(3, 0)))


# ---------------------------------------------------------------------------- PNG
ADAM7 = [(0, 0, 8, 8), (4, 0, 8, 8), (0, 4, 4, 8), (2, 0, 4, 4), (0, 2, 2, 4), (1, 0, 2, 2), (0, 1, 1, 2)]


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def pack_row(samples, depth):
    if depth == 8:
        return bytes(int(s) for s in samples)
    if depth == 16:
        return b"".join(struct.pack(">H", int(s)) for s in samples)
    out_bytes, acc, bits = bytearray(), 0, 0
    for s in samples:
        acc = (acc << depth) | int(s)
        bits += depth
        if bits == 8:
            out_bytes.append(acc)
            acc, bits = 0, 0
    if bits:
        out_bytes.append(acc << (8 - bits))
    return bytes(out_bytes)


def filter_row(raw, prev, ftype, bpp):
    res = bytearray()
    for i, x in enumerate(raw):
        a = raw[i - bpp] if i >= bpp else 0
        b = prev[i]
        c = prev[i - bpp] if i >= bpp else 0
        if ftype == 0:
            pred = 0
        elif ftype == 1:
            pred = a
        elif ftype == 2:
            pred = b
        elif ftype == 3:
            pred = (a + b) // 2
        else:
            p = a + b - c
            pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
            pred = a if pa <= pb and pa <= pc else (b if pb <= pc else c)
        res.append((x - pred) & 0xFF)
    return bytes(res)


def encode_png(samples, depth, color_type, interlace=False, palette=None, extra_chunks=()):
    """samples: int array [h, w, channels in file]. Row filters cycle through 0..4."""
    h, w, ch = samples.shape
    bpp = max(1, ch * depth // 8)
    passes = ADAM7 if interlace else [(0, 0, 1, 1)]
    raw = bytearray()
    counter = 0
    for x0, y0, dx, dy in passes:
        sub = samples[y0::dy, x0::dx]
        if sub.shape[0] == 0 or sub.shape[1] == 0:
            continue
        prev = bytes(len(pack_row(sub[0].reshape(-1), depth)))
        for row in sub:
            packed = pack_row(row.reshape(-1), depth)
            ftype = counter % 5
            counter += 1
            raw.append(ftype)
            raw += filter_row(packed, prev, ftype, bpp)
            prev = packed
    png = b"\x89PNG\r\n\x1a\n"
    png += chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, depth, color_type, 0, 0, 1 if interlace else 0))
    for kind, data in extra_chunks:
        png += chunk(kind, data)
    if palette is not None:
        png += chunk(b"PLTE", bytes(palette))
    compressed = zlib.compress(bytes(raw), 9)
    half = len(compressed) // 2  # two IDAT chunks, to exercise concatenation
    png += chunk(b"IDAT", compressed[:half]) + chunk(b"IDAT", compressed[half:])
    png += chunk(b"IEND", b"")
    return png


def ihdr_of(png):
    return struct.unpack(">IIBBBBB", png[16:29])


def save_png(name, png, expected):
    expected = np.ascontiguousarray(expected.astype(np.uint8))
    out("png/" + name + ".png", png)
    out("png/" + name + ".expected.npy", npy_bytes(expected))


def pillow_png(image, **kwargs):
    buf = io.BytesIO()
    image.save(buf, format="PNG", **kwargs)
    return buf.getvalue()


def check_with_pillow(png, expected):
    """Pillow must decode our hand-written PNG to the same pixels."""
    im = Image.open(io.BytesIO(png))
    mode = "L" if expected.shape[2] == 1 else "RGB"
    got = np.asarray(im.convert(mode)).reshape(expected.shape)
    assert np.array_equal(got, expected), "Pillow disagrees"


def rand(shape, high):
    return rng.integers(0, high, size=shape, dtype=np.int64)


def make_png():
    # Pillow-written 8-bit images.
    gray = rand((5, 7), 256)
    png = pillow_png(Image.fromarray(gray.astype(np.uint8), "L"))
    assert ihdr_of(png)[2:4] == (8, 0)
    save_png("gray8", png, gray[:, :, None])

    rgb = rand((4, 6, 3), 256)
    png = pillow_png(Image.fromarray(rgb.astype(np.uint8), "RGB"))
    assert ihdr_of(png)[2:4] == (8, 2)
    save_png("rgb8", png, rgb)

    rgba = rand((4, 5, 4), 256)
    png = pillow_png(Image.fromarray(rgba.astype(np.uint8), "RGBA"))
    assert ihdr_of(png)[2:4] == (8, 6)
    save_png("rgba8", png, rgba[:, :, :3])

    la = rand((3, 6, 2), 256)
    png = pillow_png(Image.fromarray(la.astype(np.uint8), "LA"))
    assert ihdr_of(png)[2:4] == (8, 4)
    save_png("graya8", png, la[:, :, :1])

    palette = rand((40, 3), 256)
    index = rand((5, 6), 40)
    im = Image.fromarray(index.astype(np.uint8), "P")
    im.putpalette(palette.astype(np.uint8).reshape(-1).tolist())
    png = pillow_png(im)
    assert ihdr_of(png)[2:4] == (8, 3)
    save_png("palette8", png, palette[index])

    palette16 = rand((16, 3), 256)
    index16 = rand((4, 7), 16)
    im = Image.fromarray(index16.astype(np.uint8), "P")
    im.putpalette(palette16.astype(np.uint8).reshape(-1).tolist())
    png = pillow_png(im, bits=4)
    assert ihdr_of(png)[2:4] == (4, 3), ihdr_of(png)
    save_png("palette4", png, palette16[index16])

    bits = rand((5, 11), 2)
    png = pillow_png(Image.fromarray((bits * 255).astype(np.uint8), "L").convert("1"))
    assert ihdr_of(png)[2:4] == (1, 0), ihdr_of(png)
    save_png("gray1", png, (bits * 255)[:, :, None])

    gray16 = rand((3, 5), 65536)
    gray16[0, :3] = [0, 65535, 128]  # the ends and a value that rounds down (128/257 < 0.5)
    png = pillow_png(Image.fromarray(gray16.astype(np.uint16)))
    assert ihdr_of(png)[2:4] == (16, 0), ihdr_of(png)
    save_png("gray16", png, np.rint(gray16 / 257.0)[:, :, None])

    # Hand-written: depths and layouts Pillow cannot write, every filter type, Adam7.
    g2 = rand((4, 9), 4)
    png = encode_png(g2[:, :, None], 2, 0)
    save_png("gray2", png, (g2 * 85)[:, :, None])
    check_with_pillow(png, (g2 * 85)[:, :, None].astype(np.uint8))

    g4 = rand((6, 5), 16)
    png = encode_png(g4[:, :, None], 4, 0)
    save_png("gray4", png, (g4 * 17)[:, :, None])
    check_with_pillow(png, (g4 * 17)[:, :, None].astype(np.uint8))

    rgb16 = rand((3, 4, 3), 65536)
    png = encode_png(rgb16, 16, 2)
    save_png("rgb16", png, np.rint(rgb16 / 257.0))

    la16 = rand((2, 3, 2), 65536)
    png = encode_png(la16, 16, 4)
    save_png("graya16", png, np.rint(la16[:, :, :1] / 257.0))

    rgbf = rand((9, 13, 3), 256)
    png = encode_png(rgbf, 8, 2)
    save_png("rgb8-filters", png, rgbf)
    check_with_pillow(png, rgbf.astype(np.uint8))

    rgbaf = rand((6, 4, 4), 256)
    png = encode_png(rgbaf, 8, 6, extra_chunks=[(b"tEXt", b"Comment\x00ancillary chunk to skip")])
    save_png("rgba8-filters", png, rgbaf[:, :, :3])
    check_with_pillow(png, rgbaf[:, :, :3].astype(np.uint8))

    pal2 = rand((4, 3), 256)
    idx2 = rand((5, 7), 4)
    png = encode_png(idx2[:, :, None], 2, 3, palette=pal2.reshape(-1).tolist())
    save_png("palette2", png, pal2[idx2])
    check_with_pillow(png, pal2[idx2].astype(np.uint8))

    rgbi = rand((9, 11, 3), 256)
    png = encode_png(rgbi, 8, 2, interlace=True)
    save_png("rgb8-adam7", png, rgbi)
    check_with_pillow(png, rgbi.astype(np.uint8))

    g4i = rand((7, 10), 16)
    png = encode_png(g4i[:, :, None], 4, 0, interlace=True)
    save_png("gray4-adam7", png, (g4i * 17)[:, :, None])
    check_with_pillow(png, (g4i * 17)[:, :, None].astype(np.uint8))

    tiny = rand((2, 3), 256)  # passes 2, 3 and 5 are empty
    png = encode_png(tiny[:, :, None], 8, 0, interlace=True)
    save_png("gray8-adam7-tiny", png, tiny[:, :, None])
    check_with_pillow(png, tiny[:, :, None].astype(np.uint8))


# ---------------------------------------------------------------------------- IDX
def idx_bytes(array, code, big_endian_dtype):
    header = struct.pack(">BBBB", 0, 0, code, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    return header + array.astype(big_endian_dtype).tobytes()


def make_idx():
    images = ((np.arange(3 * 4 * 5) * 37) % 256).astype(np.uint8).reshape(3, 4, 5)
    labels = np.array([7, 0, 9], dtype=np.uint8)
    out("idx/images-idx3-ubyte", idx_bytes(images, 0x08, "u1"))
    out("idx/labels-idx1-ubyte", idx_bytes(labels, 0x08, "u1"))
    out("idx/images-idx3-ubyte.gz", gz(idx_bytes(images, 0x08, "u1")))
    out("idx/labels-idx1-ubyte.gz", gz(idx_bytes(labels, 0x08, "u1")))
    out("idx/labels-2-idx1-ubyte", idx_bytes(labels[:2], 0x08, "u1"))
    out("idx/i16.idx", idx_bytes(np.array([[-32768, -1, 0], [1, 300, 32767]]), 0x0B, ">i2"))
    out("idx/f32.idx", idx_bytes(np.array([1.5, -2.25, 1e-3]), 0x0D, ">f4"))
    out("idx/f64.idx", idx_bytes(np.array([[0.1], [-7.0]]), 0x0E, ">f8"))
    # A gzip file of two members (as `cat a.gz b.gz` makes) holding one IDX file.
    whole = idx_bytes(images, 0x08, "u1")
    out("idx/images-2members.gz", gz(whole[:30]) + gz(whole[30:]))


# ---------------------------------------------------------------------------- corrupt corpus
def corrupt(name, data):
    out("corrupt/" + name, data)


def make_corrupt():
    images = ((np.arange(3 * 4 * 5) * 37) % 256).astype(np.uint8).reshape(3, 4, 5)
    good_idx = idx_bytes(images, 0x08, "u1")
    good_gz = gz(good_idx)
    corrupt("truncated.idx.gz", good_gz[: len(good_gz) - 12])
    bad = bytearray(good_gz)
    bad[-8] ^= 0xFF  # gzip CRC-32 of the content
    corrupt("bad-gzip-crc.idx.gz", bytes(bad))
    corrupt("wrong-magic.idx", b"\x01\x02" + good_idx[2:])
    corrupt("bad-type.idx", b"\x00\x00\x07" + good_idx[3:])
    corrupt("huge-dims-overflow.idx", struct.pack(">BBBBIII", 0, 0, 8, 3, 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF) + b"\x00" * 16)
    corrupt("huge-dims.idx", struct.pack(">BBBBIII", 0, 0, 8, 3, 65536, 65536, 2) + b"\x00" * 16)
    corrupt("huge-dims-small.idx.gz", gz(struct.pack(">BBBBIII", 0, 0, 8, 3, 60000, 100, 100) + b"\x00" * 64))
    corrupt("short-data.idx", good_idx[:-1])
    corrupt("extra-data.idx", good_idx + b"\x00")

    arr = np.arange(3, dtype=np.float32)
    good = npy_bytes(arr)
    corrupt("not-a-tuple.npy", good.replace(b"(3,)", b"(3) "))
    corrupt("unknown-key.npy", good.replace(b"'fortran_order'", b"'fortran_ordex'"))
    corrupt("fortran.npy", npy_bytes(np.asfortranarray(np.arange(6, dtype=np.float32).reshape(2, 3))))
    corrupt("complex.npy", npy_bytes(np.zeros(2, dtype="<c8")))
    corrupt("big-endian.npy", npy_bytes(np.arange(3, dtype=">f4")))
    corrupt("truncated.npy", good[:-2])
    corrupt("bad-magic.npy", b"\x93NUMPX" + good[6:])
    corrupt("huge-shape.npy", npy_bytes_with_header(b"{'descr': '<f4', 'fortran_order': False, 'shape': (65536, 65536), }"))

    gray = rand((5, 7), 256)
    png = pillow_png(Image.fromarray(gray.astype(np.uint8), "L"))
    bad = bytearray(png)
    bad[45] ^= 0x01  # inside IDAT data, CRC left as is
    assert png[37:41] == b"IDAT"
    corrupt("bad-crc.png", bytes(bad))
    corrupt("truncated.png", png[: len(png) - 20])
    corrupt("no-iend.png", png[: len(png) - 12])
    corrupt("not-png.png", b"\xff\xd8\xff\xe0" + png[4:])
    header = b"\x89PNG\r\n\x1a\n"
    corrupt("huge-side.png", header + chunk(b"IHDR", struct.pack(">IIBBBBB", 100000, 100000, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b""))
    corrupt("huge-declared.png", header + chunk(b"IHDR", struct.pack(">IIBBBBB", 16384, 16384, 8, 6, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 10)) + chunk(b"IEND", b""))
    corrupt("bad-zlib.png", header + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", b"\x78\x9c\xff\xff\xff\xff\xff") + chunk(b"IEND", b""))
    corrupt("bad-filter.png", header + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x01\x02\x07\x03\x04")) + chunk(b"IEND", b""))
    corrupt("short-image-data.png", header + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00\x01\x02")) + chunk(b"IEND", b""))
    corrupt("bad-color-type.png", header + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 5, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 6)) + chunk(b"IEND", b""))
    corrupt("palette-index.png", header + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 1, 8, 3, 0, 0, 0))
            + chunk(b"PLTE", b"\x00\x00\x00\xff\xff\xff") + chunk(b"IDAT", zlib.compress(b"\x00\x01\x05"))
            + chunk(b"IEND", b""))
    corrupt("idat-first.png", header + chunk(b"IDAT", zlib.compress(b"\x00\x00")) + chunk(b"IEND", b""))


def npy_bytes_with_header(text):
    total = 10 + len(text) + 1
    pad = (64 - total % 64) % 64
    head = text + b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head


if __name__ == "__main__":
    make_npy()
    make_png()
    make_idx()
    make_corrupt()
    total = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(ROOT) for f in fs)
    print(f"wrote fixtures under {os.path.normpath(ROOT)}: {total} bytes")
