"""A collection: style embeddings of a folder of images in one SQLite file, updated
incrementally, with exact nearest-neighbour search (faiss, or scikit-learn where faiss is
not installed).

Schema (version 1)::

    meta(key TEXT PRIMARY KEY, value TEXT)     -- "identity": how vectors were made (JSON),
                                               -- "schema": "1"
    images(path TEXT PRIMARY KEY,              -- absolute path of the file
           sha256 TEXT, mtime REAL, size INTEGER,
           vector BLOB)                        -- float32 little-endian, unit length

Incremental indexing: a file whose size and mtime match its row is skipped without reading
it; otherwise its sha256 is computed, and only a file whose content is new is embedded (a
touched but unchanged file, or a copy of an indexed file, reuses the stored vector). Rows are
committed after every chunk, so an interrupted run keeps what it finished. SQLite's own
journal makes each commit atomic.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional, Sequence

import numpy as np

from ..core.errors import InputError
from ..core.files import sha256_file
from .embeddings import EmbeddingConfig, StyleEmbedder, config_digest

__all__ = ["Collection", "Hit", "UpdateReport", "list_images", "IMAGE_EXTENSIONS", "METRICS"]

SCHEMA = "1"
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
METRICS = ("cosine", "euclidean")


def list_images(folder: str | os.PathLike, recursive: bool = True) -> list[Path]:
    """Image files (by extension, hidden files left out) under ``folder``, sorted.

    Raises:
        InputError: ``folder`` is missing or not a folder.
    """
    root = Path(folder).expanduser()
    if not root.exists():
        raise InputError("folder not found", root)
    if not root.is_dir():
        raise InputError("is not a folder; give the folder of images to index", root)
    it = root.rglob("*") if recursive else root.iterdir()
    return sorted(p.resolve() for p in it
                  if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file())


@dataclass
class Hit:
    """One search result: the file, its distance to the query (cosine: 1 - cosine similarity,
    0 = same direction, 2 = opposite; euclidean: L2 distance of the unit vectors, 0..2) and its rank."""

    path: str
    distance: float
    rank: int


@dataclass
class UpdateReport:
    """What :meth:`Collection.update` did."""

    embedded: list = field(default_factory=list)   # new or changed content, embedded now
    reused: list = field(default_factory=list)     # touched or copied files whose content was known
    unchanged: int = 0                             # same size and mtime: not read at all
    removed: list = field(default_factory=list)    # rows of files that no longer exist
    failed: list = field(default_factory=list)     # (path, message): unreadable images, skipped


class Collection:
    """Style embeddings of many images in one SQLite file.

    Use :meth:`create` (new or existing file, with an embedding configuration) or :meth:`open`
    (existing file only); both work as context managers.

    Raises:
        InputError: the file is not an atelier collection, or it was built with another
            embedding configuration than the one asked for.
    """

    def __init__(self, path: str | os.PathLike, conn: sqlite3.Connection, identity: dict):
        self.path = Path(path)
        self._conn = conn
        self.identity = identity
        self.config = EmbeddingConfig.from_dict(identity["config"])
        self._embedder: Optional[StyleEmbedder] = None
        self._cache = None  # (paths, matrix) loaded for search

    # ------------------------------------------------------------------ opening
    @staticmethod
    def _connect(path: Path) -> sqlite3.Connection:
        try:
            conn = sqlite3.connect(str(path))
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
            return conn
        except sqlite3.DatabaseError as e:
            raise InputError(f"is not an atelier collection (SQLite says: {e})", path) from None

    @staticmethod
    def _read_identity(conn: sqlite3.Connection, path: Path) -> Optional[dict]:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            return None
        if not {"meta", "images"} <= tables:
            raise InputError("is an SQLite file but not an atelier collection (no meta/images tables)", path)
        row = conn.execute("SELECT value FROM meta WHERE key='identity'").fetchone()
        schema = conn.execute("SELECT value FROM meta WHERE key='schema'").fetchone()
        if row is None or schema is None or schema[0] != SCHEMA:
            raise InputError("is not an atelier collection of a known version; index the folder again with "
                             "a new -o file", path)
        return json.loads(row[0])

    @classmethod
    def open(cls, path: str | os.PathLike) -> "Collection":
        """Open an existing collection file.

        Raises:
            InputError: missing file, or not an atelier collection.
        """
        p = Path(path).expanduser()
        if not p.exists():
            raise InputError("collection not found; build one with 'atelier index DIR -o FILE.db'", p)
        if not p.is_file():
            raise InputError("is not a file; give the .db file that 'atelier index' wrote", p)
        with open(p, "rb") as f:
            head = f.read(16)
        if head != b"SQLite format 3\x00":
            raise InputError("is not an atelier collection (not an SQLite file)", p)
        conn = cls._connect(p)
        identity = cls._read_identity(conn, p)
        if identity is None:
            conn.close()
            raise InputError("is an empty SQLite file, not an atelier collection", p)
        return cls(p, conn, identity)

    @classmethod
    def create(cls, path: str | os.PathLike, config: Optional[EmbeddingConfig] = None,
               embedder: Optional[StyleEmbedder] = None) -> "Collection":
        """Open ``path``, creating it if needed, for embeddings made with ``config``.

        Raises:
            InputError: the folder does not exist; the file exists but is not a collection, or
                was built with another configuration.
        """
        p = Path(path).expanduser()
        if not p.parent.resolve().is_dir():
            raise InputError("the folder for the collection file does not exist; create it first", p)
        if p.is_dir():
            raise InputError("is a folder; give a file name such as collection.db", p)
        if p.exists() and p.stat().st_size > 0:
            with open(p, "rb") as f:
                if f.read(16) != b"SQLite format 3\x00":
                    raise InputError("exists and is not an atelier collection; choose another -o file", p)
        embedder = embedder or StyleEmbedder(config)
        identity = embedder.identity()
        conn = cls._connect(p)
        old = cls._read_identity(conn, p)
        if old is None:
            with conn:
                conn.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
                conn.execute("CREATE TABLE images (path TEXT PRIMARY KEY, sha256 TEXT NOT NULL, mtime REAL, "
                             "size INTEGER, vector BLOB NOT NULL)")
                conn.execute("CREATE INDEX images_sha ON images(sha256)")
                conn.executemany("INSERT INTO meta VALUES (?, ?)",
                                 [("schema", SCHEMA), ("identity", json.dumps(identity, sort_keys=True))])
        elif config_digest(old) != config_digest(identity):
            conn.close()
            raise InputError(f"was built with another embedding ({_describe(old)}), not {_describe(identity)}; "
                             "use the same options or a new -o file", p)
        col = cls(p, conn, identity)
        col._embedder = embedder
        return col

    def close(self) -> None:
        self._conn.close()

    def __enter__(self) -> "Collection":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ contents
    @property
    def embedder(self) -> StyleEmbedder:
        """The embedder matching this collection (built on first use)."""
        if self._embedder is None:
            self._embedder = StyleEmbedder(self.config)
            if config_digest(self._embedder.identity()) != config_digest(self.identity):
                raise InputError("the encoder weights changed since this collection was built; index it again",
                                 self.path)
        return self._embedder

    def __len__(self) -> int:
        return self._conn.execute("SELECT COUNT(*) FROM images").fetchone()[0]

    def items(self) -> tuple[list[str], np.ndarray]:
        """(paths, vectors (N, dim) float32) in path order."""
        if self._cache is None:
            rows = self._conn.execute("SELECT path, vector FROM images ORDER BY path").fetchall()
            dim = self.config.dim or None
            paths = [r[0] for r in rows]
            mat = (np.stack([np.frombuffer(r[1], dtype="<f4") for r in rows]).astype(np.float32)
                   if rows else np.zeros((0, dim or 0), np.float32))
            self._cache = (paths, mat)
        return self._cache

    # ------------------------------------------------------------------ indexing
    def update(self, files: Sequence[str | os.PathLike], prune_under: Optional[str | os.PathLike] = None,
               on_error: Optional[Callable[[str, str], None]] = None,
               progress: Optional[Callable[[int, int], None]] = None, batch: int = 8,
               embed: Optional[Callable[[list], Iterable[tuple]]] = None) -> UpdateReport:
        """Bring the collection up to date with ``files``.

        Args:
            files: image files to index.
            prune_under: a folder: rows for files under it that are not in ``files`` (deleted
                or renamed) are removed.
            on_error: ``on_error(path, message)`` for each unreadable image (it is skipped and
                tried again next time).
            progress: ``progress(done, total)`` over the files that need embedding.
            batch: files embedded (and committed) per chunk.
            embed: where the embeddings are made instead of this process (a batch engine, e.g.
                Ray workers): ``embed(paths)`` yields ``(path, float32 (dim,) vector or None,
                one-line error or None)`` for each path, in any order (a vector may also be its
                float32 little-endian bytes); each vector must come
                from this collection's embedding configuration.
        """
        report = UpdateReport()
        known = {r[0]: r[1:] for r in self._conn.execute("SELECT path, sha256, mtime, size FROM images")}
        todo = []  # (path, sha, mtime, size)
        seen = set()
        for f in files:
            p = str(Path(f).expanduser().resolve())
            if p in seen:
                continue
            seen.add(p)
            try:
                st = os.stat(p)
            except OSError as e:
                report.failed.append((p, f"cannot read ({e.strerror})"))
                if on_error:
                    on_error(p, f"cannot read ({e.strerror})")
                continue
            row = known.get(p)
            if row is not None and row[2] == st.st_size and row[1] == st.st_mtime:
                report.unchanged += 1
                continue
            try:
                sha = sha256_file(p)
            except OSError as e:
                report.failed.append((p, f"cannot read ({e.strerror})"))
                if on_error:
                    on_error(p, f"cannot read ({e.strerror})")
                continue
            same = self._conn.execute("SELECT vector FROM images WHERE sha256=? LIMIT 1", (sha,)).fetchone()
            if same is not None:
                with self._conn:
                    self._conn.execute("INSERT OR REPLACE INTO images VALUES (?, ?, ?, ?, ?)",
                                       (p, sha, st.st_mtime, st.st_size, same[0]))
                report.reused.append(p)
                continue
            todo.append((p, sha, st.st_mtime, st.st_size))
        if prune_under is not None:
            root = str(Path(prune_under).expanduser().resolve()) + os.sep
            gone = [p for p in known if p.startswith(root) and p not in seen]
            with self._conn:
                self._conn.executemany("DELETE FROM images WHERE path=?", [(p,) for p in gone])
            report.removed = gone
        if progress:
            progress(0, len(todo))
        if embed is not None:
            self._store_stream(todo, embed, report, on_error, progress, batch)
            self._cache = None
            return report
        for start in range(0, len(todo), batch):
            chunk = todo[start:start + batch]
            failed = []
            done, vecs = self.embedder.embed_files([c[0] for c in chunk],
                                                   on_error=lambda p, e: failed.append((p, e.message)))
            meta = {c[0]: c for c in chunk}
            with self._conn:
                self._conn.executemany("INSERT OR REPLACE INTO images VALUES (?, ?, ?, ?, ?)",
                                       [(*meta[p], vecs[i].astype("<f4").tobytes()) for i, p in enumerate(done)])
            report.embedded += done
            for p, msg in failed:
                report.failed.append((p, msg))
                if on_error:
                    on_error(p, msg)
            if progress:
                progress(min(start + batch, len(todo)), len(todo))
        self._cache = None
        return report

    def _store_stream(self, todo, embed, report, on_error, progress, batch) -> None:
        """:meth:`update` with the vectors of ``embed`` (committed every ``batch`` results)."""
        meta = {c[0]: c for c in todo}
        rows, n = [], 0

        def commit():
            with self._conn:
                self._conn.executemany("INSERT OR REPLACE INTO images VALUES (?, ?, ?, ?, ?)", rows)
            rows.clear()

        for p, vec, error in embed([c[0] for c in todo]):
            n += 1
            if error is not None:
                report.failed.append((p, error))
                if on_error:
                    on_error(p, error)
            else:
                blob = vec if isinstance(vec, bytes) else np.asarray(vec, dtype="<f4").tobytes()
                rows.append((*meta[p], blob))
                report.embedded.append(p)
            if len(rows) >= batch:
                commit()
            if progress:
                progress(n, len(todo))
        commit()

    # ------------------------------------------------------------------ search
    def search(self, query: np.ndarray, k: int = 8, metric: str = "cosine",
               exclude: Iterable[str] = ()) -> list[Hit]:
        """The ``k`` nearest images to an embedding.

        Args:
            query: (dim,) embedding from this collection's embedder.
            k: number of results (fewer if the collection is smaller).
            metric: ``"cosine"`` (distance 1 - cos) or ``"euclidean"``.
            exclude: paths to leave out (e.g. the query file itself).

        Raises:
            InputError: unknown metric, k < 1, empty collection.
        """
        if metric not in METRICS:
            raise InputError(f"unknown metric {metric!r}; use cosine or euclidean")
        if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
            raise InputError(f"k must be a whole number >= 1, got {k!r}")
        paths, mat = self.items()
        if not paths:
            raise InputError("the collection is empty; index some images first", self.path)
        exclude = {str(Path(e).expanduser().resolve()) for e in exclude}
        want = min(len(paths), k + len(exclude))
        idx, dist = nearest(mat, np.asarray(query, np.float32)[None], want, metric)
        hits = [Hit(paths[i], float(d), 0) for i, d in zip(idx[0], dist[0]) if i >= 0 and paths[i] not in exclude]
        for r, h in enumerate(hits[:k], start=1):
            h.rank = r
        return hits[:k]

    def search_file(self, path: str | os.PathLike, k: int = 8, metric: str = "cosine",
                    include_self: bool = False) -> list[Hit]:
        """:meth:`search` with the embedding of an image file (the file itself left out unless
        ``include_self``). Raises InputError for an unreadable image."""
        q = self.embedder.embed_file(path)
        return self.search(q, k, metric, exclude=() if include_self else (path,))


def nearest(matrix: np.ndarray, queries: np.ndarray, k: int, metric: str = "cosine") -> tuple[np.ndarray, np.ndarray]:
    """Exact k nearest rows of ``matrix`` (N, d) for each query (Q, d): (indices (Q, k),
    distances (Q, k)), nearest first. Rows are assumed unit length (cosine distance =
    1 - inner product). faiss ``IndexFlatIP``/``IndexFlatL2`` when faiss is installed,
    else scikit-learn ``NearestNeighbors`` (brute force)."""
    matrix = np.ascontiguousarray(matrix, np.float32)
    queries = np.ascontiguousarray(queries, np.float32)
    k = min(k, len(matrix))
    try:
        import faiss
    except ImportError:
        faiss = None
    if faiss is not None:
        index = faiss.IndexFlatIP(matrix.shape[1]) if metric == "cosine" else faiss.IndexFlatL2(matrix.shape[1])
        index.add(matrix)
        threads = faiss.omp_get_max_threads()
        if len(queries) < 64:  # a few queries: OpenMP threads cost more than they save (20x on 2 cores)
            faiss.omp_set_num_threads(1)
        try:
            d, i = index.search(queries, k)
        finally:
            faiss.omp_set_num_threads(threads)
        d = 1.0 - d if metric == "cosine" else np.sqrt(np.maximum(d, 0.0))
        return i, d
    from sklearn.neighbors import NearestNeighbors

    nn = NearestNeighbors(n_neighbors=k, metric=metric, algorithm="brute").fit(matrix)
    d, i = nn.kneighbors(queries)
    return i, d


def _describe(identity: dict) -> str:
    c = identity["config"]
    return (f"{identity['encoder']}, {c['size']} px, dim {c['dim']}, seed {c['seed']}"
            f"{', whitened' if c.get('whiten') else ''}")
