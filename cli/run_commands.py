"""Commands that run services: the Prefect flows (process, train, serve), MLflow's UI, the review app,
coders, embedding models. With cli.flows_commands and cli.review_commands, the only code that reaches
into :mod:`flows` and :mod:`review`."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    pass

from cli.common import ProjectOpt, app, coders_app, console, models_app, open_project, project_dir, ui_app


@app.command()
def process(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Files or folders (default: the project's inbox/).")
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Run the process_interviews flow once: ingest, segment, embed, suggest, discover (Prefect)."""
    from cli.flows_commands import run_process

    report = run_process(project_dir(project), paths or None)
    for line in report.lines():
        console().print(line, markup=False)


@app.command()
def train(
    force: Annotated[
        bool, typer.Option(help="Promote the new model even if it does not beat the champion.")
    ] = False,
    fine_tune: Annotated[
        bool | None,
        typer.Option(
            "--fine-tune/--no-fine-tune",
            help="Fine-tune the encoder on the coded segments first (default: [suggester] fine_tune).",
        ),
    ] = None,
    force_retrain: Annotated[
        bool,
        typer.Option(
            help="Train even when nothing changed since the latest version (same data, codebook, "
            "suggester and parameters)."
        ),
    ] = False,
    project: ProjectOpt = None,
) -> None:
    """Run the retrain_suggester flow once: train, evaluate on held-out sources, log to MLflow, gate."""
    from cli.flows_commands import run_train

    report = run_train(project_dir(project), force=force, fine_tune=fine_tune, force_retrain=force_retrain)
    for line in report.lines():
        console().print(line, markup=False)


@app.command()
def serve(
    start_server: Annotated[
        bool, typer.Option(help="Start a local Prefect server on 127.0.0.1 (stopped on exit).")
    ] = False,
    pool: Annotated[
        str | None,
        typer.Option(
            help="Register the flows in this Prefect work pool (type process, created if missing) and exit; "
            "`prefect worker start --pool NAME` runs them (default: [flows] work_pool)."
        ),
    ] = None,
    project: ProjectOpt = None,
) -> None:
    """Register the scheduled flows (process every N minutes, retrain nightly) and run them as they fall due."""
    from cli.flows_commands import run_serve

    run_serve(project_dir(project), start_server=start_server, pool=pool)


@ui_app.command("mlflow")
def ui_mlflow(
    port: Annotated[int, typer.Option(help="Port on 127.0.0.1.")] = 5000,
    project: ProjectOpt = None,
) -> None:
    """Start the MLflow UI on 127.0.0.1 against the project's tracking store."""
    from cli.flows_commands import run_mlflow_ui

    raise typer.Exit(run_mlflow_ui(project_dir(project), port))


@app.command()
def review(
    host: Annotated[
        str | None, typer.Option(help="Address to bind (default: [review] host, 127.0.0.1).")
    ] = None,
    port: Annotated[int | None, typer.Option(help="Port (default: [review] port, 8000).")] = None,
    single_user: Annotated[
        str | None, typer.Option(help="No-login local mode as this coder (loopback only).")
    ] = None,
    workers: Annotated[
        int,
        typer.Option(help="Server processes; they share sessions through the project database."),
    ] = 1,
    project: ProjectOpt = None,
) -> None:
    """Serve the coders' review app on http://127.0.0.1:8000 (--host, --port, or [review] in qualflow.toml)."""
    from cli.review_commands import run_review

    run_review(open_project(project), host=host, port=port, single_user=single_user, workers=workers)


@coders_app.command("add")
def coders_add_cmd(
    name: Annotated[str, typer.Argument(help="The coder's name (as in codings).")],
    role: Annotated[str, typer.Option(help="coder or lead (leads manage the codebook).")] = "coder",
    password_stdin: Annotated[bool, typer.Option(help="Read the password from standard input.")] = False,
    project: ProjectOpt = None,
) -> None:
    """Add a coder with a password, change a coder's role and password (ends their sessions), or let a removed coder in again."""
    from cli.review_commands import coders_add

    console().print(
        coders_add(open_project(project), name, role, password_stdin=password_stdin), markup=False
    )


