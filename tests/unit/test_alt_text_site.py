"""Alt text for a site on disk without models: symbolic links never lead out of the site, names
the file system cannot hold are skipped with a reason, and hostile markup is refused in linear
time. Real files and real symbolic links; the describer is a stand-in that is never asked."""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import pytest
from PIL import Image

from describe_local.alt_text.pages import find_images
from describe_local.alt_text.site import OUTSIDE_LINK, SKIPPED, finish_page, plan_page, resolve
from describe_local.cli.alt_text_pages import page_jobs, run_pages
from describe_local.errors import PageError

SECRET = b"root:x:0:0:root:/root:/bin/bash\n"


class NoDescriber:
    """Asked for nothing: every image of these sites is skipped before describing."""

    def languages(self):
        return []  # no translation installed

    def translate(self, texts, lang):
        raise AssertionError(f"asked to translate {texts} into {lang}")

    def describe_all(self, paths, options):
        paths = list(paths)
        assert not paths, f"asked to describe {paths}"
        return iter(())


def make_site(tmp_path: Path) -> tuple[Path, Path]:
    """A site whose page points at images behind links, and the secret files beside it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_bytes(SECRET)
    Image.new("RGB", (8, 8), "red").save(outside / "private.png")
    site = tmp_path / "site"
    (site / "img").mkdir(parents=True)
    Image.new("RGB", (8, 8), "blue").save(site / "img" / "real.png")
    (site / "img" / "private.png").symlink_to(outside / "private.png")
    (site / "img" / "alias.png").symlink_to("real.png")
    (site / "passwd.txt").symlink_to(outside / "passwd")
    (site / "abs-alias.png").symlink_to(site / "img" / "real.png")
    (site / "elsewhere").symlink_to(outside, target_is_directory=True)
    (site / "outer.html").symlink_to(outside / "passwd")
    long_name = "a" * 300 + ".png"
    deep = "/".join(["b" * 200] * 25) + ".png"
    (site / "index.html").write_text(
        '<html><body>\n<img src="img/private.png">\n<img src="elsewhere/private.png">\n'
        f'<img src="{long_name}">\n<img src="{deep}">\n<img src="x%00y.png">\n</body></html>\n')
    return site, outside


def test_an_image_behind_a_link_out_of_the_site_is_skipped_not_described(tmp_path):
    site, _ = make_site(tmp_path)
    page = site / "index.html"
    assert resolve("img/private.png", page, site) == OUTSIDE_LINK
    assert resolve("elsewhere/private.png", page, site) == OUTSIDE_LINK
    assert resolve("img/alias.png", page, site) == (site / "img" / "real.png").resolve()
    plan = plan_page(page, site)
    assert plan.images() == []
    _, report = finish_page(plan, {})
    reasons = [image.reason for image in report.images]
    assert all(image.status == SKIPPED for image in report.images)
    assert reasons[:2] == [OUTSIDE_LINK, OUTSIDE_LINK]
    assert "longer than the file system allows" in reasons[2]
    assert "longer than the file system allows" in reasons[3]
    assert "NUL" in reasons[4]


def test_a_copy_of_a_site_never_holds_what_a_link_leads_to(tmp_path):
    site, _ = make_site(tmp_path)
    out = tmp_path / "out"
    jobs, copies, links = page_jobs([site], out)
    assert [page.name for page, _, _ in jobs] == ["index.html"]
    args = argparse.Namespace(progress=False, quiet=True, in_place=False, report=tmp_path / "report.json",
                              max_chars=125, names=False, copy_all=True, keep_placeholders=False,
                              describe_captioned=False, mark=False)
    assert run_pages(NoDescriber(), args, jobs, copies, links) == 0
    for path in out.rglob("*"):
        assert not (path.is_file() and not path.is_symlink() and path.read_bytes() == SECRET), path
    for name in ("passwd.txt", "outer.html", "elsewhere", "img/private.png"):
        assert not os.path.lexists(out / name), name
    assert (out / "img" / "alias.png").is_symlink() and os.readlink(out / "img" / "alias.png") == "real.png"
    assert os.readlink(out / "abs-alias.png") == "img/real.png"  # relative: the copy holds together
    assert not (out / "img" / "real.png").is_symlink()
    report = json.loads((tmp_path / "report.json").read_text())
    status = {Path(link["path"]).name: link["status"] for link in report["links"]}
    assert status == {"abs-alias.png": "copied as a link", "alias.png": "copied as a link",
                      "elsewhere": "skipped", "outer.html": "skipped", "passwd.txt": "skipped",
                      "private.png": "skipped"}


@pytest.mark.parametrize("unit", ["<a", "<a '", '<img src="', "<!--", "</a", "<!x"])
def test_a_hostile_page_is_refused_in_linear_time(unit):
    text = unit * (200_000 // len(unit))
    started = time.perf_counter()
    with pytest.raises(PageError, match="never end"):
        find_images(text)
    assert time.perf_counter() - started < 2


def test_markup_the_parser_fails_on_is_one_page_error(tmp_path):
    with pytest.raises(PageError, match="cannot be parsed"):
        find_images("<![<![<![ <img src=a.png>")
    page = tmp_path / "p.html"
    page.write_text("<a" * 100_000)
    plan = plan_page(page, tmp_path)
    assert plan.decoded is None and "never end" in (plan.error or "")
    assert finish_page(plan, {})[0] is None


def test_a_large_ordinary_page_still_parses():
    body = '<p class="x">text &amp; more</p><img src="a.png" srcset="b.png 2x">\n' * 20_000
    text = f"<html><script>if (a<b && c<d) x();</script><!-- <a --><body>{body}</body></html>"
    assert len(find_images(text)) == 20_000
