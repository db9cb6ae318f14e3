"""DeepLense export/import against hostile folders and failing disks (issue 12, items 2 and 5)."""

from __future__ import annotations

import errno
import json

import numpy as np
import pytest

from darklens.data import deeplense
from darklens.data.deeplense import EXPORT_MARKER, LayoutError, export_deeplense, import_deeplense
from darklens.data.h5 import DatasetWriter

SIDE = 8


def _dataset(path, n=12):
    rng = np.random.default_rng(0)
    images = rng.normal(size=(n, 1, SIDE, SIDE)).astype(np.float32)
    labels = np.arange(n) % 3
    splits = np.zeros(n, dtype=np.uint8)
    with DatasetWriter(path, n, (1, SIDE, SIDE), deeplense.CLASS_NAMES) as writer:
        writer.write(0, images, labels, splits)
    return path


def test_overwrite_never_deletes_through_a_symlinked_folder(tmp_path):
    data = _dataset(tmp_path / "d.h5")
    tree = tmp_path / "tree"
    export_deeplense(data, tree)
    # The user's own files, reachable from the export folder through a symlink.
    precious = tmp_path / "precious"
    (precious / "no_sub").mkdir(parents=True)
    listed = json.loads((tree / EXPORT_MARKER).read_text())["files"]
    victim = precious / "no_sub" / listed[0].split("/")[-1]
    victim.write_text("keep me")
    for path in sorted((tree / "train").rglob("*"), reverse=True):
        path.unlink() if path.is_file() else path.rmdir()
    (tree / "train").rmdir()
    (tree / "train").symlink_to(precious, target_is_directory=True)

    with pytest.raises(ValueError, match="outside"):
        export_deeplense(data, tree, overwrite=True)
    assert victim.read_text() == "keep me"


def test_export_never_writes_through_a_symlinked_folder(tmp_path):
    data = _dataset(tmp_path / "d.h5")
    tree = tmp_path / "tree"
    tree.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    # An empty folder holding only a symlink counts as non-empty; use a fresh export folder whose
    # split folder is a link created between the marker and the images.
    real_mkdir = deeplense.Path.mkdir

    def plant_link(self, *args, **kwargs):
        if self == tree / "train" and not self.exists():
            self.symlink_to(elsewhere, target_is_directory=True)
            return None
        return real_mkdir(self, *args, **kwargs)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(deeplense.Path, "mkdir", plant_link)
        with pytest.raises(ValueError, match="outside"):
            export_deeplense(data, tree)
    assert list(elsewhere.iterdir()) == []


def _failing_save(after: int, error: BaseException):
    """np.save that writes half of each file and raises ``error`` on call number ``after``."""
    real_save = np.save
    calls = {"n": 0}

    def save(file, array, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == after:
            file.write(b"\x93NUMPY half a file")
            raise error
        return real_save(file, array, *args, **kwargs)

    return save


@pytest.mark.parametrize(
    "error", [OSError(errno.ENOSPC, "No space left on device"), KeyboardInterrupt()],
    ids=["disk-full", "interrupted"],
)
def test_failed_export_leaves_no_truncated_file_and_cannot_be_imported(
    tmp_path, monkeypatch, error
):
    data = _dataset(tmp_path / "d.h5")
    tree = tmp_path / "tree"
    monkeypatch.setattr(deeplense.np, "save", _failing_save(5, error))
    with pytest.raises(type(error)):
        export_deeplense(data, tree)
    monkeypatch.undo()
    finals = sorted(p for p in tree.rglob("*.npy") if not p.name.startswith("."))
    assert len(finals) == 4  # the four written before the failure, each complete
    for path in finals:
        np.load(path)
    assert not [p for p in tree.rglob(".*.tmp")], "temporary files were left behind"
    assert json.loads((tree / EXPORT_MARKER).read_text())["complete"] is False
    with pytest.raises(LayoutError, match="unfinished darklens export"):
        import_deeplense(tree, tmp_path / "back.h5")
    # The unfinished export is replaced by a complete one, which imports.
    export_deeplense(data, tree, overwrite=True)
    assert json.loads((tree / EXPORT_MARKER).read_text())["complete"] is True
    report = import_deeplense(tree, tmp_path / "back.h5")
    assert report.n_images == 12


def test_import_refuses_an_export_whose_marker_is_not_complete(tmp_path):
    data = _dataset(tmp_path / "d.h5")
    tree = tmp_path / "tree"
    export_deeplense(data, tree)
    record = json.loads((tree / EXPORT_MARKER).read_text())
    del record["complete"]
    (tree / EXPORT_MARKER).write_text(json.dumps(record))
    with pytest.raises(LayoutError, match="unfinished"):
        import_deeplense(tree, tmp_path / "back.h5")
    assert not (tmp_path / "back.h5").exists()


def test_named_pipe_in_an_import_folder_is_a_bad_file_not_a_hang(tmp_path):
    import os

    from tests.helpers import run_python

    folder = tmp_path / "in" / "cdm"
    folder.mkdir(parents=True)
    np.save(folder / "a.npy", np.ones((SIDE, SIDE)))
    os.mkfifo(folder / "b.npy")
    code = (
        "import sys\n"
        "from darklens.data.deeplense import BadInputFile, import_deeplense\n"
        "try:\n"
        "    import_deeplense(sys.argv[1], sys.argv[2])\n"
        "except BadInputFile as err:\n"
        "    print('refused:', err)\n"
    )
    result = run_python(code, str(tmp_path / "in"), str(tmp_path / "o.h5"), timeout=60)
    assert "refused:" in result.stdout and "named pipe" in result.stdout, result