@coders_app.command("list")
def coders_list_cmd(
    fmt: Annotated[str, typer.Option("--format", help="terminal or json.")] = "terminal",
    project: ProjectOpt = None,
) -> None:
    """List the coders: role, whether they can log in, their codings, decisions and open sessions."""
    from cli.review_commands import coders_list

    console().print(coders_list(open_project(project), fmt), markup=False)


@coders_app.command("remove")
def coders_remove_cmd(
    name: Annotated[str, typer.Argument(help="The coder's name.")],
    project: ProjectOpt = None,
) -> None:
    """Take away a coder's login and end their sessions at once; their codings and decisions are kept."""
    from cli.review_commands import coders_remove

    console().print(coders_remove(open_project(project), name), markup=False)


@models_app.command("list")
def models_list() -> None:
    """List the embedding backends and the suggesters qualflow knows."""
    from models import DEFAULT_SUGGESTER, EXCLUSIVE_DEFAULT_SUGGESTER, SUGGESTERS
    from pipeline.config import EmbeddingConfig, SuggesterConfig
    from pipeline.embed.factory import EMBEDDER_ALIASES, EMBEDDER_BACKENDS

    out = console()
    default_model = EmbeddingConfig().model
    out.print(
        f"Embedding backends ([embedding] model in qualflow.toml; default {default_model!r}):", markup=False
    )
    for name in sorted(EMBEDDER_BACKENDS):
        out.print(f"  {name}", markup=False)
    for alias, target in sorted(EMBEDDER_ALIASES.items()):
        out.print(f"  {alias}  (= {target})", markup=False)
    out.print(
        f"Suggesters ([suggester] name; default {SuggesterConfig().name!r}: {DEFAULT_SUGGESTER}, or "
        f"{EXCLUSIVE_DEFAULT_SUGGESTER} for an exclusive codebook, and qualflow train may choose the other "
        "by cross-validation):",
        markup=False,
    )
    for name in sorted(SUGGESTERS):
        out.print(f"  {name}", markup=False)


@models_app.command("versions")
def models_versions(
    project: ProjectOpt = None,
) -> None:
    """List the trained (registered) model versions: which is the champion, its score, its data."""
    from cli.flows_commands import model_versions_table

    for line in model_versions_table(project_dir(project)):
        console().print(line, markup=False)


@models_app.command("export-onnx")
def models_export_onnx(
    model: Annotated[str, typer.Option(help="Model folder or packaged name to export.")] = "minilm",
    out: Annotated[
        Path | None, typer.Option(help="Output folder (default: the project's ONNX cache).")
    ] = None,
    quantize: Annotated[
        str,
        typer.Option(
            help="none: float32 (the `onnx-fp32:` backend, the default's); int8: smaller, a little "
            "less faithful (the `onnx:` backend)."
        ),
    ] = "none",
    project: ProjectOpt = None,
) -> None:
    """Export a sentence-transformers model to ONNX (offline) for the `onnx-fp32:` / `onnx:` backends."""
    from typing import Any, cast

    from pipeline.embed.factory import ONNX_BACKENDS
    from pipeline.embed.model_dir import resolve_model_dir
    from pipeline.embed.onnx import QUANTIZE_MODES, ensure_onnx_export, export_onnx
    from pipeline.errors import InputError

    if quantize not in QUANTIZE_MODES:
        raise InputError(f"--quantize {quantize!r}: use one of {list(QUANTIZE_MODES)}")
    proj = open_project(project)
    model_dir = resolve_model_dir(model, proj.root)
    mode = cast(Any, quantize)
    path = (
        export_onnx(model_dir, out, mode)
        if out is not None
        else ensure_onnx_export(model_dir, proj.cache_dir / "onnx", mode)
    )
    backend = next(b for b, q in ONNX_BACKENDS.items() if q == quantize)
    use = path if out is not None else model
    console().print(
        f"ONNX model ({quantize if quantize != 'none' else 'float32'}) in {path}; use it with "
        f'`model = "{backend}:{use}"` under [embedding]',
        markup=False,
    )
