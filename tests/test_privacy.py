"""Private by default: what one session saves or uploads reaches nobody else, and goes when the session does."""
from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import quote

import pytest
from conftest import serve_app, wait_for
import requests

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
pytest.importorskip("gradio")
from gradio_client import Client, handle_file

from charrnn.checkpoint import load_checkpoint
from charrnn.corpus import text_identity
from charrnn.files import Caps, DiskQuota, QuotaError, SessionFiles

ROOT = Path(__file__).resolve().parent.parent

TEXT = "静夜思 床前明月光 疑是地上霜 举头望明月 低头思故乡 " * 30
TINY = dict(corpus="upload", max_chars=0, num_hiddens=16, batch_size=4, num_steps=8, epochs=2, prefixes="明月")




@pytest.fixture
def served():
    """A server of each test's own (conftest.py's ``serve_app``): its disk quota counts only that test's files."""
    with serve_app(max_runs=2, caps=Caps(session_files=3, session_bytes=50 * 2**20,
                                         server_bytes=400 * 2**20)) as app_served:
        yield app_served


def fetch(url: str, path: str) -> requests.Response:
    return requests.get(f"{url}gradio_api/file={quote(str(path))}", timeout=10)


def test_another_session_and_a_bare_request_get_nothing(served, tmp_path):
    url, lab = served
    upload = tmp_path / "diary.txt"
    upload.write_text(TEXT, encoding="utf-8")
    a = Client(url, verbose=False, download_files=str(tmp_path / "a-downloads"))
    final = [out[5] for out in a.submit(**TINY, corpus_file=handle_file(str(upload)), api_name="/train")][-1]
    assert final["status"] == "finished"
    download, note = a.predict(api_name="/save_checkpoint")
    session = lab.peek(a.session_hash)
    held = session.files.paths()
    private = next(p for p in held if p.parent == session.files.folder)
    uploaded = next(p for p in held if p.name == "diary.txt")
    served_copy = next(p for p in held if p not in (private, uploaded))  # what A's download link points at
    assert Path(download).read_bytes() == private.read_bytes()  # the client downloaded its checkpoint
    run_id = session.latest_trainer().run_id
    # A's checkpoint names its corpus by what it is, not by the server path of the upload
    ck = load_checkpoint(private)
    assert ck.config.corpus == text_identity(TEXT.replace("\n", " ")) and "diary" not in ck.config.corpus
    assert str(uploaded) not in private.read_bytes().decode("utf-8", "replace")
    # A's own download works: the same bytes
    got = fetch(url, served_copy)
    assert got.status_code == 200 and got.content == private.read_bytes()

    # every path B or a stranger can learn or guess
    guesses = [f"checkpoints/{run_id}/epoch-0002.safetensors", f"checkpoints/{run_id}", "checkpoints",
               str(ROOT / "checkpoints" / run_id / "epoch-0002.safetensors"), "data/README.md",
               str(ROOT / "data" / "README.md"), "README.md", "demo/app.py", str(ROOT / "demo" / "app.py"),
               "diary.txt", "/tmp/gradio/diary.txt", private.name, str(private), str(session.files.folder),
               f"{run_id}-epoch-0002.safetensors", str(ROOT / ".." / "shared" / "data" / "timemachine.txt")]
    for guess in guesses:
        response = fetch(url, guess)
        assert response.status_code in (403, 404), f"{guess} -> {response.status_code}"
    b = Client(url, verbose=False)
    assert "No model yet" in b.predict("明月", 5, "greedy", 1.0, 0, 0, api_name="/generate")[1]
    assert lab.peek(b.session_hash).files.paths() == []
    b.close()

    # when A's session closes, A's files are gone: the private folder, the upload, the download copy
    folder = session.files.folder
    a.close()
    wait_for(lambda: lab.peek(a.session_hash) is None and not folder.exists())
    assert not folder.exists() and not uploaded.exists() and not served_copy.exists()
    assert fetch(url, served_copy).status_code in (403, 404)
    assert lab.quota.used == 0


def test_the_session_cap_says_what_to_do_and_saving_again_makes_room(served, tmp_path):
    url, lab = served
    upload = tmp_path / "poem.txt"
    upload.write_text(TEXT, encoding="utf-8")
    c = Client(url, verbose=False, download_files=str(tmp_path / "downloads"))
    [out for out in c.submit(**TINY, corpus_file=handle_file(str(upload)), api_name="/train")]
    c.predict(api_name="/save_checkpoint")  # the upload and this: 2 of 3 files
    first = lab.peek(c.session_hash).files.paths()[1]
    c.submit(**{**TINY, "epochs": 3}, corpus_file=handle_file(str(upload)), api_name="/train").result()
    c.predict(api_name="/save_checkpoint")  # 3 of 3 (the same upload is counted once)
    session = lab.peek(c.session_hash)
    assert session.files.count == 3
    c.submit(**{**TINY, "epochs": 1}, corpus_file=handle_file(str(upload)), api_name="/train").result()
    file, note = c.predict(api_name="/save_checkpoint")
    assert not isinstance(file, str) and note.startswith("✗ this session keeps 3 files")  # the last download stays
    assert "Download the checkpoints you want to keep, then try again" in note and "已达上限" in note
    assert session.files.count == 3
    # the user has downloaded what they want; saving again deletes the oldest file to make room
    file, note = c.predict(api_name="/save_checkpoint")
    assert isinstance(file, str) and note.startswith("saved epoch") and session.files.count == 3
    assert not first.exists() and upload.name in [p.name for p in session.files.paths()]  # the text stays
    assert lab.quota.used == session.files.size <= lab.caps.server_bytes
    c.close()


def test_session_files_caps_and_server_quota(tmp_path):
    quota = DiskQuota(limit=2500)
    caps = Caps(session_files=2, session_bytes=2000, server_bytes=2500)
    a, b = SessionFiles(caps, quota), SessionFiles(caps, quota)

    def file(name, size):
        path = tmp_path / name
        path.write_bytes(b"x" * size)
        return path

    a.add(file("a1", 900))
    a.fits(900)
    a.add(file("a2", 900))
    with pytest.raises(QuotaError, match="keeps 2 files"):  # count cap: the message first
        a.fits(10, make_room=True)
    a.fits(10, make_room=True)  # then room is made: the oldest goes
    assert not (tmp_path / "a1").exists() and a.count == 1
    b.add(file("b1", 1000))
    with pytest.raises(QuotaError, match="the server keeps"):  # 900 + 1000 + 700 > 2500
        b.add(file("b2", 700))
    assert quota.used == 1900 and (tmp_path / "b2").exists()  # a refused file is the caller's to delete
    copy = file("copy", 500)
    b.add(copy, copy_of=tmp_path / "b1")  # a downloadable copy: its bytes count, not as a file
    assert b.count == 1 and b.size == 1500 and quota.used == 2400
    a.add(file("text1", 50), upload=True)  # a new uploaded text replaces the one before
    a.add(file("text2", 60), upload=True)
    assert not (tmp_path / "text1").exists() and a.count == 2 and quota.used == 2460
    with pytest.raises(QuotaError):
        a.fits(10, make_room=True)
    a.fits(10, make_room=True)  # makes room by deleting a2, never the text in use
    assert (tmp_path / "text2").exists() and not (tmp_path / "a2").exists()
    folder = b.folder
    b.close()
    assert quota.used == 60 and not copy.exists() and not (tmp_path / "b1").exists() and not folder.exists()
    with pytest.raises(QuotaError, match="ended"):
        b.folder
