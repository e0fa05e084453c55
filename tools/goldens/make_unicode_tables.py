#!/usr/bin/env python3
"""Writes include/bitfit/text/unicode_tables.hpp: the character classes of BERT's basic
tokenization, read off Hugging Face `tokenizers` (the library behind BertTokenizerFast).

Regenerate (from the repository root, after scripts/setup-python):
    .venv/bin/python tools/goldens/make_unicode_tables.py [--out include/bitfit/text/unicode_tables.hpp]

Why probe instead of using the Unicode database: `tokenizers` 0.19 classifies characters with
the `unicode_categories` crate, whose tables are from Unicode 8.0, and its CJK ranges differ
from the original BERT code (U+2B820..U+2B91F are not treated as CJK). A character assigned
after Unicode 8.0 is therefore neither "control", "punctuation" nor "nonspacing mark" there,
and U+166D or U+111C9 still count as punctuation. Asking the library itself, one code point at
a time, gives exactly the classes it uses. NFD and lowercasing are not tabulated: utf8proc does
them, and tests/test_bert_tokenizer.cpp checks every code point against the goldens written by
make_tokenizer_goldens.py. The NFD of `tokenizers` (the `unicode-normalization-alignments`
crate) is from Unicode 9.0, while utf8proc knows a later version, so one more table lists the
code points whose decomposition or combining class only utf8proc knows; the C++ code treats
them as plain characters, as `tokenizers` does. That table depends on the utf8proc version
(called here through ctypes); the per-code-point test fails if a different utf8proc changes it.

Classes (each a sorted list of inclusive ranges):
    control         dropped by BertNormalizer's cleaning (except U+FFFD, which is So)
    white_space     turned into a space by the cleaning (U+0020 included)
    cjk             surrounded by spaces by handle_chinese_chars
    nonspacing_mark removed after NFD by strip_accents
    punctuation     isolated by BertPreTokenizer
    nfd_unknown     utf8proc gives a decomposition or a nonzero combining class, tokenizers' NFD does not
"""
import argparse
import ctypes
import unicodedata
from pathlib import Path

import tokenizers
from tokenizers import normalizers, pre_tokenizers

REPO = Path(__file__).resolve().parents[2]


def code_points():
    return (cp for cp in range(0x110000) if not 0xD800 <= cp <= 0xDFFF)


def probe():
    clean = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=False, strip_accents=False,
                                       lowercase=False)
    cjk = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=True, strip_accents=False,
                                     lowercase=False)
    strip = normalizers.BertNormalizer(clean_text=False, handle_chinese_chars=False, strip_accents=True,
                                       lowercase=False)
    nfd = normalizers.NFD()
    pre = pre_tokenizers.BertPreTokenizer()
    classes = {k: [] for k in ("control", "white_space", "cjk", "nonspacing_mark", "punctuation")}
    for cp in code_points():
        c = chr(cp)
        cleaned = clean.normalize_str(c)
        if cleaned == "" and cp != 0xFFFD:
            classes["control"].append(cp)
        elif cleaned == " ":
            classes["white_space"].append(cp)
        else:
            assert cleaned == c or cp == 0xFFFD, hex(cp)
        spaced = cjk.normalize_str(c)
        if spaced == " " + c + " ":
            classes["cjk"].append(cp)
        else:
            assert spaced == c, hex(cp)
        # strip_accents removes the nonspacing marks of the NFD form; a character that NFD
        # changes never reaches the test, so it counts as a mark when all of its NFD goes.
        stripped = strip.normalize_str(c)
        if stripped == "":
            classes["nonspacing_mark"].append(cp)
        else:
            assert stripped == c or nfd.normalize_str(c) != c, hex(cp)
        words = [w for w, _ in pre.pre_tokenize_str("a" + c + "a")]
        if words == ["a", c, "a"]:
            classes["punctuation"].append(cp)
        else:
            assert words in (["a" + c + "a"], ["a", "a"]), hex(cp)
    return classes


