"""``describe-local faces add|list|remove``: manage the known-faces gallery."""

from __future__ import annotations

import argparse
from pathlib import Path

from describe_local.cli._common import add_gallery_option, expand_photos, load_settings, shown
from describe_local.errors import GalleryError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "faces",
        help="manage the people you want recognised (the known-faces gallery)",
        description=(
            "The gallery is a folder with one subfolder per person; the subfolder's name is "
            "the name that is spoken. Each photo must show that person's face and no other."
        ),
    )
    actions = parser.add_subparsers(dest="faces_command", metavar="ACTION", required=True)

    add = actions.add_parser(
        "add",
        help="add photos of a person (creates the person if new)",
        description="Copy photos of one person into the gallery. Each photo must show exactly one face; "
        "if any photo is refused, nothing is added.",
    )
    add.add_argument("name", metavar="NAME", help='the name to speak, e.g. "Zoë Saldaña" (quote it)')
    add.add_argument(
        "photos", nargs="+", type=Path, metavar="PHOTO", help="photos showing only this person, or folders of them"
    )
    add_gallery_option(add)
    add.set_defaults(func=run_add)

    listing = actions.add_parser(
        "list",
        help="list the people, their photos, and photos that are skipped",
        description="List everyone in the gallery with the number of usable photos, and any photo "
        "that is skipped because it shows no face or several.",
    )
    add_gallery_option(listing)
    listing.set_defaults(func=run_list)

    remove = actions.add_parser(
        "remove",
        help="remove a person and their photos",
        description="Delete a person's folder and all their photos from the gallery. Any folder "
        "`faces list` shows can be removed, also one made by hand with a name `faces add` refuses.",
    )
    remove.add_argument("name", metavar="NAME",
                        help="the person's name as shown by `faces list` (escaped, e.g. x\\x1by), or the real one")
    add_gallery_option(remove)
    remove.set_defaults(func=run_remove)


def _open_gallery(args: argparse.Namespace):  # -> Gallery, imported lazily
    from describe_local.gallery import open_gallery

    return open_gallery(load_settings(args, known_faces="gallery"))


def run_add(args: argparse.Namespace) -> int:
    gallery = _open_gallery(args)
    name = gallery.resolve_name(args.name)
    added = gallery.add(name, expand_photos(args.photos, GalleryError))
    total = len(gallery.photo_paths(name))
    print(f"Added {_count(len(added), 'photo')} of {shown(name)} ({total} in all) to {shown(gallery.folder)}.")
    return 0


def run_list(args: argparse.Namespace) -> int:
    gallery = _open_gallery(args)
    where = shown(gallery.folder)
    if not gallery.folder.is_dir():
        print(f"The gallery {where} does not exist yet; add someone with: describe-local faces add NAME PHOTO")
        return 0
    photos = gallery.photos()
    people = gallery.people()
    if not people:
        print(f"The gallery {where} is empty; add someone with: describe-local faces add NAME PHOTO")
        return 0
    print(f"{_count(len(people), 'person', 'people')} in {where}:")
    # Names are folder names, made by hand too: escaped, so none can steer the terminal.
    width = max(len(shown(name)) for name in people)
    for name in people:
        usable = sum(1 for p in photos if p.person == name and p.usable)
        note = "  (not recognised: no usable photo)" if usable == 0 else ""
        print(f"  {shown(name):<{width}}  {_count(usable, 'photo')}{note}")
    skipped = [p for p in photos if not p.usable]
    if skipped:
        print("Skipped photos (each must show exactly one face):")
        for photo in skipped:
            print(f"  {shown(photo.path.relative_to(gallery.folder))}: {shown(photo.problem)}")
    return 0


def run_remove(args: argparse.Namespace) -> int:
    gallery = _open_gallery(args)
    name = _listed_person(gallery.people(), args.name)
    count = gallery.remove(name)
    print(f"Removed {shown(name)} ({_count(count, 'photo')}) from {shown(gallery.folder)}.")
    return 0


def _listed_person(people: list[str], asked: str) -> str:
    """The folder of the person ``asked`` names, by its real name or as `faces list` shows it;
    else ``asked`` itself, which the gallery checks as a name it could have made."""
    if asked in people:
        return asked
    matches = [name for name in people if shown(name) == asked]
    if len(matches) > 1:
        raise GalleryError(f"{asked!r} could be any of {len(matches)} folders; remove the one you mean by hand")
    return matches[0] if matches else asked


def _count(n: int, one: str, many: str | None = None) -> str:
    return f"{n} {one if n == 1 else (many or one + 's')}"
