"""``describe-local eval``: how well and how fast this machine describes, against ground truth.

- ``captions.py``: BLEU, METEOR, ROUGE-L, CIDEr-D (pycocoevalcap) against human references;
- ``faces.py``: a seeded gallery/probe split, identification accuracy and false accepts over the tolerance;
- ``text.py``: phrase and word recall, precision and CER, for our manifests and ICDAR-2015 files;
- ``speed.py``: the cloud original's table beside the published AWS figures;
- ``tasks.py``: the per-photo work, run by the collection engine (``--jobs``, ``--ray``);
- ``run.py``: the sections in order; ``report.py``, ``tables.py``, ``plots.py``: the three files;
  ``machine.py``: what it ran on, the versions and the models' checksums.
"""