def utf8proc_nfd_unknown(nfd):
    """Code points with a canonical decomposition or a combining class in utf8proc only."""
    lib = ctypes.CDLL("libutf8proc.so.2")
    lib.utf8proc_get_property.restype = ctypes.POINTER(ctypes.c_int16 * 2)  # category, combining_class
    lib.utf8proc_decompose_char.restype = ctypes.c_ssize_t
    lib.utf8proc_decompose_char.argtypes = [ctypes.c_int32, ctypes.POINTER(ctypes.c_int32), ctypes.c_ssize_t,
                                            ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.utf8proc_unicode_version.restype = ctypes.c_char_p
    decompose = 1 << 4  # UTF8PROC_DECOMPOSE
    buf, boundclass = (ctypes.c_int32 * 8)(), ctypes.c_int(0)
    out = []
    for cp in code_points():
        c = chr(cp)
        n = lib.utf8proc_decompose_char(cp, buf, 8, decompose, ctypes.byref(boundclass))
        assert 0 < n <= 8, hex(cp)
        ours, theirs = "".join(chr(buf[i]) for i in range(n)), nfd.normalize_str(c)
        unknown = ours != theirs
        if unknown:
            assert theirs == c, hex(cp)  # only "no decomposition at all" is handled
        ccc = lib.utf8proc_get_property(cp).contents[1]
        if not unknown and 0 < ccc < 240:
            # A mark of class below 240 moves in front of U+0345 (class 240) when NFD knows its class.
            moved = nfd.normalize_str("a\u0345" + c)
            unknown = moved != "a" + theirs + "\u0345"
            assert not unknown or moved == "a\u0345" + theirs, hex(cp)
        if unknown:
            out.append(cp)
    return out, lib.utf8proc_unicode_version().decode()


def ranges(cps):
    out = []
    for cp in cps:
        if out and out[-1][1] == cp - 1:
            out[-1][1] = cp
        else:
            out.append([cp, cp])
    return out


def cpp_table(name, rs):
    cells = ["{{0x{:X}, 0x{:X}}}".format(a, b) for a, b in rs]
    lines, line = [], "   "
    for cell in cells:
        if len(line) + len(cell) + 2 > 100:
            lines.append(line.rstrip())
            line = "   "
        line += " " + cell + ","
    lines.append(line.rstrip())
    return "inline constexpr code_point_range {}[] = {{\n{}\n}};\n".format(name, "\n".join(lines))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default=str(REPO / "include" / "bitfit" / "text" / "unicode_tables.hpp"))
    args = ap.parse_args()
    classes = probe()
    classes["nfd_unknown"], utf8proc_unicode = utf8proc_nfd_unknown(normalizers.NFD())
    body = "\n".join(cpp_table(k, ranges(v)) for k, v in classes.items())
    header = f"""#pragma once
/// @file unicode_tables.hpp
/// Character classes of BERT's basic tokenization as Hugging Face `tokenizers`
/// {tokenizers.__version__} applies them (Unicode 8.0 categories, its own CJK ranges), and the code
/// points that its NFD (Unicode 9.0) leaves alone while utf8proc (Unicode {utf8proc_unicode}) does not.
/// Generated by tools/goldens/make_unicode_tables.py; do not edit by hand.

#include <algorithm>
#include <span>

namespace bitfit::detail::unicode_tables {{

/// An inclusive range of code points.
struct code_point_range {{
  char32_t first, last;
}};

/// Whether `c` lies in one of the sorted, disjoint `ranges`.
inline bool contains(std::span<const code_point_range> ranges, char32_t c) noexcept {{
  const auto it = std::upper_bound(ranges.begin(), ranges.end(), c,
                                   [](char32_t x, const code_point_range& r) {{ return x < r.first; }});
  return it != ranges.begin() && c <= std::prev(it)->last;
}}

{body}
}}  // namespace bitfit::detail::unicode_tables
"""
    Path(args.out).write_text(header)
    print({k: (len(v), len(ranges(v))) for k, v in classes.items()}, "python unicodedata", unicodedata.unidata_version)


if __name__ == "__main__":
    main()
