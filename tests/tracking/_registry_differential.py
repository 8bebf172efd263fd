"""Registry scenarios through the real client against sqlite:/// and lakehouse:///, normalised for comparison.

Extends the tracking suite's `Recorder` with the registry's entities; times are checked for order only and
run / logged-model ids are mapped to run names.
"""

from __future__ import annotations

import re
from typing import Any

from _differential import Recorder, differential
from mlflow.entities.model_registry import ModelVersion, RegisteredModel
from mlflow.entities.webhook import Webhook

_ID = re.compile(r"[0-9a-f]{32}|m-[0-9a-f]{32}")


class RegistryRecorder(Recorder):
    def norm(self, x: Any) -> Any:
        if isinstance(x, ModelVersion):
            return {
                "name": x.name,
                "version": str(x.version),
                "stage": x.current_stage,
                "description": x.description,
                "tags": x.tags,
                "aliases": sorted(x.aliases),
                "status": x.status,
                "run": self.run_name(x.run_id) if x.run_id and _ID.fullmatch(x.run_id) else x.run_id,
                "source": _ID.sub("<id>", x.source or ""),
                "run_link": x.run_link,
                "times_ordered": x.last_updated_timestamp >= x.creation_timestamp,
            }
        if isinstance(x, RegisteredModel):
            return {
                "name": x.name,
                "description": x.description,
                "tags": x.tags,
                "aliases": dict(sorted(x.aliases.items())),
                "latest": sorted((v.current_stage, str(v.version)) for v in x.latest_versions),
            }
        if isinstance(x, Webhook):
            return {
                "name": x.name,
                "url": x.url,
                "events": [str(e) for e in x.events],
                "status": str(x.status),
                "description": x.description,
                "secret": x.secret,
            }
        return super().norm(x)


def registry_differential(backends: dict[str, str], scenario) -> list:
    """`differential` with the registry's entities normalised too."""
    return differential(backends, scenario, recorder=RegistryRecorder)
