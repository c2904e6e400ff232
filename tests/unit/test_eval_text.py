"""eval's text measures and sets: ICDAR-2015 files, our manifests, scores counted by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from describe_local.errors import EvalDataError
from describe_local.evaluation import text
from describe_local.evaluation.text import TextItem


def _image(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (40, 30), "white").save(path)
    return path


def test_icdar_lines_with_a_bom_commas_in_the_text_and_dont_care_regions():
    raw = "\ufeff377,117,463,117,465,130,378,130,Genaxis Theatre\r\n" \
          "493,115,519,115,519,131,493,131,[06]\n\n" \
          "374,155,409,155,409,170,374,170,###\n" \
          "10,10,20,10,20,20,10,20,1,234.50\n"
    words = text.parse_icdar(raw.encode("utf-8"), "gt_img_1.txt")
    assert [w.text for w in words] == ["Genaxis Theatre", "[06]", "###", "1,234.50"]
    assert [w.care for w in words] == [True, True, False, True]
    assert words[0].points == (377, 117, 463, 117, 465, 130, 378, 130)


def test_an_icdar_line_that_is_not_eight_numbers_and_a_text_is_refused():
    with pytest.raises(EvalDataError, match=r"gt_img_7\.txt line 2: not 'x1,y1"):
        text.parse_icdar("1,2,3,4,5,6,7,8,ok\n1,2,three,4,5,6,7,8,bad\n", "gt_img_7.txt")
    with pytest.raises(EvalDataError, match="line 1"):
        text.parse_icdar("1,2,3,4,5,6,7,8\n", "gt_img_7.txt")


def test_an_icdar_folder_finds_images_beside_or_in_a_sibling_folder(tmp_path: Path):
    gt = tmp_path / "Challenge4_Test_Task4_GT"
    gt.mkdir()
    (gt / "gt_img_10.txt").write_bytes("\ufeff0,0,9,0,9,9,0,9,EXIT\n0,0,1,0,1,1,0,1,###\n".encode())
    (gt / "gt_img_2.txt").write_text("0,0,9,0,9,9,0,9,Open 24 hours\n", encoding="utf-8")
    _image(tmp_path / "ch4_test_images" / "img_10.jpg")
    _image(gt / "img_2.jpg")
    loaded = text.load_text_set(gt)
    assert loaded.kind == "words"
    assert [(i.path.name, i.truth) for i in loaded.items] == [
        ("img_2.jpg", ["Open 24 hours"]), ("img_10.jpg", ["EXIT"])]
    assert len(text.load_text_set(gt, limit=1).items) == 1
    (tmp_path / "ch4_test_images" / "img_10.jpg").unlink()
    with pytest.raises(EvalDataError, match="no img_10.jpg"):
        text.load_text_set(gt)


def test_manifests_name_files_by_their_source_path_and_are_found_beside(tmp_path: Path):
    _image(tmp_path / "pages" / "page.png")
    (tmp_path / "pages" / "page.gt.txt").write_text("Hello world\n", encoding="utf-8")
    manifest = tmp_path / "pages.manifest.json"
    manifest.write_text(json.dumps({"set": "p", "items": [
        {"file": "images/page.png", "ground_truth_file": "images/page.gt.txt"}]}))
    for source in (manifest, tmp_path / "pages"):  # the manifest, or the folder it is named after
        loaded = text.load_text_set(source)
        assert (loaded.name, loaded.kind, loaded.items[0].path, loaded.items[0].truth) == (
            "p", "page", tmp_path / "pages" / "page.png", ["Hello world\n"])
    scenes = tmp_path / "scenes"
    _image(scenes / "sign.jpg")
    items = [{"file": "sign.jpg", "phrases": ["EXIT", "No Entry"]}]
    (scenes / "manifest.json").write_text(json.dumps({"items": items}))
    assert text.load_text_set(scenes).items[0].truth == ["EXIT", "No Entry"]


@pytest.mark.parametrize("content, message", [
    ('{"items": [{"file": "a.jpg"}]}', "no ground truth"),
    ('{"things": []}', "no 'items'"),
    ("not json", "not a JSON file"),
])
def test_sets_eval_cannot_read_are_refused_with_the_formats_it_reads(tmp_path: Path, content: str, message: str):
    _image(tmp_path / "a.jpg")
    (tmp_path / "manifest.json").write_text(content)
    with pytest.raises(EvalDataError, match=message):
        text.load_text_set(tmp_path / "manifest.json")
    with pytest.raises(EvalDataError, match="ICDAR-2015 folder"):
        (tmp_path / "empty").mkdir()
        text.load_text_set(tmp_path / "empty")


def test_phrase_scores_count_phrases_read_with_spaces_and_case_ignored():
    item = TextItem(Path("x.jpg"), "phrases", ["ALL YEAR", "ROUND", "OCBC Bank", "70%"])
    scores = text.score_item(item, "all year\nround the\nOCBCBANK")
    assert (scores["matched"], scores["of"], scores["recall"], scores["missed"]) == (3, 4, 0.75, ["70%"])


def test_page_and_word_scores_are_bags_of_words_and_the_cer_an_edit_distance():
    page = TextItem(Path("p.png"), "page", ["The quick brown fox"])
    scores = text.score_item(page, "the quick browm fox jumps")
    # truth words: the, quick, brown, fox; read: the, quick, browm, fox, jumps -> 3 matched
    assert (scores["matched"], scores["of"], scores["read_words"]) == (3, 4, 5)
    assert scores["recall"] == 0.75 and scores["precision"] == 0.6
    # "The quick brown fox" -> "the quick browm fox jumps": T->t, n->m, and " jumps" inserted = 8 edits over 19
    assert scores["cer"] == pytest.approx(8 / 19)
    words = TextItem(Path("w.jpg"), "words", ["EXIT", "Open", "EXIT"])
    scores = text.score_item(words, "exit open")
    assert (scores["matched"], scores["of"], "cer" in scores) == (2, 3, False)


def test_a_set_pools_its_counts_and_averages_the_cer():
    rows = [
        {"matched": 3, "of": 4, "read_words": 5, "recall": 0.75, "precision": 0.6, "cer": 0.2, "ms": 100.0},
        {"matched": 1, "of": 6, "read_words": 1, "recall": 1 / 6, "precision": 1.0, "cer": 0.6, "ms": 300.0},
        {"file": "broken.png", "error": "not an image"},
    ]
    s = text.summarise(rows)
    assert (s["photos"], s["failed"], s["matched"], s["of"]) == (3, 1, 4, 10)
    assert s["recall"] == 0.4 and s["precision"] == pytest.approx(4 / 6) and s["cer"] == pytest.approx(0.4)
    assert (s["median_ms"], s["worst_ms"]) == (200.0, 300.0)


def test_measure_ocr_uses_the_packages_measures():
    import measure_ocr

    assert measure_ocr.word_recall is text.word_recall and measure_ocr.phrases_read is text.phrases_read
