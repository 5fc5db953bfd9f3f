"""Understanding a collection of images (layer 4, above the methods): style embeddings
(:mod:`.embeddings`), an incremental SQLite index with nearest-neighbour search
(:mod:`.index`), clustering, maps and contact sheets (:mod:`.cluster`), a linear-probe style
classifier (:mod:`.classify`, :mod:`.finetune`) and robustness studies of any stylizer
(:mod:`.robustness`).

Example::

    from atelier.analysis import StyleEmbedder, Collection
    with Collection.create("paintings.db") as col:       # or Collection.open
        col.update(["a.jpg", "b.jpg", ...])                # embeds only new or changed files
        for hit in col.search_file("query.jpg", k=8, metric="cosine"):
            print(hit.path, hit.distance)
"""

_LAZY = {
    "EmbeddingConfig": ".embeddings", "StyleEmbedder": ".embeddings", "embed_statistics": ".embeddings",
    "style_statistics": ".embeddings",
    "Collection": ".index", "Hit": ".index", "UpdateReport": ".index", "list_images": ".index",
    "cluster_vectors": ".cluster", "choose_k": ".cluster", "pca_map": ".cluster", "contact_sheet": ".cluster",
    "map_image": ".cluster",
    "tsne_map": ".cluster",
    "robustness": ".robustness", "RobustnessRow": ".robustness", "grid_image": ".robustness",
    "finetune_cross_validate": ".finetune",
}


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = sorted(_LAZY)
