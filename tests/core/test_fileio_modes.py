"""Files and folders this package creates get 0666/0777 less the umask, like any other tool's."""

from __future__ import annotations

import os
import stat
import threading

import pytest

from scaling_repro.fileio import atomic_write_json, atomic_write_text, current_umask, make_temp_dir


@pytest.fixture(params=[0o002, 0o022], ids=["umask002", "umask022"])
def umask(request):
    old = os.umask(request.param)
    yield request.param
    os.umask(old)


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def test_current_umask_reads_the_process_umask(umask):
    assert current_umask() == umask


def test_atomic_writes_give_files_0666_less_the_umask(tmp_path, umask):
    atomic_write_text(tmp_path / "result.json", "{}\n")
    atomic_write_json(tmp_path / "spec.json", {"a": 1})
    expected = {0o002: 0o664, 0o022: 0o644}[umask]
    assert mode(tmp_path / "result.json") == expected and mode(tmp_path / "spec.json") == expected


def test_atomic_write_over_a_0600_file_gives_the_umask_mode(tmp_path, umask):
    path = tmp_path / "result.json"
    path.write_text("old")
    path.chmod(0o600)
    atomic_write_text(path, "new")
    assert path.read_text() == "new" and mode(path) == 0o666 & ~umask


def test_created_folders_get_0777_less_the_umask(tmp_path, umask):
    folder = make_temp_dir(tmp_path, prefix=".cache.", suffix=".tmp")
    assert folder.parent == tmp_path and folder.name.startswith(".cache.")
    assert mode(folder) == {0o002: 0o775, 0o022: 0o755}[umask]


def test_created_folder_keeps_the_setgid_bit_of_its_parent(tmp_path, umask):
    tmp_path.chmod(0o2775)
    if not os.stat(tmp_path).st_mode & stat.S_ISGID:
        pytest.skip("this filesystem does not keep setgid on folders")
    folder = make_temp_dir(tmp_path, prefix=".t.")
    assert os.stat(folder).st_mode & stat.S_ISGID
    assert mode(folder) & 0o777 == 0o777 & ~umask


def test_token_cache_and_tokenizer_folders_get_the_umask_mode(tmp_path, umask):
    from scaling_repro.data import token_cache
    from scaling_repro.models.tokenizer import train_tokenizer

    train_tokenizer(["a b c d e f g"] * 20, 40, tmp_path / "tok")
    assert mode(tmp_path / "tok") == 0o777 & ~umask
    token_cache._build(tmp_path, "k", [])
    assert mode(tmp_path / "k") == 0o777 & ~umask
    assert mode(tmp_path / "k" / token_cache.META_FILE) == 0o666 & ~umask


def test_concurrent_writers_do_not_change_the_umask(tmp_path, umask):
    errors = []

    def write(i: int) -> None:
        for j in range(50):
            atomic_write_text(tmp_path / f"f{i}-{j}", "x")
            if current_umask() != umask:
                errors.append(current_umask())

    threads = [threading.Thread(target=write, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and {mode(p) for p in tmp_path.iterdir()} == {0o666 & ~umask}
