"""``atelier studio``: the local web studio (FastAPI app served by uvicorn)."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from .common import app, err, _fail


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@app.command()
def studio(
    host: str = typer.Option("127.0.0.1", help="Address to listen on (anything but loopback is reachable from "
                             "other machines, and then every request needs the access token)."),
    port: int = typer.Option(7860, help="Port to listen on."),
    data_dir: Optional[Path] = typer.Option(None, help="Folder for uploads, results and the database "
                                            "[default: $ATELIER_STUDIO_DIR or the user data folder]."),
    max_pixels: Optional[int] = typer.Option(None, help="Refuse images larger than this many pixels [default: 100M]."),
    max_upload_mb: int = typer.Option(50, help="Refuse uploads larger than this many megabytes."),
    token: Optional[str] = typer.Option(None, help="Access token every request must carry (cookie from the "
                                        "printed ?token= URL, or the header Authorization: Bearer TOKEN) "
                                        "[default: none on loopback, a generated one on any other address]."),
    allowed_host: List[str] = typer.Option([], "--allowed-host", help="Another Host name the studio answers "
                                           "(a name or address it is reached by); repeatable."),
):
    """Open the web studio: upload a photo and paintings, stylize with live progress, compare,
    keep a history, and let Explore learn which parameters you like (http://HOST:PORT)."""
    try:
        import uvicorn

        from ..studio.app import create_app, default_data_dir
    except ImportError as e:
        raise _fail(f"the studio needs its extra packages ({e.name} is missing); run: pip install 'atelier[studio]'")
    if not 1 <= port <= 65535:
        raise _fail(f"--port must be 1..65535, got {port}")
    if max_upload_mb < 1:
        raise _fail(f"--max-upload-mb must be at least 1, got {max_upload_mb}")
    if token is not None and (len(token) < 8 or not token.isprintable() or " " in token):
        raise _fail("--token must be at least 8 printable characters without spaces")
    from ..studio.security import allowed_hosts_for, new_token

    if token is None and not _is_loopback(host):
        token = new_token()
    folder = data_dir or default_data_dir()
    try:
        web = create_app(folder, max_pixels=max_pixels, max_upload_bytes=max_upload_mb * 2**20,
                         allowed_hosts=allowed_hosts_for(host, allowed_host), token=token)
    except OSError as e:
        raise _fail(f"{folder}: cannot use this folder for the studio's data ({e.strerror or e})")
    if not _is_loopback(host):
        err.print(f"[yellow]warning:[/] listening on {host}: other machines can reach the studio; every request "
                  "needs the token below. Use --host 127.0.0.1 to keep it local.", highlight=False)
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else (f"[{host}]" if ":" in host else host)
    url = f"http://{shown}:{port}/" + (f"?token={token}" if token else "")
    err.print(f"Atelier Studio on {url} (data in {folder}; Ctrl-C stops it)", highlight=False, markup=False,
              soft_wrap=True)
    try:
        uvicorn.run(web, host=host, port=port, log_level="warning")
    finally:
        web.state.queue.stop()
