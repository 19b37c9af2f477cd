"""What every entry script is made of: a parser and settings built from the declarations in
`utils/settings.py`, and the run around its service (logging, stop signals, exit codes).

A root script is three lines: `sys.exit(main("predictor", PredictorSettings, run, __doc__))`.
A bad value, from a flag or from the environment, is refused before anything starts: one line
naming the flag or the variable and what it accepts, exit 2.
"""

from __future__ import annotations

import argparse
import ast
import dataclasses
import logging
import os
import sys
import threading
import types
import typing
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from utils import metrics
from utils.data import DataIntegrityError
from utils.kafka.interface import AuthenticationFailed, AuthorizationFailed, ProducerFenced
from utils.logs import configure_logging
from utils.mlflow_outage import TrackingUnavailable, configure_http_retries, is_outage
from utils.schema_registry.client import RegistryUnavailable, SchemaRefused
from utils.settings import OPTION, PROJECT_ROOT, SCRIPTS, CommonSettings, Option, SettingsError
from utils.shutdown import StopRequested, stop_on_signals
from utils.spec import SpecError

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_CONFIGURATION = 2  # a bad flag or variable, bad data files, no model yet
EXIT_ACCESS_DENIED = 3  # wrong credentials, untrusted certificate, or an ACL that forbids the job
EXIT_TRACKING_UNAVAILABLE = 4  # a one-shot command (initialize, rollback) found MLflow down: run it again
EXIT_REGISTRY_UNAVAILABLE = 5  # initialize found the schema registry down: run it again

NOT_GIVEN: Any = object()  # a flag's default, so that the environment can fill it in
TRUE_WORDS = frozenset({"1", "true", "yes", "on"})
FALSE_WORDS = frozenset({"0", "false", "no", "off"})


@dataclass(frozen=True)
class Setting:
    """One field users may set, found anywhere in a settings class's tree."""

    path: tuple[str, ...]  # ("common", "kafka", "client")
    option: Option
    kind: type  # bool, int, float, str or Path
    choices: tuple[str, ...] | None
    optional: bool  # None is a valid value (unset)
    parse: Callable[[str], Any]
    default: Any
    group: str  # "" for the script's own settings

    @property
    def dest(self) -> str:
        return ".".join(self.path)

    @property
    def flag(self) -> str:
        return self.option.flag or "--" + self.path[-1].replace("_", "-")

    @property
    def flags(self) -> list[str]:
        return [self.flag, *self.option.aliases]

    def from_text(self, text: str) -> Any:
        """The value of `text`; ValueError saying what is accepted."""
        if self.kind is bool:
            word = text.strip().lower()
            if word not in TRUE_WORDS | FALSE_WORDS:
                raise ValueError(f"is not one of {', '.join(sorted(TRUE_WORDS | FALSE_WORDS))}")
            return word in TRUE_WORDS
        if self.option.upper:
            text = text.upper()
        if self.choices is not None and text not in self.choices:
            raise ValueError(f"is not one of {', '.join(self.choices)}")
        try:
            return self.parse(text)
        except ValueError as error:
            raise ValueError(f"is not valid ({error})") from error


def settings_of(
    settings_class: type, defaults: Any = None, path: tuple[str, ...] = (), group: str = ""
) -> list[Setting]:
    """Every user-settable field of `settings_class` and of the settings classes it nests, in order.
    `defaults` is an instance whose values replace the class's defaults (the trainer's tuning)."""
    hints = typing.get_type_hints(settings_class, include_extras=True)
    found: list[Setting] = []
    for item in dataclasses.fields(settings_class):
        hint = hints[item.name]
        default = getattr(defaults, item.name) if defaults is not None else _field_default(item)
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            found += settings_of(hint, default, (*path, item.name), hint.__name__.removesuffix("Settings"))
            continue
        option = item.metadata.get(OPTION)
        if option is None:
            continue  # a constant of the code, not a setting
        kind, choices, optional, parse = _describe_type(hint)
        found.append(Setting((*path, item.name), option, kind, choices, optional, parse, default, group))
    return found


def _field_default(item: dataclasses.Field) -> Any:
    if item.default is not dataclasses.MISSING:
        return item.default
    if item.default_factory is not dataclasses.MISSING:
        return item.default_factory()
    raise TypeError(f"settings field {item.name} has no default")


def _describe_type(hint: Any) -> tuple[type, tuple[str, ...] | None, bool, Callable[[str], Any]]:
    """(base type, allowed values, None allowed, parser) of a field's annotation."""
    optional = False
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        members = [member for member in typing.get_args(hint) if member is not type(None)]
        optional = len(members) < len(typing.get_args(hint))
        if len(members) != 1:
            raise TypeError(f"unsupported settings type {hint}")
        hint = members[0]
    parse: Callable[[str], Any] | None = None
    if typing.get_origin(hint) is typing.Annotated:
        hint, parse = typing.get_args(hint)[0], typing.get_args(hint)[1]
    if typing.get_origin(hint) is typing.Literal:
        choices = tuple(str(value) for value in typing.get_args(hint))
        return str, choices, optional, parse or str
    if hint not in (bool, int, float, str, Path):
        raise TypeError(f"unsupported settings type {hint}")
    return hint, None, optional, parse or hint


