"""eval's caption sets (our manifest, COCO files), human mode, and what it says when a tool is missing."""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import pytest

from describe_local.cli import main
from describe_local.errors import EvalDataError, EvalToolMissing
from describe_local.evaluation import captions


def test_our_manifest_and_a_coco_file_give_the_same_items(tmp_path: Path):
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "1.jpg").write_bytes(b"photo")
    (tmp_path / "manifest.json").write_text(json.dumps({"set": "ours", "items": [
        {"file": "images/1.jpg", "coco_image_id": 1, "captions": ["A dog.", "A brown dog.", "Dog on grass."]},
        {"file": "images/2.jpg", "coco_image_id": 2, "captions": ["A cat."]}]}))
    ours = captions.load_caption_set(tmp_path)  # the folder: its manifest.json
    assert ours.name == "ours" and [(i.key, i.refs) for i in ours.items] == [
        ("1", ["A dog.", "A brown dog.", "Dog on grass."]), ("2", ["A cat."])]
    assert ours.items[0].photo() == tmp_path / "images" / "1.jpg"
    with pytest.raises(EvalDataError, match="names 'images/2.jpg'"):
        ours.items[1].photo()

    coco = tmp_path / "captions_val.json"
    coco.write_text(json.dumps({
        "images": [{"id": 1, "file_name": "1.jpg"}, {"id": 2, "file_name": "2.jpg"}, {"id": 3, "file_name": "3.jpg"}],
        "annotations": [{"image_id": 1, "caption": "A dog."}, {"image_id": 2, "caption": "A cat."},
                        {"image_id": 1, "caption": "A brown dog."}]}))
    loaded = captions.load_caption_set(coco)
    assert [(i.key, i.refs) for i in loaded.items] == [("1", ["A dog.", "A brown dog."]), ("2", ["A cat."])]
    assert loaded.items[0].photo() == tmp_path / "images" / "1.jpg"  # found in images/ beside the file
    assert len(captions.load_caption_set(coco, limit=1).items) == 1


def test_human_mode_scores_the_first_caption_against_the_others(tmp_path: Path):
    (tmp_path / "m.json").write_text(json.dumps({"items": [
        {"file": "a.jpg", "captions": ["one", "two", "three"]}, {"file": "b.jpg", "captions": ["alone"]}]}))
    refs, candidates = captions.human_pairs(captions.load_caption_set(tmp_path / "m.json"))
    assert (refs, candidates) == ({"0": ["two", "three"]}, {"0": "one"})  # b has nothing to be scored against
    (tmp_path / "n.json").write_text(json.dumps({"items": [{"file": "b.jpg", "captions": ["alone"]}]}))
    with pytest.raises(EvalDataError, match="two captions or more"):
        captions.human_pairs(captions.load_caption_set(tmp_path / "n.json"))


@pytest.mark.parametrize("content, message", [
    ('{"items": [{"file": "a.jpg"}]}', "has no 'captions'"),
    ('{"images": [{"id": 1, "file_name": "a.jpg"}], "annotations": []}', "no image has a caption"),
    ("[1, 2]", "not a caption set; eval reads our caption manifest"),
])
def test_caption_sets_eval_cannot_read(tmp_path: Path, content: str, message: str):
    (tmp_path / "x.json").write_text(content)
    with pytest.raises(EvalDataError, match=message):
        captions.load_caption_set(tmp_path / "x.json")


def test_missing_pycocoevalcap_or_java_says_what_to_install(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setitem(sys.modules, "pycocoevalcap", None)  # import fails
    with pytest.raises(EvalToolMissing, match=r"pip install 'describe-local\[eval\]'"):
        captions.check_tools()
    monkeypatch.setitem(sys.modules, "pycocoevalcap", types.ModuleType("pycocoevalcap"))
    monkeypatch.setattr(captions.shutil, "which", lambda name: None if name == "java" else "/bin/true")
    with pytest.raises(EvalToolMissing, match="apt-get install default-jre-headless"):
        captions.check_tools()
    assert EvalToolMissing.exit_code == 4


def test_missing_matplotlib_says_what_to_install(monkeypatch: pytest.MonkeyPatch):
    from describe_local.evaluation import plots

    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(EvalToolMissing, match=r"matplotlib: pip install 'describe-local\[eval\]'"):
        plots.pyplot()


def test_eval_with_nothing_to_do_is_a_one_line_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    assert main(["eval", "--out", str(tmp_path / "r")]) == 2
    assert "nothing to evaluate: give --captions, --faces, --text or --speed" in capsys.readouterr().err
    assert main(["eval", "--speed", "--jobs", "0", "--out", str(tmp_path / "r")]) == 2
    assert "--jobs must be 1 or more" in capsys.readouterr().err
    assert not (tmp_path / "r").exists()
