"""What a DICOM node is told: its AE title and port, where results go, its limits."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mrilearn.errors import ConfigError

AE_TITLE = re.compile(r"^[\x21-\x5b\x5d-\x7e][\x20-\x5b\x5d-\x7e]{0,15}$")  # no backslash


def check_ae_title(title: str, what: str) -> str:
    """``title`` if it is a valid AE title (1-16 printable characters, no backslash)."""
    if not AE_TITLE.match(title) or title != title.rstrip():
        raise ConfigError(f"{what} {title!r}: an AE title is 1 to 16 characters, no backslash")
    return title


@dataclass(frozen=True)
class Destination:
    """Where derived series are sent by C-STORE."""

    ae_title: str
    host: str
    port: int

    @classmethod
    def parse(cls, text: str) -> Destination:
        """``AET@HOST:PORT``, e.g. ``PACS@10.0.0.5:104``."""
        match = re.fullmatch(r"([^@]+)@(.+):(\d+)", text)
        if match is None:
            raise ConfigError(f"--forward {text!r}: expected AET@HOST:PORT, e.g. PACS@10.0.0.5:104")
        port = int(match.group(3))
        if not 0 < port < 65536:
            raise ConfigError(f"--forward {text!r}: port {port} is not between 1 and 65535")
        return cls(check_ae_title(match.group(1), "--forward"), match.group(2), port)

    def __str__(self) -> str:
        return f"{self.ae_title}@{self.host}:{self.port}"


@dataclass(frozen=True)
class NodeSettings:
    """A node's settings (``mrilearn serve`` options). Exactly one of ``forward`` and
    ``out`` says where derived series go."""

    spool: Path
    forward: Destination | None = None
    out: Path | None = None
    ae_title: str = "MRILEARN"
    host: str = "0.0.0.0"
    port: int = 11112  # 0: any free port (tests)
    allow: tuple[str, ...] = ()  # calling AE titles accepted; empty: any
    series_timeout: float = 10.0  # seconds without an instance after which a series is complete
    max_series_mb: float = 2048.0
    min_slices: int = 8
    modalities: tuple[str, ...] = ("MR",)
    retry_seconds: float = 60.0  # between attempts to send what the destination refused
    audit_log: Path | None = None  # default: <spool>/audit.jsonl

    def __post_init__(self) -> None:
        if (self.forward is None) == (self.out is None):
            raise ConfigError("serve: give exactly one of --forward AET@HOST:PORT and --out FOLDER")
        check_ae_title(self.ae_title, "--ae-title")
        for title in self.allow:
            check_ae_title(title, "--allow")
        if self.series_timeout <= 0 or self.max_series_mb <= 0 or self.min_slices < 1:
            raise ConfigError(
                "serve: --series-timeout and --max-series-mb must be > 0, --min-slices ≥ 1"
            )

    @property
    def audit_path(self) -> Path:
        return self.audit_log or self.spool / "audit.jsonl"