class OneLineParser(argparse.ArgumentParser):
    """argparse, whose usage errors are one line (the usage of a script with 40 flags is a page)."""

    def error(self, message: str) -> typing.NoReturn:
        self.exit(EXIT_CONFIGURATION, f"{self.prog}: error: {message} (--help lists the settings)\n")


def build_parser(
    settings_class: type, description: str | None = None, env: Mapping[str, str] | None = None, prog: str | None = None
) -> OneLineParser:
    """The argparse parser of a settings class; flags are optional and default to "not given"."""
    env = os.environ if env is None else env
    parser = OneLineParser(prog=prog, description=description)
    groups: dict[str, Any] = {"": parser}
    for setting in settings_of(settings_class):
        if not setting.option.cli:
            continue
        if setting.group not in groups:
            groups[setting.group] = parser.add_argument_group(setting.group)
        target = groups[setting.group]
        help_text = _help(setting, env).replace("%", "%%")
        if setting.option.positional:
            target.add_argument(
                setting.dest, nargs="?", type=_argparse_type(setting), default=NOT_GIVEN,
                metavar=setting.path[-1], help=help_text,
            )  # fmt: skip
        elif setting.kind is bool:
            target.add_argument(
                *setting.flags, dest=setting.dest, action="store_true", default=NOT_GIVEN, help=help_text
            )
        else:
            target.add_argument(
                *setting.flags, dest=setting.dest, type=_argparse_type(setting), default=NOT_GIVEN,
                metavar=setting.choices and "{" + ",".join(setting.choices) + "}" or setting.path[-1].upper(),
                help=help_text,
            )  # fmt: skip
    return parser


