"""Alt text for the web, in one room: what to say about an image, and putting it into pages.

- :mod:`.wording`: one short sentence for a screen reader from the describer's findings
  (pure; :func:`alt_text`, :class:`AltText`);
- :mod:`.pages`: finding ``<img>`` tags in a page and inserting ``alt`` byte for byte (pure);
- :mod:`.site`: a static site on disk: which images each page needs, and the pages written.

The ``alt-text`` command (``cli/alt_text.py``), ``POST /api/alt-text``
(``server/alt_text_api.py``) and the collection task use these over ``Describer.describe``.
"""
