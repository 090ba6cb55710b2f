"""Which files `dicomscu --store` sends, in which order (`cli.dicomscu.store.collect_files`).

A directory gives its files sorted by name; one file reached under two names (a hard
link, a symbolic link, the file and its directory both on the command line) goes once;
symbolic links to directories are not followed, so a link loop cannot hang the listing.
"""

from __future__ import annotations

import os
from pathlib import Path

from cli.dicomscu.store import collect_files


def _file(path: Path, text: str = "x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def test_a_directory_gives_its_files_sorted_by_name_without_subdirectories(
    tmp_path: Path,
) -> None:
    for name in ("c.dcm", "a.dcm", "b.dcm"):
        _file(tmp_path / "in" / name)
    _file(tmp_path / "in" / "sub" / "d.dcm")
    files, problems = collect_files([tmp_path / "in"], recursive=False)
    assert [p.name for p in files] == ["a.dcm", "b.dcm", "c.dcm"]
    assert problems == []


def test_one_file_under_two_names_goes_once(tmp_path: Path) -> None:
    folder = tmp_path / "in"
    first = _file(folder / "a.dcm")
    _file(folder / "b.dcm")
    os.link(first, folder / "c-hard-link.dcm")
    (folder / "d-symlink.dcm").symlink_to(folder / "b.dcm")
    files, _ = collect_files([folder, first], recursive=False)
    assert [p.name for p in files] == ["a.dcm", "b.dcm"]


def test_a_symbolic_link_to_a_file_elsewhere_is_sent_and_a_dangling_one_skipped(
    tmp_path: Path,
) -> None:
    outside = _file(tmp_path / "elsewhere" / "x.dcm")
    folder = tmp_path / "in"
    _file(folder / "a.dcm")
    (folder / "b-link.dcm").symlink_to(outside)
    (folder / "c-dangling.dcm").symlink_to(tmp_path / "missing.dcm")
    files, problems = collect_files([folder], recursive=False)
    assert [p.name for p in files] == ["a.dcm", "b-link.dcm"]
    assert problems == []


def test_recursive_goes_down_in_name_order_and_not_through_directory_links(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "in"
    _file(folder / "z.dcm")
    _file(folder / "b" / "2.dcm")
    _file(folder / "b" / "1.dcm")
    _file(folder / "a" / "3.dcm")
    (folder / "a" / "loop").symlink_to(folder, target_is_directory=True)
    files, _ = collect_files([folder], recursive=True)
    assert [p.relative_to(folder).as_posix() for p in files] == [
        "z.dcm",
        "a/3.dcm",
        "b/1.dcm",
        "b/2.dcm",
    ]


def test_a_missing_path_is_a_problem_and_the_rest_goes(tmp_path: Path) -> None:
    present = _file(tmp_path / "a.dcm")
    files, problems = collect_files([tmp_path / "nope", present], recursive=False)
    assert files == [present]
    assert problems == [f"{tmp_path / 'nope'}: no such file or directory; not sent"]