def _argparse_type(setting: Setting) -> Callable[[str], Any]:
    def convert(text: str) -> Any:
        try:
            return setting.from_text(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(f"{text!r} {error}") from error

    convert.__name__ = setting.kind.__name__  # argparse names the type in its messages
    return convert


def _help(setting: Setting, env: Mapping[str, str]) -> str:
    parts = []
    default = setting.option.default_from(env) if setting.option.default_from else setting.default
    if default not in (None, "", False):
        parts.append(f"default: {default}")
    if setting.option.env:
        parts.append(f"env {setting.option.env}")
    return setting.option.help + (f" ({'; '.join(parts)})" if parts else "")


def settings_from(
    settings_class: type,
    argv: Sequence[str] = (),
    env: Mapping[str, str] | None = None,
    description: str | None = None,
    prog: str | None = None,
) -> Any:
    """The settings a script runs with: flags, then the environment, then the declared defaults.
    A bad value exits 2 with one line naming the flag or the variable."""
    env = os.environ if env is None else env
    parser = build_parser(settings_class, description, env, prog)
    given = {dest: value for dest, value in vars(parser.parse_args(list(argv))).items() if value is not NOT_GIVEN}
    values: dict[str, Any] = {}
    for setting in settings_of(settings_class):
        variable = setting.option.env
        if setting.dest in given:
            values[setting.dest] = given[setting.dest]
        elif variable and env.get(variable, "") != "":
            try:
                values[setting.dest] = setting.from_text(env[variable])
            except ValueError as error:
                parser.error(f"{variable}={env[variable]!r} {error}")
        elif setting.option.default_from is not None:
            values[setting.dest] = setting.option.default_from(env)
    try:
        return _assemble(settings_class, None, (), values)
    except SettingsError as error:
        parser.error(str(error))


def _assemble(settings_class: type, defaults: Any, path: tuple[str, ...], values: Mapping[str, Any]) -> Any:
    """An instance of `settings_class` from the values given (by dotted path); the rest default."""
    hints = typing.get_type_hints(settings_class, include_extras=True)
    arguments: dict[str, Any] = {}
    for item in dataclasses.fields(settings_class):
        hint, dest = hints[item.name], ".".join((*path, item.name))
        if isinstance(hint, type) and dataclasses.is_dataclass(hint):
            nested_default = getattr(defaults, item.name) if defaults is not None else _field_default(item)
            arguments[item.name] = _assemble(hint, nested_default, (*path, item.name), values)
        elif dest in values:
            arguments[item.name] = values[dest]
    if defaults is not None:
        return dataclasses.replace(defaults, **arguments)
    return settings_class(**arguments)


# --- The docs' configuration tables ---


def markdown_table(settings_class: type, skip: tuple[str, ...] = ()) -> str:
    """Flag, environment variable, default and meaning of each setting (but those under the fields
    named in `skip`), as a Markdown table."""
    rows = ["| flag | environment | default | what it does |", "|---|---|---|---|"]
    for setting in settings_of(settings_class):
        if setting.path[0] in skip:
            continue
        if setting.option.positional:
            flag = f"`{setting.path[-1]}` (positional)"
        else:
            flag = " ".join(f"`{name}`" for name in setting.flags) if setting.option.cli else "-"
        variable = f"`{setting.option.env}`" if setting.option.env else setting.option.env_note or ""
        choices = f" One of: {', '.join(f'`{c}`' for c in setting.choices)}." if setting.choices else ""
        rows.append(f"| {flag} | {variable} | {_shown_default(setting)} | {setting.option.help}.{choices} |")
    return "\n".join(rows)


GENERATED_BEGIN = "<!-- generated from utils/settings.py by `make docs`: edit the declarations, not this -->"
GENERATED_END = "<!-- end of generated tables -->"


def configuration_tables(scripts: Mapping[str, type]) -> str:
    """The docs' configuration tables: the settings every script shares, then each script's own."""
    parts = [GENERATED_BEGIN, "", "## Every script", "", markdown_table(CommonSettings), ""]
    for script, settings_class in scripts.items():
        parts += [f"## `{script}`", "", _first_line(PROJECT_ROOT / script), ""]
        parts += [markdown_table(settings_class, skip=("common",)), ""]
    return "\n".join([*parts, GENERATED_END])


def write_configuration_docs(path: Path = PROJECT_ROOT / "docs" / "configuration.md") -> None:
    """Replace the generated part of the configuration page (`make docs`)."""
    text = path.read_text()
    start, end = text.index(GENERATED_BEGIN), text.index(GENERATED_END) + len(GENERATED_END)
    path.write_text(text[:start] + configuration_tables(SCRIPTS) + text[end:])


def _first_line(script: Path) -> str:
    """A script's docstring, as one paragraph."""
    docstring = ast.get_docstring(ast.parse(script.read_text())) or ""
    return " ".join(docstring.split())


def _shown_default(setting: Setting) -> str:
    value = setting.default
    if setting.kind is bool:
        return "on" if value else "off"
    if setting.option.default_from is not None:
        value = setting.option.default_from({})
    if value is None or value == "":
        return "-"
    if isinstance(value, Path):
        try:
            value = value.relative_to(Path(__file__).resolve().parent.parent)
        except ValueError:
            pass
    if value == sys.executable:
        return "this Python"
    if isinstance(value, str) and value.startswith("sqlite:///"):
        return "`sqlite:///mlflow.db`"
    return f"`{value}`"


# --- Running a service ---


class ServiceSettings(Protocol):
    @property
    def common(self) -> CommonSettings: ...


Settings = TypeVar("Settings", bound=ServiceSettings)


def exit_code_for(error: BaseException, tracking_uri: str = "") -> tuple[int, str] | None:
    """The exit code and the one line to log for an error that ends a service cleanly; None for a
    bug (it is raised, with its traceback)."""
    if isinstance(error, AuthenticationFailed):
        return EXIT_ACCESS_DENIED, f"authentication failed, stopping: {error}"
    if isinstance(error, AuthorizationFailed):
        return EXIT_ACCESS_DENIED, f"access denied, stopping: {error}"
    if isinstance(error, ProducerFenced):
        return EXIT_CONFIGURATION, (
            f"another instance took over this transactional id (--instance-slot), stopping: {error}"
        )
    if isinstance(error, DataIntegrityError):
        return EXIT_CONFIGURATION, f"data check failed: {error}"
    if isinstance(error, SpecError):
        return EXIT_CONFIGURATION, f"dataset spec: {error}"
    if isinstance(error, SchemaRefused):
        return EXIT_CONFIGURATION, f"the schema registry refuses the spec's schemas, nothing trained: {error}"
    if isinstance(error, RegistryUnavailable):
        return EXIT_REGISTRY_UNAVAILABLE, f"{error}: run this again once it answers"
    if isinstance(error, StopRequested):
        return EXIT_OK, f"stopped: {error}"
    if isinstance(error, TrackingUnavailable) or is_outage(error):
        return (
            EXIT_TRACKING_UNAVAILABLE,
            f"MLflow unreachable at {tracking_uri}, stopping: run this again once it answers",
        )
    return None


def run_service(name: str, run: Callable[[Settings, threading.Event], int], settings: Settings) -> int:
    """Configure logging, turn SIGINT/SIGTERM into a stop event, run, and map failures to exit codes."""
    configure_logging(settings.common.log_level, name, settings.common.log_format)
    configure_http_retries()
    metrics.MLFLOW_REACHABLE.set(1)  # until a call finds it down (utils/mlflow_outage.py)
    stop = stop_on_signals()
    try:
        return run(settings, stop)
    except Exception as error:
        outcome = exit_code_for(error, settings.common.tracking_uri)
        if outcome is None:
            raise
        code, line = outcome
        (log.info if code == EXIT_OK else log.error)("%s", line)
        return code


def main(
    service: str, settings_class: type[Settings], run: Callable[[Settings, threading.Event], int], doc: str | None
) -> int:
    """An entry script: settings from its flags and the environment, then its service."""
    settings = settings_from(settings_class, sys.argv[1:], os.environ, doc, prog=f"{service}.py")
    return run_service(service, run, settings)
