#!/usr/bin/env python3
"""Seed corpora for the fuzz targets, from the TensorFlow-made fixtures in tests/data/tf_checkpoint.

    python3 fuzz/make_seeds.py OUT_DIR    (scripts/fuzz runs it; standard library only)

OUT_DIR/fuzz_tf_checkpoint/<bundle>: 4-byte little-endian index length, the index, shard 0's data.
OUT_DIR/fuzz_tf_bundle_entry/<bundle>-<n>: each value of each index (header and entry protos),
read by a minimal LevelDB table walk (the fixtures are trusted, so nothing is validated here).
"""
import struct
import sys
from pathlib import Path


def varint(buf, pos):
    value, shift = 0, 0
    while True:
        b = buf[pos]
        pos += 1
        value |= (b & 0x7F) << shift
        shift += 7
        if b < 0x80:
            return value, pos


def block_entries(buf, offset, size):
    block = buf[offset:offset + size]
    restarts = struct.unpack_from("<I", block, len(block) - 4)[0]
    end, pos, key = len(block) - 4 - 4 * restarts, 0, b""
    while pos < end:
        shared, pos = varint(block, pos)
        unshared, pos = varint(block, pos)
        vlen, pos = varint(block, pos)
        key = key[:shared] + block[pos:pos + unshared]
        pos += unshared
        yield key, block[pos:pos + vlen]
        pos += vlen


def table_values(buf):
    footer = buf[-48:]
    _, pos = varint(footer, 0)
    _, pos = varint(footer, pos)
    index_offset, pos = varint(footer, pos)
    index_size, _ = varint(footer, pos)
    for _, handle in block_entries(buf, index_offset, index_size):
        offset, pos = varint(handle, 0)
        size, _ = varint(handle, pos)
        for _, value in block_entries(buf, offset, size):
            yield value


def main():
    out = Path(sys.argv[1])
    fixtures = Path(__file__).resolve().parent.parent / "tests" / "data" / "tf_checkpoint"
    (out / "fuzz_tf_checkpoint").mkdir(parents=True, exist_ok=True)
    (out / "fuzz_tf_bundle_entry").mkdir(parents=True, exist_ok=True)
    for index in sorted(fixtures.rglob("*.index")):
        name = index.parent.name
        shard0 = sorted(index.parent.glob(index.stem + ".data-00000-of-*"))[0]
        buf = index.read_bytes()
        (out / "fuzz_tf_checkpoint" / name).write_bytes(struct.pack("<I", len(buf)) + buf + shard0.read_bytes())
        for n, value in enumerate(table_values(buf)):
            (out / "fuzz_tf_bundle_entry" / f"{name}-{n}").write_bytes(value)


if __name__ == "__main__":
    main()
