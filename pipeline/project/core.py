"""A qualflow project: a folder with ``qualflow.toml``, its database and caches.

:class:`Project` opens one; :func:`init_project` creates one. The operations on a project live in the
other modules of :mod:`pipeline.project`; each is a single database transaction: all or nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from pipeline.config import (
    CONFIG_NAME,
    ProjectConfig,
    dumps_config,
    load_config,
    resolve_sqlite_url,
)
from pipeline.errors import ConfigError
from pipeline.store import Store

Progress = Callable[[str], None]


class Project:
    """An open project: its folder, its configuration and its store."""

    def __init__(self, root: Path, config: ProjectConfig) -> None:
        self.root = root
        self.config = config
        self.store = Store(resolve_sqlite_url(config.database_url, root))

    @classmethod
    def open(cls, root: Path, *, migrate: bool = True) -> Project:
        project = cls(root, load_config(root))
        if migrate:
            project.store.migrate()
        return project

    @property
    def cache_dir(self) -> Path:
        return self.root / ".qualflow"

    @property
    def inbox(self) -> Path:
        return self.root / "inbox"

    def close(self) -> None:
        self.store.dispose()


def init_project(
    root: Path, *, name: str | None = None, force: bool = False, database_url: str | None = None
) -> Project:
    """Create ``root/qualflow.toml``, the database (migrated to the newest schema) and ``inbox/``.

    ``database_url`` (default: ``sqlite:///qualflow.db`` in the folder) may name a PostgreSQL database.
    """
    root = root.resolve()
    cfg_path = root / CONFIG_NAME
    if cfg_path.exists() and not force:
        raise ConfigError(
            f"{cfg_path} already exists; this folder is a project already (--force writes a fresh "
            "qualflow.toml with every default; the database and its data are kept)"
        )
    root.mkdir(parents=True, exist_ok=True)
    cfg = ProjectConfig(name=name or root.name)
    if database_url:
        cfg.database_url = database_url
    tmp = cfg_path.with_suffix(".toml.tmp")
    tmp.write_text(dumps_config(cfg), encoding="utf-8")
    tmp.replace(cfg_path)
    (root / "inbox").mkdir(exist_ok=True)
    (root / ".qualflow").mkdir(exist_ok=True)
    project = Project(root, cfg)
    project.store.migrate()
    return project
