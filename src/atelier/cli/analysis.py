"""Commands that look at a collection: index (style embeddings into SQLite), similar
(nearest neighbours and a contact sheet), cluster (k-means, CSV, contact sheets, a map)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .common import app, err, out, _fail


def _open(db: Path):
    from ..analysis.index import Collection
    from ..core.errors import InputError

    try:
        return Collection.open(db)
    except InputError as e:
        raise _fail(str(e)) from None


def _check_png(path: Path, inputs: list) -> Path:
    from ..core.errors import InputError
    from ..core.files import check_not_input

    if path.suffix.lower() != ".png":
        raise _fail(f"{path}: the contact sheet is a PNG; give a file name ending in .png")
    parent = path.expanduser().resolve().parent
    if not parent.is_dir():
        raise _fail(f"{path}: the folder for the contact sheet does not exist; create it first")
    if path.is_dir():
        raise _fail(f"{path}: is a folder; give a file name ending in .png")
    try:
        check_not_input(path, inputs, False, "--sheet")
    except InputError as e:
        raise _fail(str(e)) from None
    return path


@app.command()
def index(
    folder: Path = typer.Argument(..., metavar="DIR", help="Folder of images (searched recursively)."),
    output: Path = typer.Option(..., "--output", "-o", metavar="COLLECTION.db", help="Collection file (created or updated)."),
    size: int = typer.Option(256, help="Longest side (px) at which images are embedded."),
    dim: int = typer.Option(256, help="Embedding length (0: all 2,944 statistics)."),
    weights: Optional[Path] = typer.Option(None, help="torchvision VGG16/VGG19 state dict [default: Caffe VGG19]."),
    whiten: Optional[bool] = typer.Option(None, "--whiten/--no-whiten",
                                          help="Apply the shipped whitening [default: where it applies: 256 px, "
                                               "dim 256, the bundled VGG19]."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
    ray: bool = typer.Option(False, "--ray", help="Embed on Ray Data workers (a local Ray cluster, or "
                             "--ray-address); the collection file is written here."),
    ray_address: Optional[str] = typer.Option(None, help="With --ray: 'auto' or ray://HOST:10001."),
    workers: Optional[int] = typer.Option(None, help="With --ray: Ray workers [default: one per CPU]."),
):
    """Embed every image under DIR into COLLECTION.db; a re-run embeds only new or changed files."""
    from ..analysis.embeddings import EmbeddingConfig
    from ..analysis.index import Collection, list_images
    from ..core.errors import InputError
    from .scale import _ray_flags

    embed = None
    if _ray_flags(ray, ray_address, workers):
        from ..api.batch import EmbedJob
        from ..api.ray_batch import map_on_ray

        embed = lambda paths: map_on_ray(EmbedJob(config), paths, address=ray_address,  # noqa: E731
                                         workers=workers, batch_size=8, device="cpu")

    try:
        files = list_images(folder)
        if not files:
            raise InputError("has no images (jpg, png, webp, bmp, tif, gif)", folder)
        if output.expanduser().resolve() in files:
            raise InputError("-o names an image of the folder; choose a .db file name", output)
        config = EmbeddingConfig(size=size, dim=dim, weights=str(weights) if weights else None,
                                 whiten=whiten).validate()
        col = Collection.create(output, config)
    except InputError as e:
        raise _fail(str(e)) from None
    columns = (TextColumn("[bold]embedding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    skipped = []
    try:
        with col, Progress(*columns, console=err, disable=quiet) as bar:
            task = bar.add_task("embedding", total=None)

            def progress(done, total):
                bar.update(task, completed=done, total=total)

            def on_error(path, message):
                skipped.append(path)
                bar.console.print(f"skipped {path}: {message}", highlight=False, soft_wrap=True)

            report = col.update(files, prune_under=folder, on_error=on_error, progress=progress, embed=embed)
            total = len(col)
    except KeyboardInterrupt:
        err.print(f"interrupted; the images embedded so far are kept in {output}; run the same command to go on",
                  highlight=False, soft_wrap=True)
        raise typer.Exit(130)
    except (InputError, ImportError, ConnectionError) as e:
        raise _fail(str(e)) from None
    out.print(f"{output}: {total} images ({len(report.embedded)} embedded, {len(report.reused)} reused by hash, "
              f"{report.unchanged} unchanged, {len(report.removed)} removed, {len(report.failed)} skipped)",
              highlight=False, soft_wrap=True)


@app.command()
def similar(
    image: Path = typer.Argument(..., metavar="IMAGE", help="Query image."),
    index_db: Path = typer.Option(..., "--index", metavar="COLLECTION.db", help="Collection from 'atelier index'."),
    k: int = typer.Option(8, "-k", help="Number of matches."),
    metric: str = typer.Option("cosine", help="cosine or euclidean."),
    sheet: Optional[Path] = typer.Option(None, help="Write a contact sheet PNG of the query and its matches."),
):
    """The K images of the collection nearest in style to IMAGE (the file itself left out)."""
    from ..analysis.cluster import contact_sheet, save_png
    from ..analysis.index import METRICS
    from ..core.errors import InputError

    if metric not in METRICS:
        raise _fail(f"--metric must be cosine or euclidean, got {metric!r}")
    if k < 1:
        raise _fail(f"-k must be at least 1, got {k}")
    if sheet is not None:
        _check_png(sheet, [("query image", image), ("collection", index_db)])
    col = _open(index_db)
    with col:
        try:
            hits = col.search_file(image, k=k, metric=metric)
        except InputError as e:
            raise _fail(str(e)) from None
    table = Table("rank", f"{metric} distance", "file", title=f"nearest in style to {image.name}")
    for h in hits:
        table.add_row(str(h.rank), f"{h.distance:.4f}", h.path)
    out.print(table)
    if sheet is not None:
        paths = [str(image)] + [h.path for h in hits]
        caps = [f"query\n{image.name}"] + [f"{h.rank}. {h.distance:.4f}\n{Path(h.path).name}" for h in hits]
        try:
            save_png(contact_sheet(paths, caps, highlight_first=True, columns=min(len(paths), 5),
                                   title=f"{metric} distance, nearest first"), sheet)
        except InputError as e:
            raise _fail(f"{e}; the matches are printed above") from None
        out.print(f"contact sheet: {sheet}", highlight=False)


def _parse_k(text: str):
    if text == "auto":
        return "auto"
    try:
        v = int(text)
    except ValueError:
        raise _fail(f"--k must be a whole number or auto, got {text!r}") from None
    if v < 1:
        raise _fail(f"--k must be at least 1, got {v}")
    return v


@app.command()
def cluster(
    db: Path = typer.Argument(..., metavar="COLLECTION.db", help="Collection from 'atelier index'."),
    k: str = typer.Option("auto", "--k", help="Number of clusters, or auto (best silhouette over 2..10)."),
    output: Path = typer.Option(..., "--output", "-o", metavar="OUTDIR", help="Folder for clusters.csv, sheets, map.png."),
    seed: int = typer.Option(0, help="k-means and t-SNE seed."),
    algorithm: str = typer.Option("kmeans", help="kmeans, agglomerative (average linkage, cosine) or hdbscan "
                                  "(finds k itself; outliers unclustered, cluster -1)."),
    min_cluster_size: int = typer.Option(3, help="hdbscan: the smallest cluster."),
    map_kind: str = typer.Option("pca", "--map", help="2-D map of the collection: pca or tsne."),
):
    """Group the collection by style: clusters.csv, one contact sheet per cluster, map.png."""
    import csv
    import io

    from ..analysis.cluster import ALGORITHMS, cluster_vectors, contact_sheet, map_image, pca_map, save_png, tsne_map
    from ..core.errors import InputError
    from ..core.files import atomic_write

    kk = _parse_k(k)
    if algorithm not in ALGORITHMS:
        raise _fail(f"--algorithm must be one of {', '.join(ALGORITHMS)}, got {algorithm!r}")
    if map_kind not in ("pca", "tsne"):
        raise _fail(f"--map must be pca or tsne, got {map_kind!r}")
    if min_cluster_size < 2:
        raise _fail(f"--min-cluster-size must be at least 2, got {min_cluster_size}")
    outdir = output.expanduser()
    if outdir.exists() and not outdir.is_dir():
        raise _fail(f"{output}: exists and is not a folder; give a folder for the results")
    if not outdir.exists() and not outdir.resolve().parent.is_dir():
        raise _fail(f"{output}: its parent folder does not exist; create it first")
    col = _open(db)
    with col:
        paths, vectors = col.items()
    if len(paths) < 2:
        raise _fail(f"{db}: has {len(paths)} image(s); clustering needs at least 2")
    try:
        labels, k_used, scores = cluster_vectors(vectors, kk, seed=seed, algorithm=algorithm,
                                                 min_cluster_size=min_cluster_size)
    except InputError as e:
        raise _fail(str(e)) from None
    outdir.mkdir(exist_ok=True)
    try:
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(["file", "cluster"])
        for p, c in zip(paths, labels):
            w.writerow([p, int(c)])
        with atomic_write(outdir / "clusters.csv", "w") as f:
            f.write(buf.getvalue())
        for c in range(k_used):
            members = [p for p, l in zip(paths, labels) if l == c]
            save_png(contact_sheet(members, title=f"cluster {c}: {len(members)} images"),
                     outdir / f"cluster_{c:02d}.png")
        loose = [p for p, l in zip(paths, labels) if l < 0]
        if loose:
            save_png(contact_sheet(loose, title=f"unclustered (hdbscan): {len(loose)} images"),
                     outdir / "unclustered.png")
        xy = tsne_map(vectors, seed) if map_kind == "tsne" else pca_map(vectors)
        save_png(map_image(paths, xy, labels, title=f"{db.name}: {map_kind.upper().replace('TSNE', 't-SNE')} map, "
                                                   f"{algorithm}, k={k_used}"), outdir / "map.png")
    except InputError as e:
        raise _fail(str(e)) from None
    if scores:
        out.print("silhouette: " + ", ".join(f"k={kk_}: {s:.3f}" for kk_, s in scores.items()), highlight=False)
    sizes = ", ".join(str(int((labels == c).sum())) for c in range(k_used))
    loose_note = f", {int((labels < 0).sum())} unclustered" if (labels < 0).any() else ""
    out.print(f"{k_used} clusters (sizes {sizes}{loose_note}) -> {outdir}/clusters.csv, cluster_NN.png, map.png",
              highlight=False)


classify_app = typer.Typer(no_args_is_help=True, rich_markup_mode=None,
                           help="A style classifier: a linear probe on the style embeddings (transfer learning).")
app.add_typer(classify_app, name="classify")


@classify_app.command("train")
def classify_train(
    folder: Path = typer.Argument(..., metavar="LABELLED_DIR", help="One sub-folder of images per label."),
    output: Path = typer.Option(..., "--output", "-o", metavar="CLASSIFIER",
                                help="Writes CLASSIFIER.safetensors, CLASSIFIER.json (model card), CLASSIFIER.confusion.png."),
    folds: int = typer.Option(5, help="Stratified k-fold cross-validation folds."),
    c: float = typer.Option(1.0, "--c", help="Inverse regularization strength of the logistic regression."),
    seed: int = typer.Option(0, help="Seed of the folds."),
    weights: Optional[Path] = typer.Option(None, help="torchvision VGG16/VGG19 state dict [default: Caffe VGG19]."),
    fine_tune: bool = typer.Option(False, "--fine-tune",
                                   help="Also cross-validate VGG19's last block (conv5_1) fine-tuned with the probe "
                                        "on top, against the linear probe on the same folds (reported; the exported "
                                        "classifier stays the linear probe)."),
    fine_tune_epochs: int = typer.Option(8, help="--fine-tune: training passes per fold."),
    fine_tune_budget: float = typer.Option(900, help="--fine-tune: seconds for the whole run (stops early)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
):
    """Train a style classifier on LABELLED_DIR and report its cross-validated accuracy."""
    from ..analysis.classify import check_folds, confusion_png, labelled_files, train_classifier
    from ..analysis.embeddings import EmbeddingConfig
    from ..core.errors import InputError
    from ..training.cards import output_paths

    paths = output_paths(output)
    confusion = paths["weights"].with_suffix(".confusion.png")
    try:
        files, labels = labelled_files(folder)
        if not paths["weights"].parent.resolve().is_dir():
            raise InputError("the folder for the classifier does not exist; create it first", output)
        check_folds(labels, folds, folder)
        if not c > 0:
            raise InputError(f"--c must be positive, got {c}")
        config = EmbeddingConfig(weights=str(weights) if weights else None).validate()
    except InputError as e:
        raise _fail(str(e)) from None
    columns = (TextColumn("[bold]embedding"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
               TimeRemainingColumn())
    try:
        with Progress(*columns, console=err, disable=quiet) as bar:
            task = bar.add_task("embedding", total=len(files))
            clf, card = train_classifier(
                folder, folds, c, seed, config,
                on_error=lambda p, e: bar.console.print(f"skipped {p}: {e.message}", highlight=False, soft_wrap=True),
                progress=lambda n: bar.update(task, completed=n))
        cv = card["cross_validation"]
        if fine_tune:
            from ..analysis.finetune import finetune_cross_validate

            if weights is not None:
                raise InputError("--fine-tune works on the bundled VGG19 only; leave out --weights")
            with Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                          TimeElapsedColumn(), console=err, disable=quiet) as bar:
                task = bar.add_task("fine-tuning", total=None)
                card["fine_tune"] = finetune_cross_validate(
                    files, labels, folds=folds, seed=seed, epochs=fine_tune_epochs, time_budget=fine_tune_budget,
                    on_error=lambda p, e: None,
                    progress=lambda stage, d, t: bar.update(task, description=stage, completed=d, total=t))
        clf.save(output, card)
        confusion_png(cv, confusion, f"{folder.name}: {cv['folds']}-fold accuracy {cv['accuracy']:.3f} "
                                     f"(chance {cv['chance']:.3f})")
    except InputError as e:
        raise _fail(str(e)) from None
    table = Table("label", "images", "recall", title=f"{cv['folds']}-fold cross-validation")
    for i, label in enumerate(cv["classes"]):
        row = cv["confusion"][i]
        table.add_row(label, str(sum(row)), f"{row[i] / max(sum(row), 1):.3f}")
    out.print(table)
    out.print(f"accuracy {cv['accuracy']:.3f} ± {cv['accuracy_std']:.3f} (balanced {cv['balanced_accuracy']:.3f}, "
              f"chance {cv['chance']:.3f}) -> {paths['weights']}, {paths['card']}, {confusion}",
              highlight=False, soft_wrap=True)
    if "fine_tune" in card:
        ft = card["fine_tune"]
        out.print(f"fine-tuned conv5_1 + head: {ft['folds']}-fold accuracy {ft['fine_tuned']['accuracy']:.3f} ± "
                  f"{ft['fine_tuned']['accuracy_std']:.3f}; linear probe on the same folds and statistics "
                  f"{ft['linear_probe']['accuracy']:.3f} ± {ft['linear_probe']['accuracy_std']:.3f}; the same head "
                  f"trained alike on the frozen statistics {ft['head_only']['accuracy']:.3f}"
                  + (" (stopped early: time budget)" if ft["stopped_early"] else ""), highlight=False, soft_wrap=True)


@classify_app.command("predict")
def classify_predict(
    classifier: Path = typer.Argument(..., metavar="CLASSIFIER", help="From 'atelier classify train'."),
    images: List[Path] = typer.Argument(..., metavar="IMAGES...", help="Images to classify."),
    top: int = typer.Option(3, help="Labels shown per image."),
):
    """The most likely labels of each image, with probabilities."""
    import numpy as np

    from ..analysis.classify import StyleClassifier
    from ..core.errors import InputError

    if top < 1:
        raise _fail(f"--top must be at least 1, got {top}")
    try:
        clf = StyleClassifier.load(classifier)
        for p in images:  # refuse bad input before any work
            if not p.is_file():
                raise InputError("file not found" if not p.exists() else "is not a file", p)
        done, probs = clf.predict_files(images)
    except InputError as e:
        raise _fail(str(e)) from None
    table = Table("image", "label", "probability")
    for p, row in zip(done, probs):
        for j in np.argsort(-row)[:top]:
            table.add_row(str(p), str(clf.classes[j]), f"{row[j]:.3f}")
    out.print(table)
