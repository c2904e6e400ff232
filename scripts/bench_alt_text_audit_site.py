#!/usr/bin/env python3
"""Write a generated static site for ``alt-text --audit`` benchmarks: PAGES pages of IMAGES images
each (10,000 x 10 by default), into a folder under /tmp; never committed.

    .venv/bin/python scripts/bench_alt_text_audit_site.py OUT [--pages N] [--images-per-page N] [--files N]

Like a real generated site (a gallery, a face database): 100 folders of pages, each page with a
title, a heading, paragraphs, links to other pages, and images drawn from FILES distinct image
files (tiny GIFs, all real files): a third without alt, a quarter with one placeholder alt on many
images ("person image"), some with a file name for alt, some decorative, some the only content
of a link, the rest with their own alt. The mix is fixed (a seeded generator)."""

from __future__ import annotations

import argparse
import random
from pathlib import Path

GIF = bytes.fromhex("47494638396101000100800000ffffff00000021f90401000000002c00000000010001000002024401003b")
WORDS = ("river", "garden", "family", "portrait", "market", "street", "winter", "summer", "friends", "school",
         "station", "harbour", "bridge", "mountain", "festival", "kitchen", "library", "concert", "parade", "museum")


def write_site(root: Path, pages: int = 10_000, per_page: int = 10, files: int = 20_000, seed: int = 7) -> int:
    """The site in ``root``; returns the number of <img> tags written."""
    rng = random.Random(seed)
    (root / "img").mkdir(parents=True, exist_ok=True)
    for n in range(files):
        folder = root / "img" / f"{n // 1000:02d}"
        folder.mkdir(exist_ok=True)
        (folder / f"face_{n:06d}.gif").write_bytes(GIF)
    (root / "site.css").write_text("img { width: 120px; height: 120px }\n")
    images = 0
    for p in range(pages):
        folder = root / "people" / f"{p // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        name = f"person_{p:05d}"
        parts = [f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{name.replace("_", " ")} '
                 f'- faces</title><link rel="stylesheet" href="../../site.css"></head>\n<body>\n<h1>{name}</h1>\n']
        for i in range(per_page):
            n = rng.randrange(files)
            src = f"../../img/{n // 1000:02d}/face_{n:06d}.gif"
            kind = rng.random()
            if kind < 0.33:
                tag = f'<img src="{src}">'
            elif kind < 0.58:
                tag = f'<img src="{src}" alt="person image">'
            elif kind < 0.63:
                tag = f'<img src="{src}" alt="face_{n:06d}.gif">'
            elif kind < 0.70:
                tag = f'<img src="{src}" alt="">'
            elif kind < 0.78:
                other = rng.randrange(pages)
                tag = (f'<a href="../{other // 100:03d}/person_{other:05d}.html"><img src="{src}" '
                       f'width="120" height="120"></a>')
            else:
                tag = f'<img src="{src}" alt="{" ".join(rng.sample(WORDS, 4)).capitalize()} {p}-{i}">'
            text = " ".join(rng.choice(WORDS) for _ in range(40))
            parts.append(f'<div class="photo">{tag}<p>{text}.</p></div>\n')
            images += 1
        parts.append("</body></html>\n")
        (folder / f"{name}.html").write_text("".join(parts))
    return images


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--images-per-page", type=int, default=10)
    parser.add_argument("--files", type=int, default=20_000)
    args = parser.parse_args(argv)
    images = write_site(args.out, args.pages, args.images_per_page, args.files)
    print(f"{args.pages} pages, {images} images, {args.files} image files in {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
