"""Config: Hydra composes the YAML tree and parses overrides; schedsweep owns argv, the grid and folders.

The sweep is the product of every sweep override (`a=1,2`, `range()`, `choice()`, `glob()` over any
key or config group) and of the `sweep:` block of the composed config, where a command-line override
of the same key wins (Hydra's multirun rule). Composing costs ~45 ms, so the planner composes once
per combination of config-group choices and sets swept values on plain dicts (see schedsweep.plan.grid).
"""

from __future__ import annotations

import copy
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Sequence

from schedsweep.errors import ConfigError

PACKAGE_DIR = Path(__file__).resolve().parent.parent  # schedsweep/


def builtin_conf_dir() -> Path:
    """conf/ shipped in the wheel (schedsweep/conf) or at the top of a checkout."""
    for candidate in (PACKAGE_DIR / "conf", PACKAGE_DIR.parent / "conf"):
        if (candidate / "config.yaml").is_file():
            return candidate
    raise ConfigError(f"schedsweep's built-in conf/ is missing (looked in {PACKAGE_DIR} and its parent).")


@dataclass(frozen=True)
class Axis:
    """One swept key: a config group (values are option names) or a key of the config."""

    key: str
    values: tuple[Any, ...]
    group: bool
    prefix: str = ""  # "+" or "++" as written in the override

    def override(self, value: Any) -> str:
        return f"{self.prefix}{self.key}={value}"


class Composer:
    """Hydra initialised on schedsweep's search path; compose() returns plain containers."""

    def __init__(self, loader: Any) -> None:
        from hydra._internal.config_repository import CachingConfigRepository

        self._loader = loader
        self._sources = CachingConfigRepository(loader.repository)

    def options(self, group: str) -> list[str]:
        # Not the loader's get_group_options: it deep-copies every config source on each call.
        return sorted(self._sources.get_group_options(group))

    def coupled_groups(self, config_name: str) -> set[str]:
        """Groups named in an interpolated defaults entry of the primary config, e.g. task and optimizer
        in `optional tuned: ${task}_${optimizer}`: their choices select a file together."""
        import re

        from hydra.core.default_element import GroupDefault

        loaded = self._loader.repository.load_config(config_name)
        entries = (loaded.defaults_list or []) if loaded is not None else []
        options = [d.value for d in entries if isinstance(d, GroupDefault) and isinstance(d.value, str)]
        return {key for option in options for key in re.findall(r"\$\{([^}]+)\}", option)}

    def is_group(self, key: str) -> bool:
        return bool(self._loader.repository.group_exists(key))

    def parse(self, overrides: Sequence[str]) -> list[Any]:
        from hydra.core.override_parser.overrides_parser import OverridesParser
        from hydra.errors import HydraException

        parser = OverridesParser.create(config_loader=self._loader)
        parsed = []
        for text in overrides:
            try:
                parsed.extend(parser.parse_overrides([text]))
            except HydraException as e:
                first = str(e).splitlines()[0]
                raise ConfigError(
                    f"cannot parse override '{text}': {first}. Overrides use Hydra's grammar: key=value, "
                    "key=a,b (sweep), key=range(0,3), +new.key=value, ~key."
                ) from None
        return parsed

    def compose(self, overrides: Sequence[str], config_name: str) -> tuple[dict[str, Any], dict[str, str]]:
        """(config as plain dict with interpolations unresolved, {group: chosen option}).

        Hydra's compose() without its own `hydra:` node: that node is ~10 more config files per
        compose (launcher, sweeper, logging, ...) that schedsweep never reads, 3/4 of the cost of
        a compose. The steps are those of Hydra's ConfigLoaderImpl.load_configuration: the defaults
        list, the merge of its files in order, then the key=value overrides in struct mode.
        """
        from hydra._internal.config_loader_impl import ConfigLoaderImpl
        from hydra._internal.defaults_list import create_defaults_list
        from hydra.errors import HydraException
        from omegaconf import OmegaConf
        from omegaconf.errors import OmegaConfBaseException
        from yaml import YAMLError

        parsed = self._check_group_choices(overrides)
        try:
            self._loader.ensure_main_config_source_available()
            # A fresh file cache per compose (composing mutates loaded nodes), over one shared copy of the
            # sources: CachingConfigRepository(...) deep-copies them, ~1/3 of a compose's time otherwise.
            repo = copy.copy(self._sources)
            repo.cache = {}
            defaults = create_defaults_list(repo, config_name, parsed, prepend_hydra=False, skip_missing=False)
            cfg = self._loader._compose_config_from_defaults_list(defaults=defaults.defaults, repo=repo)
            OmegaConf.set_struct(cfg, True)
            ConfigLoaderImpl._apply_overrides_to_config(defaults.config_overrides, cfg)
        except YAMLError as e:
            raise ConfigError(f"malformed YAML: {_one_line(e)}") from None
        except (HydraException, OmegaConfBaseException) as e:
            raise ConfigError(f"cannot compose the config with overrides {list(overrides)}: {_one_line(e)}") from None
        choices = {k: v for k, v in defaults.overrides.known_choices.items() if not k.startswith("hydra/") and v}
        return OmegaConf.to_container(cfg, resolve=False), choices  # type: ignore[return-value]

    def _check_group_choices(self, overrides: Sequence[str]) -> list[Any]:
        """The parsed overrides, after checking each config group choice names an option.

        Hydra's own message lists the search path; ours names the key and the valid options.
        """
        parsed = self.parse(overrides)
        for override in parsed:
            if override.is_delete() or not self.is_group(override.key_or_group):
                continue
            if override.is_sweep_override():
                raise ConfigError(f"internal: sweep override '{override.input_line}' reached compose")
            value = override.value()
            if isinstance(value, str):
                check_option(self, override.key_or_group, value)
        return parsed


