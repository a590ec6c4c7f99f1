"""Make NotoSansSC-Subset.ttf, the font the chapters' figures write Chinese with.

    python chapters/fonts/make_subset.py NotoSansSC[wght].ttf

The source is Noto Sans SC, the variable TrueType font Google Fonts distributes (folder
ofl/notosanssc of the google/fonts repository; the PyPI package justmytype-intl-cjk ships
the same file). It is licensed under the SIL Open Font License 1.1 (OFL.txt beside this
script), which allows subsetting and redistribution under a name that avoids the Reserved
Font Name ("Source"). This script

1. fixes the weight axis at 400 (Regular): matplotlib draws a variable font's default
   instance only, and that is Thin for this file;
2. keeps the printable ASCII characters and the whole of GB 2312 — the 6,763 hanzi of both
   levels and its punctuation, full-width forms and symbols — which covers any technical
   Chinese the chapters write, so that a new chapter never needs a new font;
3. drops hinting (figures are rendered at 85 dpi and up, where it makes no difference) and
   renames the family "Noto Sans SC Subset".

The result is about 2.4 MB. A character outside the set makes matplotlib warn "Glyph ...
missing from font(s)", which the chapter build and tests/test_chapters.py turn into a failure.
"""
import os
import sys

from fontTools import subset
from fontTools.ttLib import TTFont
from fontTools.varLib import instancer

FAMILY, POSTSCRIPT = "Noto Sans SC Subset", "NotoSansSC-Subset"
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "NotoSansSC-Subset.ttf")


def gb2312_characters() -> set[str]:
    """Every character GB 2312 encodes: rows 0xA1-0xA9 (symbols, punctuation, full-width
    forms) and 0xB0-0xF7 (hanzi, level 1 then level 2)."""
    characters = set()
    for row in [*range(0xA1, 0xAA), *range(0xB0, 0xF8)]:
        for cell in range(0xA1, 0xFF):
            try:
                characters.add(bytes([row, cell]).decode("gb2312"))
            except UnicodeDecodeError:
                pass
    return characters


def main(source: str) -> None:
    font = instancer.instantiateVariableFont(TTFont(source), {"wght": 400})
    options = subset.Options()
    options.hinting = False
    options.name_IDs = ["*"]
    options.layout_features = ["*"]
    subsetter = subset.Subsetter(options)
    characters = gb2312_characters() | {chr(c) for c in range(0x20, 0x7F)}
    subsetter.populate(unicodes=sorted(map(ord, characters)))
    subsetter.subset(font)
    names = font["name"]
    for record in list(names.names):
        if record.nameID in (1, 16):                       # family
            names.setName(FAMILY, record.nameID, record.platformID, record.platEncID, record.langID)
        elif record.nameID in (3, 4):                      # unique name, full name
            names.setName(f"{FAMILY} Regular", record.nameID, record.platformID, record.platEncID, record.langID)
        elif record.nameID == 6:                           # PostScript name
            names.setName(f"{POSTSCRIPT}-Regular", 6, record.platformID, record.platEncID, record.langID)
        elif record.nameID in (2, 17):                     # style
            names.setName("Regular", record.nameID, record.platformID, record.platEncID, record.langID)
    font.save(OUT)
    print(f"wrote {OUT}: {len(characters)} characters, {os.path.getsize(OUT) / 1e6:.2f} MB")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit(__doc__)
    main(sys.argv[1])
