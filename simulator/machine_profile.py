"""Machine profiles: per-page costs measured on a real machine, which scenarios can name.

`oomsim validate --calibrate` writes one (profiles/<hostname>.yaml by default); a scenario uses
it with `machine.profile: PATH` (relative to the scenario file), and its costs apply wherever the
scenario's own `machine.costs` sets none.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import ValidationError

from .atomic_io import atomic_write_text
from .scenario_model import CostsSpec
from .scenario_types import Strict
from .units import parse_seconds


class MachineProfile(Strict):
    """A profile file: where and how it was measured, and the costs."""

    host: str = ""
    kernel: str = ""
    page_size: str = "4KiB"
    measured: str = ""
    method: str = ""
    costs: CostsSpec


def load_profile(path: str | Path) -> MachineProfile:
    """Read and check a profile; ValueError with the file and the problem."""
    from .yaml_lines import YamlError, load_yaml

    p = Path(path)
    try:
        data = load_yaml(p.read_text())
    except OSError as e:
        raise ValueError(f"machine profile {p}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise ValueError(f"machine profile {p}: not a text file") from None
    except YamlError as e:
        raise ValueError(f"machine profile {p}: {e.message}") from None
    try:
        return MachineProfile.model_validate(data)
    except ValidationError as e:
        err = e.errors()[0]
        where = ".".join(str(x) for x in err["loc"])
        raise ValueError(f"machine profile {p}: {where}: {err['msg']}") from None


def profile_costs(path: str | Path) -> dict[str, float]:
    """The costs a profile sets, in seconds (keys of CostsSpec)."""
    costs = load_profile(path).costs.model_dump()
    return {k: parse_seconds(v) for k, v in costs.items() if v is not None}


def write_profile(path: Path, profile: MachineProfile) -> None:
    """Write a profile YAML atomically (creating its directory)."""
    import io

    from ruamel.yaml import YAML  # only the calibration writes profiles

    yaml = YAML()
    yaml.default_flow_style = False
    data = profile.model_dump(exclude_none=True)
    data["costs"] = {k: v for k, v in data["costs"].items() if v is not None}
    buf = io.StringIO()
    buf.write("# oomsim machine profile: per-page costs measured on the real kernel by\n"
              "# `oomsim validate --calibrate`. Name it in a scenario with machine.profile.\n")
    yaml.dump(data, buf)
    atomic_write_text(buf.getvalue(), path)