def check_option(composer: Composer, group: str, value: str) -> None:
    options = composer.options(group)
    if value not in options:
        raise ConfigError(
            f"unknown {group} '{value}'. Valid {group} options: {', '.join(options)} "
            f"(files in conf/{group}/; add your own as DIR/{group}/{value}.yaml and pass --config-dir DIR)."
        )


@contextmanager
def composer(config_dir: Path | None = None, generated: Sequence[Path] = ()) -> Iterator[Composer]:
    """Hydra set up with the built-in conf/ and, in front of it, the user's --config-dir.

    The user's tree comes first so its files shadow built-in ones of the same name and add new
    options to every group; a config.yaml there replaces the built-in primary config. `generated`
    trees (schedules a sweep wrote itself, e.g. refined ones) come before both.
    """
    # Private Hydra API: initialize_config_dir() cannot put a second directory *before* the primary
    # one, and a `hydra.searchpath` override is not consulted when the primary config is looked up.
    from hydra._internal.hydra import Hydra
    from hydra._internal.utils import create_config_search_path
    from hydra.core.global_hydra import GlobalHydra

    search_path = create_config_search_path(f"file://{builtin_conf_dir()}")
    if config_dir is not None:
        if not config_dir.is_dir():
            raise ConfigError(f"--config-dir '{config_dir}' is not a directory.")
        search_path.prepend(provider="schedsweep --config-dir", path=f"file://{config_dir.resolve()}")
    for folder in generated:
        search_path.prepend(provider="schedsweep generated", path=f"file://{folder.resolve()}")
    GlobalHydra.instance().clear()
    hydra = Hydra.create_main_hydra2("schedsweep", search_path)
    try:
        yield Composer(hydra.config_loader)
    finally:
        GlobalHydra.instance().clear()


def _one_line(e: BaseException) -> str:
    text = " ".join(line.strip() for line in str(e).splitlines() if line.strip())
    return text.split(" Config search path:")[0]


def interpolated(tree: Any) -> bool:
    """Whether a plain config tree holds any ${...} interpolation (then it is resolved per run)."""
    if isinstance(tree, dict):
        return any(interpolated(v) for v in tree.values())
    if isinstance(tree, list):
        return any(interpolated(v) for v in tree)
    return isinstance(tree, str) and "${" in tree

