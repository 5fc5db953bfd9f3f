"""The studio's data folder: uploaded images, results and one SQLite database.

Layout under the data folder (nothing is written anywhere else)::

    images/<id>.<png|jpg|webp|...>   uploads and the bundled examples (id: 32 hex digits or
                                     ``bundled-<name>``), saved under server-made names
    results/<job id>.png             finished results, parameters in the PNG text chunk
    studio.db                        images, jobs (history), Explore rounds per profile

Every file is written atomically (temporary file, then rename), so a crash or a cancelled job
never leaves a partial file; ids come from :func:`uuid.uuid4`, never from the client.
"""

from __future__ import annotations

import json
import pathlib
import re
import sqlite3
import threading
import time
import uuid
from typing import Optional

__all__ = ["ID_PATTERN", "IMAGE_ID_PATTERN", "PROFILE_PATTERN", "Store", "new_id"]

#: Job and upload ids (server-made).
ID_PATTERN = r"^[0-9a-f]{32}$"
#: Image ids: uploads, or ``bundled-NAME`` for the images shipped in the package.
IMAGE_ID_PATTERN = r"^([0-9a-f]{32}|bundled-[a-z0-9_]{1,40})$"
#: Explore profile names.
PROFILE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{0,39}$"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS images (id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL,
    file TEXT NOT NULL, width INTEGER, height INTEGER, created REAL NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY, params TEXT NOT NULL, status TEXT NOT NULL,
    error TEXT, result TEXT, created REAL NOT NULL, finished REAL, meta TEXT, origin TEXT);
CREATE TABLE IF NOT EXISTS rounds (id TEXT PRIMARY KEY, profile TEXT NOT NULL, created REAL NOT NULL,
    shown TEXT NOT NULL, jobs TEXT NOT NULL, picked INTEGER, answered INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS rounds_profile ON rounds(profile, created);
"""


def new_id() -> str:
    """A fresh server-made id: 32 lowercase hex digits."""
    return uuid.uuid4().hex


class Store:
    """The data folder and its database (thread-safe: one connection behind a lock).

    Args:
        root: the data folder (created if missing).
    """

    def __init__(self, root):
        self.root = pathlib.Path(root).expanduser().resolve()
        self.images = self.root / "images"
        self.results = self.root / "results"
        for d in (self.root, self.images, self.results):
            d.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.root / "studio.db", check_same_thread=False, isolation_level=None)
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)
            # jobs that were queued or running when the last server stopped did not finish
            self._db.execute("UPDATE jobs SET status='failed', error='the studio stopped before this job finished' "
                             "WHERE status IN ('queued', 'running')")

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _q(self, sql: str, args=()) -> list:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- images ----------------------------------------------------------------------
    def add_image(self, image_id: str, kind: str, name: str, file: str, width: int, height: int) -> dict:
        self._q("INSERT OR REPLACE INTO images VALUES (?, ?, ?, ?, ?, ?, ?)",
                (image_id, kind, name, file, width, height, time.time()))
        return self.image(image_id)

    def image(self, image_id: str) -> Optional[dict]:
        if not isinstance(image_id, str) or not re.match(IMAGE_ID_PATTERN, image_id):
            return None
        rows = self._q("SELECT * FROM images WHERE id = ?", (image_id,))
        return dict(rows[0]) if rows else None

    def image_path(self, image_id: str) -> Optional[pathlib.Path]:
        row = self.image(image_id)
        if row is None:
            return None
        p = (self.images / row["file"]).resolve()
        return p if p.parent == self.images and p.is_file() else None

    def delete_image(self, image_id: str) -> bool:
        """Remove an image's row and file; False when there is no such image."""
        path, row = self.image_path(image_id), self.image(image_id)
        if row is None:
            return False
        self._q("DELETE FROM images WHERE id = ?", (image_id,))
        if path is not None:
            path.unlink(missing_ok=True)
        return True

    def list_images(self) -> list[dict]:
        return [dict(r) for r in self._q("SELECT * FROM images ORDER BY id LIKE 'bundled-%' DESC, created DESC")]

    # -- jobs ------------------------------------------------------------------------
    def add_job(self, job_id: str, params: dict, origin: str = "studio") -> None:
        self._q("INSERT INTO jobs (id, params, status, created, origin) VALUES (?, ?, 'queued', ?, ?)",
                (job_id, json.dumps(params), time.time(), origin))

    def finish_job(self, job_id: str, status: str, error: Optional[str] = None, result: Optional[str] = None,
                   meta: Optional[dict] = None) -> None:
        self._q("UPDATE jobs SET status = ?, error = ?, result = ?, finished = ?, meta = ? WHERE id = ?",
                (status, error, result, time.time(), json.dumps(meta) if meta is not None else None, job_id))

    def set_status(self, job_id: str, status: str) -> None:
        self._q("UPDATE jobs SET status = ? WHERE id = ?", (status, job_id))

    def job(self, job_id: str) -> Optional[dict]:
        if not isinstance(job_id, str) or not re.match(ID_PATTERN, job_id):
            return None
        rows = self._q("SELECT * FROM jobs WHERE id = ?", (job_id,))
        return _job_row(rows[0]) if rows else None

    def history(self, limit: int = 200) -> list[dict]:
        rows = self._q("SELECT * FROM jobs WHERE status = 'done' AND origin = 'studio' ORDER BY finished DESC "
                       "LIMIT ?", (int(limit),))
        return [_job_row(r) for r in rows]

    def delete_job(self, job_id: str) -> bool:
        """Remove a job's row and its result file; False when there is no such job."""
        path, row = self.result_path(job_id), self.job(job_id)
        if row is None:
            return False
        self._q("DELETE FROM jobs WHERE id = ?", (job_id,))
        if path is not None:
            path.unlink(missing_ok=True)
        return True

    def result_path(self, job_id: str) -> Optional[pathlib.Path]:
        row = self.job(job_id)
        if row is None or row["status"] != "done" or not row["result"]:
            return None
        p = (self.results / row["result"]).resolve()
        return p if p.parent == self.results and p.is_file() else None

    # -- Explore rounds --------------------------------------------------------------
    def add_round(self, round_id: str, profile: str, shown: list, jobs: list) -> None:
        self._q("INSERT INTO rounds (id, profile, created, shown, jobs) VALUES (?, ?, ?, ?, ?)",
                (round_id, profile, time.time(), json.dumps(shown), json.dumps(jobs)))

    def answer_round(self, round_id: str, picked: Optional[int]) -> None:
        self._q("UPDATE rounds SET picked = ?, answered = 1 WHERE id = ?", (picked, round_id))

    def round(self, round_id: str) -> Optional[dict]:
        if not isinstance(round_id, str) or not re.match(ID_PATTERN, round_id):
            return None
        rows = self._q("SELECT * FROM rounds WHERE id = ?", (round_id,))
        return _round_row(rows[0]) if rows else None

    def rounds(self, profile: str, answered_only: bool = True) -> list[dict]:
        sql = "SELECT * FROM rounds WHERE profile = ?" + (" AND answered = 1" if answered_only else "")
        return [_round_row(r) for r in self._q(sql + " ORDER BY created", (profile,))]


def _job_row(r) -> dict:
    d = dict(r)
    d["params"] = json.loads(d["params"])
    d["meta"] = json.loads(d["meta"]) if d.get("meta") else None
    return d


def _round_row(r) -> dict:
    d = dict(r)
    d["shown"], d["jobs"] = json.loads(d["shown"]), json.loads(d["jobs"])
    return d
