"""Tracking URIs: which ones MLflow 3 can track to, and how one is shown or stored.

A tracking URI may carry a password (``http://user:password@host``, a database URL). qattn uses it to
connect and nowhere else: whatever it prints, logs or stores goes through :func:`mask_uri`. This module
imports no MLflow, so a config's ``tracking.uri`` is checked before anything heavy loads.
"""

from __future__ import annotations

import os
import urllib.parse
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

TRACKING_URI_FORMS = (
    "http(s)://host[:port] (an `mlflow server`), sqlite:///path.db, another SQLAlchemy database URL "
    "(postgresql://, mysql://, mssql://, with an optional +driver), or databricks[://profile]"
)
FILE_STORE_SCHEMES = ("", "file")
SERVER_SCHEMES = ("http", "https")
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")  # MLflow's DATABASE_ENGINES


def check_tracking_uri(uri: str) -> None:
    """Refuse a URI MLflow 3 cannot track to, saying what it accepts (a URL is not echoed: it may hold a password).

    MLflow picks a store by the URI's scheme: http/https (REST), the SQLAlchemy engines, databricks,
    plugins' ``mlflow.tracking_store`` entry points, and otherwise its file store (a plain path), which
    MLflow 3 refuses unless ``MLFLOW_ALLOW_FILE_STORE=true``.
    """
    parsed = urllib.parse.urlparse(uri)
    scheme = parsed.scheme.lower()
    if len(scheme) == 1:  # a Windows drive letter: a path
        scheme = ""
    if scheme in SERVER_SCHEMES:
        if not parsed.hostname:
            raise ValueError(f"a tracking URI with {scheme}:// needs a host: {scheme}://host[:port]")
    elif scheme.split("+")[0] in DATABASE_SCHEMES or scheme == "databricks" or uri == "databricks":
        pass
    elif scheme in FILE_STORE_SCHEMES:
        if os.environ.get("MLFLOW_ALLOW_FILE_STORE", "").lower() not in ("true", "1"):
            raise ValueError(
                f"{uri!r} is a local path, which MLflow 3 reads as its file store and refuses unless "
                "MLFLOW_ALLOW_FILE_STORE=true; for a local store use sqlite:///mlflow.db. "
                f"Accepted: {TRACKING_URI_FORMS}"
            )
    elif scheme not in plugin_schemes():
        raise ValueError(f"MLflow has no tracking store for the scheme '{scheme}://'; accepted: {TRACKING_URI_FORMS}")


def plugin_schemes() -> set[str]:
    """Schemes that installed MLflow plugins add (read only for an unknown scheme: it scans the packages)."""
    from importlib.metadata import entry_points

    return {entry.name for entry in entry_points(group="mlflow.tracking_store")}


def mask_uri(uri: str | None) -> str | None:
    """``http://user:password@host`` -> ``http://user:***@host``; URIs without a password unchanged."""
    if not uri:
        return uri
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{host}"))


def bare_uri(uri: str) -> str:
    """``uri`` without its user and password (``http://user:pw@host`` -> ``http://host``)."""
    parts = urlsplit(uri)
    return urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))


def absolute_uri(uri: str) -> str:
    """``sqlite:///mlflow.db`` (relative to the working directory) -> an absolute SQLite URI."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri.startswith(prefix + "/"):
        return prefix + str(Path(uri.removeprefix(prefix)).resolve())
    return uri
