"""``describe-local eval``: an ICDAR-2015 folder, a caption model through the collection engine,
``--jobs``, and the errors a user meets."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from tests.integration.test_eval import run_eval

pytest.importorskip("pycocoevalcap", reason="the eval extra is not installed (pip install 'describe-local[eval]')")
pytest.importorskip("matplotlib", reason="the eval extra is not installed (pip install 'describe-local[eval]')")


def test_nothing_to_evaluate_or_a_set_it_cannot_read_is_one_line(tmp_path: Path):
    done = run_eval("--out", str(tmp_path / "r"), root=tmp_path)
    assert done.returncode == 2 and "nothing to evaluate: give --captions, --faces, --text or --speed" in done.stderr
    (tmp_path / "odd.json").write_text('{"hello": 1}')
    done = run_eval("--text", str(tmp_path / "odd.json"), "--out", str(tmp_path / "r"), root=tmp_path)
    assert done.returncode == 2 and "odd.json: no 'items'; eval reads a phrase manifest" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1 and not (tmp_path / "r").exists()


def test_a_caption_model_that_is_not_installed_says_how_to_get_one_or_score_the_humans(tmp_path, shared_data):
    done = run_eval("--captions", str(shared_data / "captions"), "--out", str(tmp_path / "r"), root=tmp_path)
    assert done.returncode == 4, done.stderr
    assert "models pull ofa-tiny" in done.stderr and "--human" in done.stderr


def _words(text: str) -> Counter:
    return Counter(w for w in (w.strip("\"'()[]{}<>.,;:!?-*&#$%") for w in text.lower().split()) if w)


def test_an_icdar_folder_is_scored_by_its_words(tmp_path: Path, shared_data: Path):
    """ICDAR-2015's layout (images and gt_img_N.txt apart, a BOM, ``###``), on two photos of ocr/scenes."""
    images, gt = tmp_path / "icdar" / "ch4_test_images", tmp_path / "icdar" / "gt"
    images.mkdir(parents=True)
    gt.mkdir()
    words = {"mall_sign.jpg": ["SALE", "ROUND", "STORES", "OCBC", "Bank", "Unicorn"],
             "blue_plaque.jpg": ["Octavia", "Hill", "Social", "Reformer", "London"]}
    for n, (name, transcriptions) in enumerate(words.items(), start=1):
        (images / f"img_{n}.jpg").symlink_to(shared_data / "ocr/scenes" / name)
        lines = [f"{k},{k},{k + 9},{k},{k + 9},{k + 9},{k},{k + 9},{w}" for k, w in enumerate(transcriptions)]
        (gt / f"gt_img_{n}.txt").write_bytes(("\ufeff" + "\r\n".join([*lines, "1,1,2,1,2,2,1,2,###"])).encode())
    out = tmp_path / "r"
    done = run_eval("--text", str(gt), "--out", str(out), root=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    [result] = json.loads((out / "results.json").read_text())["text"]
    assert result["kind"] == "words" and [r["file"] for r in result["photos"]] == ["img_1.jpg", "img_2.jpg"]
    matched = 0
    for row, transcriptions in zip(result["photos"], words.values(), strict=True):
        truth = _words(" ".join(transcriptions))
        hits = sum((_words(row["text"]) & truth).values())
        assert (row["matched"], row["of"]) == (hits, sum(truth.values()))
        matched += hits
    assert result["summary"]["recall"] == pytest.approx(matched / 11)
    assert 7 <= matched < 11  # "Unicorn" and "London" are not on the photos; the rest is read


def test_jobs_give_the_same_figures(tmp_path: Path, shared_data: Path):
    results = []
    for jobs in ("1", "2"):
        out = tmp_path / f"r{jobs}"
        done = run_eval("--faces", str(shared_data / "faces/johns"), "--limit", "3", "--jobs", jobs, "--out", str(out),
                        root=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        results.append(json.loads((out / "results.json").read_text()))
    one, two = (r["faces"][0] for r in results)
    assert [r["jobs"] for r in results] == [1, 2]
    assert one["probes"] == two["probes"] and one["enrolled"] == two["enrolled"] and one["known_probes"] == 6


def test_a_caption_model_captions_through_the_collection_engine(tmp_path: Path, shared_data: Path):
    """A tiny random OFA checkpoint (its captions are noise): the candidates are the model's own,
    and their scores are pycocoevalcap's on them."""
    import make_tiny_models
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    from describe_local.images import load_photo
    from describe_local.see.caption import load_captioner
    from describe_local.settings import Settings

    model = make_tiny_models.write_ofa(tmp_path / "ofa-tiny", "ofa-tiny", seed=3, scale=3.0)
    out = tmp_path / "r"
    done = run_eval("--captions", str(shared_data / "captions/manifest.json"), "--caption-model", str(model),
                    "--beam", "1", "--limit", "3", "--out", str(out), root=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    captions = json.loads((out / "results.json").read_text())["captions"]
    assert captions["model"] == str(model) and not captions["human"] and captions["photos"] == 3
    manifest = json.loads((shared_data / "captions/manifest.json").read_text())["items"][:3]
    captioner = load_captioner(Settings.load(environ={}, caption_model=str(model), beam=1))
    by_key = {p["key"]: p["candidate"] for p in captions["per_photo"]}
    for item in manifest:
        photo = load_photo(shared_data / "captions" / item["file"], max_bytes=10**8, max_pixels=10**8)
        assert by_key[str(item["coco_image_id"])] == captioner.caption(photo.image)
    tokenizer = PTBTokenizer()
    keys = sorted(by_key)
    refs = {str(i["coco_image_id"]): [{"caption": c} for c in i["captions"]] for i in manifest}
    cider, _ = Cider().compute_score(tokenizer.tokenize({k: refs[k] for k in keys}),
                                     tokenizer.tokenize({k: [{"caption": by_key[k]}] for k in keys}))
    assert captions["scores"]["CIDEr-D"] == pytest.approx(cider, abs=1e-9)
